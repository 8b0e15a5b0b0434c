import { INSTANCE_STATUSES, type InstanceStatus } from '@codebay/contracts';
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { InstanceStore } from './instance-store.ts';
import type { JobQueues } from './jobs.ts';

export { Registry };

/** Each process gets its own registry (tests can make and drop them freely). */
export function createMetricsRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry, prefix: 'codebay_process_' });
  return registry;
}

const JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'completed', 'prioritized', 'waiting-children'] as const;

/** `work`, or a rejection once `ms` pass without it settling (the timer never outlives it). */
async function within<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * One read of shared state per scrape for several gauges: each gauge's `collect` awaits the same
 * `load` (prom-client collects the metrics of one scrape at once), which gets `timeoutMs` — a
 * Redis that does not answer must not hold the scrape up. Resolves to undefined on error or
 * timeout (the gauges are then left empty, and `codebay_dependency_up` says why).
 */
function perScrape<T>(load: () => Promise<T>, timeoutMs: number): () => Promise<T | undefined> {
  let pending: Promise<T | undefined> | undefined;
  return () =>
    (pending ??= within(load(), timeoutMs)
      .catch(() => undefined)
      .finally(() => {
        pending = undefined;
      }));
}

/**
 * `codebay_queue_jobs{queue,state}` and `codebay_queue_oldest_waiting_job_age_seconds{queue}`,
 * read from BullMQ at scrape time (states are BullMQ's; `completed`/`failed` are the jobs kept by
 * retention, i.e. recent ones). Registered by the gateway only: the numbers are the queues', not a
 * process's. When Redis does not answer within `timeoutMs` the series are left out.
 */
export function registerQueueDepth(registry: Registry, queues: JobQueues, timeoutMs = 2_000): void {
  const read = perScrape(
    () =>
      Promise.all(
        [...queues.entries()].map(async ([, queue]) => {
          const [counts, [first]] = await Promise.all([queue.getJobCounts(...JOB_STATES), queue.getJobs(['waiting'], 0, 0, true)]);
          return { queue: queue.name, counts, age: first ? Math.max(0, (Date.now() - first.timestamp) / 1000) : 0 };
        }),
      ),
    timeoutMs,
  );
  new Gauge({
    name: 'codebay_queue_jobs',
    help: 'Jobs in each codebay queue by BullMQ state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      const rows = await read();
      this.reset();
      for (const { queue, counts } of rows ?? []) for (const state of JOB_STATES) this.set({ queue, state }, counts[state] ?? 0);
    },
  });
  new Gauge({
    name: 'codebay_queue_oldest_waiting_job_age_seconds',
    help: 'Age of the oldest waiting job in each codebay queue (0 when none waits)',
    labelNames: ['queue'],
    registers: [registry],
    async collect() {
      const rows = await read();
      this.reset();
      for (const { queue, age } of rows ?? []) this.set({ queue }, age);
    },
  });
}

/**
 * `codebay_instances{status}` (records by status) and `codebay_instance_oldest_status_age_seconds{status}`
 * (since the oldest record in that status last changed: stuck instances), from the instance store
 * at scrape time, so they are right after any restart. Gateway only.
 */
export function registerInstanceGauges(registry: Registry, store: Pick<InstanceStore, 'allIds' | 'summaries'>, timeoutMs = 2_000): void {
  const read = perScrape(async () => {
    const now = Date.now();
    const counts = new Map<InstanceStatus, number>(INSTANCE_STATUSES.map((s) => [s, 0]));
    const ages = new Map<InstanceStatus, number>(INSTANCE_STATUSES.map((s) => [s, 0]));
    for (const { status, updatedAt } of await store.summaries(await store.allIds())) {
      counts.set(status, counts.get(status)! + 1);
      const age = updatedAt ? Math.max(0, (now - Date.parse(updatedAt)) / 1000) : 0;
      if (age > ages.get(status)!) ages.set(status, age);
    }
    return { counts, ages };
  }, timeoutMs);
  new Gauge({
    name: 'codebay_instances',
    help: 'Instance records by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const got = await read();
      this.reset();
      for (const [status, n] of got?.counts ?? []) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'codebay_instance_oldest_status_age_seconds',
    help: 'Seconds since the oldest instance in each status last changed status or state (0 when none)',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const got = await read();
      this.reset();
      for (const [status, age] of got?.ages ?? []) this.set({ status }, age);
    },
  });
}

/**
 * `codebay_dependency_up{dependency}`: 1 when the probe resolves within `timeoutMs`, else 0; every
 * probe runs at scrape time, at once (e.g. `{ redis: () => redis.ping(), docker: () => docker.ping() }`).
 */
export function registerDependencyProbes(registry: Registry, probes: Record<string, () => Promise<unknown>>, timeoutMs = 2_000): void {
  new Gauge({
    name: 'codebay_dependency_up',
    help: 'Whether a dependency of this process answered its probe at scrape time (1) or not (0)',
    labelNames: ['dependency'],
    registers: [registry],
    async collect() {
      const results = await Promise.all(
        Object.entries(probes).map(async ([dependency, probe]) => {
          const up = await within(probe(), timeoutMs).then(
            () => 1,
            () => 0,
          );
          return [dependency, up] as const;
        }),
      );
      for (const [dependency, up] of results) this.set({ dependency }, up);
    },
  });
}
