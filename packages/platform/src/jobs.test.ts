import { JOBS, JOB_KINDS, jobsOf, type JobConsumer } from '@codebay/contracts';
import { describe, expect, it } from 'vitest';
import { checkHandlers, estimateStart, jobCatalog, startWorkers, type WorkerHandlers } from './jobs.ts';
import { createLogger } from './logger.ts';

const CONSUMERS: JobConsumer[] = ['builder', 'provisioner'];
const settings = {
  connection: { host: '127.0.0.1', port: 1, lazyConnect: true },
  prefix: 'unit',
  catalog: JOBS,
  logger: createLogger('unit', 'silent'),
  lockDurationMs: 1_000,
  stalledIntervalMs: 1_000,
};

describe('job catalog', () => {
  it('gives every job exactly one consumer, a queue of its own and a fixed id per instance', () => {
    const consumed = CONSUMERS.flatMap((c) => jobsOf(c));
    expect(consumed.sort()).toEqual([...JOB_KINDS].sort());
    expect(new Set(JOB_KINDS.map((k) => JOBS[k].queue)).size).toBe(JOB_KINDS.length);
    for (const k of JOB_KINDS) expect(JOBS[k].id({ instanceId: 'alice-abc12345' })).toBe(`${k}-alice-abc12345`);
  });

  it('applies the operator settings to the build job only', () => {
    const c = jobCatalog({ BUILD_ATTEMPTS: 0, BUILD_BACKOFF_SECONDS: 7, BUILD_TIMEOUT_SECONDS: 60 });
    expect(c.build).toMatchObject({ attempts: 1, backoffMs: 7_000, timeoutMs: 60_000, queue: 'codebay-build' });
    expect(c.provision).toBe(JOBS.provision);
  });
});

describe('checkHandlers', () => {
  it('accepts exactly the catalog jobs of a consumer', () => {
    expect(() => checkHandlers('builder', ['build'])).not.toThrow();
    expect(() => checkHandlers('provisioner', ['provision', 'deprovision'])).not.toThrow();
  });

  it('fails when a catalog job of the consumer has no handler', () => {
    expect(() => checkHandlers('provisioner', ['provision'])).toThrow('provisioner: no worker handler for job(s) deprovision of the catalog');
  });

  it('fails when a worker handles a job the catalog does not give it', () => {
    expect(() => checkHandlers('builder', ['build', 'provision'])).toThrow('builder: handler(s) for provision, which the catalog does not give the builder');
    expect(() => checkHandlers('builder', ['build', 'rebuild'])).toThrow(/handler\(s\) for rebuild/);
  });

  it('is applied by startWorkers before any worker starts', () => {
    const handlers = { build: { run: async () => undefined }, cleanup: { run: async () => undefined } } as unknown as WorkerHandlers<'builder'>;
    expect(() => startWorkers('builder', handlers, settings)).toThrow(/handler\(s\) for cleanup/);
  });
});

describe('estimateStart', () => {
  it('is position × mean ÷ builds running, rounded', () => {
    expect(estimateStart(3, 20, 2)).toBe(30);
    expect(estimateStart(1, 15, 1)).toBe(15);
    expect(estimateStart(2, 12.4, 3)).toBe(8);
  });

  it('is null without a recent build or without a builder at work', () => {
    expect(estimateStart(1, undefined, 2)).toBeNull();
    expect(estimateStart(1, 20, 0)).toBeNull();
  });
});
