import { describe, expect, it } from 'vitest';
import type { JobQueues } from './jobs.ts';
import { Registry, registerInstanceGauges, registerQueueDepth } from './metrics.ts';

const queues = (counts: Record<string, number>, oldestMs?: number, hang = false) =>
  ({
    entries: () =>
      new Map([
        [
          'build',
          {
            name: 'codebay-build',
            getJobCounts: async () => (hang ? new Promise<never>(() => undefined) : counts),
            getJobs: async () => (oldestMs === undefined ? [] : [{ timestamp: Date.now() - oldestMs }]),
          },
        ],
      ]).entries(),
  }) as unknown as JobQueues;

describe('scrape-time gauges', () => {
  it('fill every related gauge from one read, on the first scrape', async () => {
    const registry = new Registry();
    registerQueueDepth(registry, queues({ waiting: 3, active: 1 }, 90_000));
    registerInstanceGauges(registry, {
      allIds: async () => ['a', 'b'],
      summaries: async () => [
        { status: 'Running', updatedAt: new Date(Date.now() - 5_000).toISOString() },
        { status: 'Provisioning', updatedAt: new Date(Date.now() - 700_000).toISOString() },
      ],
    });
    const text = await registry.metrics();
    expect(text).toMatch(/^codebay_queue_jobs\{queue="codebay-build",state="waiting"\} 3$/m);
    expect(Number(/^codebay_queue_oldest_waiting_job_age_seconds\{queue="codebay-build"\} (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(89);
    expect(text).toMatch(/^codebay_instances\{status="Running"\} 1$/m);
    expect(Number(/^codebay_instance_oldest_status_age_seconds\{status="Provisioning"\} (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(699);
  });

  it('leave the series out instead of holding the scrape when Redis does not answer', async () => {
    const registry = new Registry();
    registerQueueDepth(registry, queues({}, undefined, true), 50);
    const t0 = Date.now();
    const text = await registry.metrics();
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(text).not.toMatch(/^codebay_queue_jobs\{/m);
  });
});
