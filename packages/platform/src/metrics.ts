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

/**
 * `codebay_queue_jobs{queue,state}` and `codebay_queue_oldest_waiting_job_age_seconds{queue}`,
 * read from BullMQ at scrape time (states are BullMQ's; `completed`/`failed` are the jobs kept by
 * retention, i.e. recent ones). Registered by the gateway only: the numbers are the queues', not a
 * process's. When Redis does not answer the series are left out (`codebay_dependency_up` says why).
 */
export function registerQueueDepth(registry: Registry, queues: JobQueues): void {
  const oldest = new Gauge({
    name: 'codebay_queue_oldest_waiting_job_age_seconds',
    help: 'Age of the oldest waiting job in each codebay queue (0 when none waits)',
    labelNames: ['queue'],
    registers: [registry],
  });
  new Gauge({
    name: 'codebay_queue_jobs',
    help: 'Jobs in each codebay queue by BullMQ state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      oldest.reset();
      try {
        for (const [, queue] of queues.entries()) {
          const [counts, [first]] = await Promise.all([queue.getJobCounts(...JOB_STATES), queue.getJobs(['waiting'], 0, 0, true)]);
          for (const state of JOB_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
          oldest.set({ queue: queue.name }, first ? Math.max(0, (Date.now() - first.timestamp) / 1000) : 0);
        }
      } catch {
        this.reset();
        oldest.reset();
      }
    },
  });
}

/**
 * `codebay_instances{status}` (records by status) and `codebay_instance_oldest_status_age_seconds{status}`
 * (since the oldest record in that status last changed: stuck instances), from the instance store
 * at scrape time, so they are right after any restart. Gateway only.
 */
export function registerInstanceGauges(registry: Registry, store: Pick<InstanceStore, 'allIds' | 'summaries'>): void {
  const oldest = new Gauge({
    name: 'codebay_instance_oldest_status_age_seconds',
    help: 'Seconds since the oldest instance in each status last changed status or state (0 when none)',
    labelNames: ['status'],
    registers: [registry],
  });
  new Gauge({
    name: 'codebay_instances',
    help: 'Instance records by status',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      this.reset();
      oldest.reset();
      try {
        const now = Date.now();
        const counts = new Map<InstanceStatus, number>(INSTANCE_STATUSES.map((s) => [s, 0]));
        const ages = new Map<InstanceStatus, number>(INSTANCE_STATUSES.map((s) => [s, 0]));
        for (const { status, updatedAt } of await store.summaries(await store.allIds())) {
          counts.set(status, counts.get(status)! + 1);
          const age = updatedAt ? Math.max(0, (now - Date.parse(updatedAt)) / 1000) : 0;
          if (age > ages.get(status)!) ages.set(status, age);
        }
        for (const [status, n] of counts) this.set({ status }, n);
        for (const [status, age] of ages) oldest.set({ status }, age);
      } catch {
        this.reset();
        oldest.reset();
      }
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
          let timer: NodeJS.Timeout | undefined;
          const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), timeoutMs)));
          const up = await Promise.race([probe(), timeout]).then(
            () => 1,
            () => 0,
          );
          clearTimeout(timer);
          return [dependency, up] as const;
        }),
      );
      for (const [dependency, up] of results) this.set({ dependency }, up);
    },
  });
}
