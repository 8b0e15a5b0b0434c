import { z } from 'zod';
import { instanceIdSchema } from './instance.ts';

/** The service whose workers run a kind of job. */
export type JobConsumer = 'builder' | 'provisioner';

/**
 * One kind of job, declared once for its producers and its consumer: where it is queued,
 * how it is identified, what it carries, and how BullMQ retries and keeps it.
 */
export interface JobDefinition<P extends z.ZodType = z.ZodType> {
  /** BullMQ queue name. A wire format: renaming one is a migration. */
  queue: string;
  /** The service that runs it (its worker must handle exactly its own jobs: `startWorkers`). */
  consumer: JobConsumer;
  /** What a job carries; a worker parses it before running (a bad payload fails for good). */
  payload: P;
  /**
   * The job's fixed id: one live job of a kind per instance (BullMQ does not add a job whose
   * id exists). Also a wire format.
   */
  id: (payload: z.infer<P>) => string;
  /** Attempts in all, the first included (BullMQ `attempts`). */
  attempts: number;
  /** Delay before the second attempt, ms; BullMQ's `exponential` backoff doubles it each time. */
  backoffMs: number;
  /** One attempt's time limit, ms: its signal aborts then. Undefined: none. */
  timeoutMs?: number;
  /** Finished jobs kept for inspection (BullMQ `removeOnComplete`/`removeOnFail`: age in s, count). */
  keep: { completed: { age: number; count: number }; failed: { age: number; count: number } };
}

/** Every job carries only the instance id: the instance record in Redis is the source of truth. */
export const instanceJobSchema = z.object({ instanceId: instanceIdSchema });
export type InstanceJob = z.infer<typeof instanceJobSchema>;

const keep = { completed: { age: 86_400, count: 1_000 }, failed: { age: 7 * 86_400, count: 5_000 } };

/**
 * The job catalog: every job codebay queues. Attempts, backoff and timeout here are the
 * defaults; `jobCatalog` (platform) applies the operator's settings (BUILD_ATTEMPTS,
 * BUILD_BACKOFF_SECONDS, BUILD_TIMEOUT_SECONDS) once, for producers and consumers alike.
 */
export const JOBS = {
  build: {
    queue: 'codebay-build',
    consumer: 'builder',
    payload: instanceJobSchema,
    id: ({ instanceId }: InstanceJob) => `build-${instanceId}`,
    attempts: 3,
    backoffMs: 5_000,
    timeoutMs: 1_800_000,
    keep,
  },
  provision: {
    queue: 'codebay-provision',
    consumer: 'provisioner',
    payload: instanceJobSchema,
    id: ({ instanceId }: InstanceJob) => `provision-${instanceId}`,
    attempts: 5,
    backoffMs: 2_000,
    keep,
  },
  deprovision: {
    queue: 'codebay-deprovision',
    consumer: 'provisioner',
    payload: instanceJobSchema,
    id: ({ instanceId }: InstanceJob) => `deprovision-${instanceId}`,
    attempts: 8,
    backoffMs: 2_000,
    keep,
  },
} as const satisfies Record<string, JobDefinition<typeof instanceJobSchema>>;

export type JobKind = keyof typeof JOBS;
export type JobCatalog = { readonly [K in JobKind]: JobDefinition<(typeof JOBS)[K]['payload']> };
export type JobPayload<K extends JobKind> = z.infer<(typeof JOBS)[K]['payload']>;
/** The kinds of job one service runs. */
export type JobsOf<C extends JobConsumer> = { [K in JobKind]: (typeof JOBS)[K]['consumer'] extends C ? K : never }[JobKind];

export const JOB_KINDS = Object.keys(JOBS) as JobKind[];

/** The kinds of job `consumer` runs, in catalog order. */
export function jobsOf<C extends JobConsumer>(consumer: C, catalog: JobCatalog = JOBS): JobsOf<C>[] {
  return JOB_KINDS.filter((k) => catalog[k].consumer === consumer) as JobsOf<C>[];
}
