import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
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

/** `codebay_queue_jobs{queue,state}`, read from BullMQ at scrape time. */
export function registerQueueDepth(registry: Registry, queues: JobQueues): void {
  new Gauge({
    name: 'codebay_queue_jobs',
    help: 'Jobs in each codebay queue by state',
    labelNames: ['queue', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [, queue] of queues.entries()) {
        const counts = await queue.getJobCounts(...JOB_STATES);
        for (const state of JOB_STATES) this.set({ queue: queue.name, state }, counts[state] ?? 0);
      }
    },
  });
}
