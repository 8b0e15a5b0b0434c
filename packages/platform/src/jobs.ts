import {
  JOBS,
  JOB_KINDS,
  PermanentError,
  jobsOf,
  redisKeys,
  type QueuePlace,
  type JobCatalog,
  type JobDefinition,
  type JobConsumer,
  type JobKind,
  type JobPayload,
  type JobsOf,
} from '@codebay/contracts';
import { Queue, UnrecoverableError, WaitingError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { envInt } from './config.ts';
import type { Logger } from './logger.ts';

/** The operator's job settings, read alike by the services that queue builds and the builders that run them. */
export const jobEnvSchema = z.object({
  /** Attempts per build job (machinery faults only are retried). */
  BUILD_ATTEMPTS: envInt(JOBS.build.attempts),
  /** Delay before a build's second attempt, s; doubles after each. */
  BUILD_BACKOFF_SECONDS: envInt(JOBS.build.backoffMs / 1000),
  /** One build attempt's time limit, s. */
  BUILD_TIMEOUT_SECONDS: envInt(JOBS.build.timeoutMs / 1000),
});
export type JobSettings = z.infer<typeof jobEnvSchema>;

/** The catalog with the operator's settings applied (`JOBS` holds the defaults). */
export function jobCatalog(settings: JobSettings): JobCatalog {
  return {
    ...JOBS,
    build: {
      ...JOBS.build,
      attempts: Math.max(1, settings.BUILD_ATTEMPTS),
      backoffMs: settings.BUILD_BACKOFF_SECONDS * 1000,
      timeoutMs: settings.BUILD_TIMEOUT_SECONDS * 1000,
    },
  };
}

/**
 * The producers' side of the catalog: one BullMQ queue per kind of job, and `enqueue`, the
 * only way a job is added (its fixed id, attempts, backoff and retention from the catalog).
 */
export class JobQueues {
  private readonly queues: Record<JobKind, Queue>;

  constructor(
    connection: ConnectionOptions,
    readonly prefix: string,
    readonly catalog: JobCatalog = JOBS,
  ) {
    this.queues = Object.fromEntries(JOB_KINDS.map((k) => [k, new Queue(catalog[k].queue, { connection, prefix })])) as Record<JobKind, Queue>;
  }

  /**
   * Queues the one job of `kind` for `payload`. A finished job with the same id is removed
   * first, so a new request (a rebuild, a second delete) is not swallowed by BullMQ's id
   * deduplication; a live one is left alone (the request is already in hand).
   */
  async enqueue<K extends JobKind>(kind: K, payload: JobPayload<K>): Promise<void> {
    // (TypeScript cannot correlate a kind's schema with its id function through the generic.)
    const def = this.catalog[kind] as unknown as JobDefinition<z.ZodType<JobPayload<K>>>;
    const data = def.payload.parse(payload);
    const jobId = def.id(data);
    const queue = this.queues[kind];
    const existing = await queue.getJob(jobId);
    if (existing) {
      const state = await existing.getState();
      if (state === 'completed' || state === 'failed') await existing.remove();
      else return;
    }
    await queue.add(kind, data, {
      jobId,
      attempts: def.attempts,
      backoff: { type: 'exponential', delay: def.backoffMs },
      removeOnComplete: def.keep.completed,
      removeOnFail: def.keep.failed,
    });
  }

  /**
   * Notes how long a build job held a builder (s), for queued instances' estimates: the
   * newest RECENT_BUILDS are kept, one Redis round trip.
   */
  async recordBuildDuration(seconds: number): Promise<void> {
    if (!Number.isFinite(seconds) || seconds < 0) return;
    const key = redisKeys.recentBuildSeconds(this.prefix);
    const client = await this.redis();
    await client
      .multi()
      .lpush(key, seconds.toFixed(1))
      .ltrim(key, 0, RECENT_BUILDS - 1)
      .expire(key, RECENT_BUILDS_TTL_SECONDS)
      .exec();
  }

  /**
   * Where the build job of `instanceId` waits (QueuePlace), in the order a worker takes jobs —
   * BullMQ 5's moveToActive: the wait list from its tail (jobs are LPUSHed, RPOPLPUSHed: oldest
   * first), and only when it is empty the prioritized set by score (priority, then insertion
   * counter: FIFO within a priority). codebay adds build jobs without a priority, so they all
   * sit in the wait list; a prioritized job would wait behind them. Undefined when the job is
   * not waiting (running, delayed for a retry's backoff, finished, absent).
   *
   * One Redis round trip (a MULTI of LPOS, LLEN, ZRANK, ZCARD, LLEN and LRANGE), whatever the
   * queue's length: LPOS scans the list inside Redis, nothing is fetched per job.
   */
  async buildQueuePlace(instanceId: string): Promise<QueuePlace | undefined> {
    const queue = this.queues.build;
    const jobId = this.catalog.build.id({ instanceId });
    const { wait, prioritized, active } = queue.keys;
    const client = await this.redis();
    const replies = await client
      .multi()
      .lpos(wait!, jobId)
      .llen(wait!)
      .zrank(prioritized!, jobId)
      .zcard(prioritized!)
      .llen(active!)
      .lrange(redisKeys.recentBuildSeconds(this.prefix), 0, -1)
      .exec();
    if (!replies || replies.some(([err]) => err)) throw replies?.find(([err]) => err)?.[0] ?? new Error('queue position: MULTI aborted');
    const [index, waitLength, rank, prioritizedCount, running, recent] = replies.map(([, v]) => v) as [
      number | null,
      number,
      number | null,
      number,
      number,
      string[],
    ];
    const position = index !== null ? waitLength - index : rank !== null ? waitLength + rank + 1 : undefined;
    if (position === undefined) return undefined;
    const durations = recent.map(Number).filter((n) => Number.isFinite(n) && n >= 0);
    const mean = durations.length > 0 ? durations.reduce((a, b) => a + b, 0) / durations.length : undefined;
    return {
      position,
      waiting: waitLength + prioritizedCount,
      builds_ahead: position - 1,
      running,
      estimated_start_seconds: estimateStart(position, mean, running),
    };
  }

  /** The build queue's own connection (BullMQ's client is an ioredis instance, typed loosely). */
  private async redis(): Promise<Redis> {
    return (await this.queues.build.client) as unknown as Redis;
  }

  /** The BullMQ queue of one kind (inspection, metrics, tests). */
  queue(kind: JobKind): Queue {
    return this.queues[kind];
  }

  /** Every kind with its queue, in catalog order. */
  entries(): [JobKind, Queue][] {
    return JOB_KINDS.map((k) => [k, this.queues[k]]);
  }

  async close(): Promise<void> {
    await Promise.all(Object.values(this.queues).map((q) => q.close()));
  }
}

/** Build durations kept for estimates (the newest). */
export const RECENT_BUILDS = 20;
/** A deployment that has not built for a week estimates from nothing rather than from stale numbers. */
const RECENT_BUILDS_TTL_SECONDS = 7 * 86_400;

/**
 * Seconds until a build at `position` (1-based) is taken, rounded: with `running` builders
 * busy, builds end at about `running / meanSeconds` per second, and `position` of them must
 * end first: position × meanSeconds ÷ running. Null without a mean (no recent build) or
 * without a builder at work (running 0: none is up, or all are between jobs).
 */
export function estimateStart(position: number, meanSeconds: number | undefined, running: number): number | null {
  if (meanSeconds === undefined || running <= 0) return null;
  return Math.round((position * meanSeconds) / running);
}

/** What a handler learns about the attempt it runs. */
export interface JobContext {
  /** 1 for the first attempt. */
  attempt: number;
  maxAttempts: number;
  /** Aborted when the attempt's time limit passes (reason: a `TimeoutError`) or its worker stops and the grace period is over (a `ShutdownError`: see `isShutdown`). */
  signal: AbortSignal;
}

/** A consumer's code for one kind of job. */
export interface JobHandler<K extends JobKind> {
  /**
   * Runs one attempt. Throw a `PermanentError` to fail the job for good (no more attempts);
   * any other error is retried while attempts remain.
   */
  run(payload: JobPayload<K>, ctx: JobContext): Promise<void>;
  /**
   * The last word on a job that will not run again — its last attempt failed, it stalled too
   * often, or it failed for good — with the reason. Its instance must not stay waiting.
   */
  settleFinalFailure?(payload: JobPayload<K>, reason: string): Promise<void>;
  /** Jobs of this kind one process runs at once (default 1). */
  concurrency?: number;
}

/** A handler for every job a consumer runs, and for nothing else (checked by the type and by `startWorkers`). */
export type WorkerHandlers<C extends JobConsumer> = { [K in JobsOf<C>]: JobHandler<K> };

export interface WorkerSettings {
  connection: ConnectionOptions;
  prefix: string;
  catalog: JobCatalog;
  logger: Logger;
  /** A worker that stops renewing a job's lock this long (it died) loses the job to another worker. */
  lockDurationMs: number;
  /** How often workers look for such stalled jobs. */
  stalledIntervalMs: number;
  /** Stalls after which a job fails for good (BullMQ `maxStalledCount`, default 1). */
  maxStalledCount?: number;
}

/**
 * Throws unless `kinds` are exactly the catalog's jobs for `consumer`: a job nobody runs
 * would wait forever, a handler for a job nobody queues is dead code.
 */
export function checkHandlers(consumer: JobConsumer, kinds: readonly string[], catalog: JobCatalog = JOBS): void {
  const want = jobsOf(consumer, catalog) as string[];
  const missing = want.filter((k) => !kinds.includes(k));
  const unknown = kinds.filter((k) => !want.includes(k));
  if (missing.length > 0) throw new Error(`${consumer}: no worker handler for job(s) ${missing.join(', ')} of the catalog`);
  if (unknown.length > 0) throw new Error(`${consumer}: handler(s) for ${unknown.join(', ')}, which the catalog does not give the ${consumer}`);
}

/** The reason a job's signal aborts when its worker is stopping and the grace period ran out. */
export class ShutdownError extends Error {
  override name = 'ShutdownError';
}

/** True when an attempt's signal was aborted because its worker is shutting down (see `WorkerPool.close`). */
export const isShutdown = (signal: AbortSignal): boolean => signal.aborted && (signal.reason as Error | undefined)?.name === 'ShutdownError';

/** The workers of one process, and how they stop. */
export interface WorkerPool {
  workers: Worker[];
  /**
   * Stops taking jobs at once; a job already running may finish within `graceMs`. After that its
   * signal aborts with a `ShutdownError`, and the job goes back to waiting for another worker
   * without using an attempt (the handler only has to stop and leave its instance claimable).
   * Resolves when every worker has closed.
   */
  close(graceMs: number): Promise<void>;
}

/**
 * Starts one BullMQ worker per job kind the consumer runs. Each parses the payload with the
 * catalog's schema (a bad one fails for good), applies the kind's time limit to the
 * attempt's signal, turns a `PermanentError` into BullMQ's `UnrecoverableError`, logs
 * failures, and hands a job that will not run again to the handler's `settleFinalFailure`.
 */
export function startWorkers<C extends JobConsumer>(consumer: C, handlers: WorkerHandlers<C>, settings: WorkerSettings): WorkerPool {
  checkHandlers(consumer, Object.keys(handlers), settings.catalog);
  const { logger } = settings;
  const shutdown = new AbortController();
  const workers = (jobsOf(consumer, settings.catalog) as JobKind[]).map((kind) => {
    const def = settings.catalog[kind];
    const handler = (handlers as unknown as Record<JobKind, JobHandler<JobKind>>)[kind];
    const worker = new Worker(
      def.queue,
      async (job: Job, token?: string, signal?: AbortSignal) => {
        const parsed = def.payload.safeParse(job.data);
        if (!parsed.success) throw new UnrecoverableError(`bad ${kind} job payload: ${z.prettifyError(parsed.error)}`);
        const limits = [signal, shutdown.signal, def.timeoutMs ? AbortSignal.timeout(def.timeoutMs) : undefined].filter((s) => s !== undefined);
        const ctx: JobContext = { attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1, signal: AbortSignal.any(limits) };
        try {
          await handler.run(parsed.data, ctx);
        } catch (err) {
          if (isShutdown(ctx.signal) && token) {
            // Back to waiting, attempts untouched: the next worker runs it as if this one never had.
            await job.moveToWait(token);
            logger.info({ job: kind, ...parsed.data }, `${kind} job released: this worker is shutting down`);
            throw new WaitingError();
          }
          if (err instanceof PermanentError) throw new UnrecoverableError(err.message);
          throw err;
        }
      },
      {
        connection: settings.connection,
        prefix: settings.prefix,
        concurrency: handler.concurrency ?? 1,
        lockDuration: settings.lockDurationMs,
        stalledInterval: settings.stalledIntervalMs,
        maxStalledCount: settings.maxStalledCount ?? 1,
      },
    );
    worker.on('failed', (job, err) => {
      const parsed = def.payload.safeParse(job?.data);
      const payload = parsed.success ? parsed.data : undefined;
      logger.warn({ job: kind, ...payload, err: err.message }, `${kind} job failed`);
      const final = err instanceof UnrecoverableError || (job !== undefined && job.attemptsMade >= (job.opts.attempts ?? 1)) || /stalled/i.test(err.message);
      if (!final || !payload || !handler.settleFinalFailure) return;
      handler
        .settleFinalFailure(payload, err.message)
        .catch((e: Error) => logger.error({ job: kind, ...payload, err: e.message }, `${kind}: could not settle the final failure`));
    });
    worker.on('error', (err) => logger.error({ job: kind, err: err.message }, `${kind} worker error`));
    return worker;
  });
  return {
    workers,
    async close(graceMs) {
      const closing = Promise.all(workers.map((w) => w.close()));
      const timer = setTimeout(() => shutdown.abort(new ShutdownError(`the worker is shutting down (grace period of ${graceMs / 1000} s over)`)), graceMs);
      try {
        await closing;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
