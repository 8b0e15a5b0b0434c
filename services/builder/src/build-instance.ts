import {
  BUILD_IMAGE_REPOSITORY,
  PermanentError,
  TransientError,
  buildImageRef,
  familyImageRef,
  type BuildOutcome,
  type InstanceRecord,
} from '@codebay/contracts';
import { launchFromImageLabels } from '@codebay/devcontainer';
import {
  buildArgValues,
  createMasker,
  enqueueInstanceJob,
  type BuildCache,
  type BuildLogStream,
  type CodebayQueues,
  type InstanceStore,
  type Logger,
  type RegistrySettings,
} from '@codebay/platform';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { BuildLocks } from './build-lock.ts';
import type { BuilderConfig } from './config.ts';
import { cliEnvironment, type DevcontainerCli } from './devcontainer-cli.ts';
import { EgressProxy, type EgressEvent } from './egress-proxy.ts';
import type { ImageStore } from './images.ts';
import { LogBatcher } from './log-batcher.ts';
import type { BuildWorkspace } from './workspace.ts';

export interface BuildAttempt {
  instanceId: string;
  attempt: number;
  maxAttempts: number;
  signal: AbortSignal;
}

export interface BuildMetrics {
  duration: Histogram<'outcome'>;
  inProgress: Gauge;
  cache: Counter<'result'>;
}

/** What the build use-case works with (wired in main.ts). */
export interface BuildInstanceDeps {
  config: BuilderConfig;
  registries: RegistrySettings;
  store: InstanceStore;
  logs: BuildLogStream;
  cli: DevcontainerCli;
  images: ImageStore;
  cache: BuildCache;
  locks: BuildLocks;
  workspace: BuildWorkspace;
  queues: CodebayQueues;
  logger: Logger;
  metrics: BuildMetrics;
}

/** The label every image codebay builds carries (housekeeping finds them by it). */
export const BUILD_KEY_LABEL = 'codebay.build-key';

/** A delete reached the instance while it was being built. */
class CancelledError extends Error {
  override name = 'CancelledError';
}

const CANCEL_POLL_MS = 1_000;
const LOCK_POLL_MS = 1_000;

/**
 * The build use-case. An instance arrives with its build key (computed by the gateway
 * from everything the build reads). If the build cache has that key — an image a builder
 * built, pushed and recorded by digest, still in the registry — nothing is built: the
 * instance goes `Cached` and on to provisioning. Otherwise one builder per key builds it
 * (others with the same key wait, then take the recorded image) with the Dev Containers CLI
 * on this builder's own daemon: the upload is unpacked and checked again (the policy, every
 * path with symlinks followed, and its build key recomputed from what is on disk), the CLI
 * runs with an environment of its own and every fetch through the egress proxy, the image
 * is pushed with the builders' credentials and its digest recorded under the key.
 * A delete stops the build within a second or so; a timeout or a stall stops it with a reason.
 */
export class BuildInstance {
  constructor(private readonly deps: BuildInstanceDeps) {}

  async run({ instanceId, attempt, maxAttempts, signal }: BuildAttempt): Promise<void> {
    const { store, logger, metrics } = this.deps;
    const record = await store.get(instanceId);
    if (!record) throw new PermanentError(`instance ${instanceId} has no record`);
    if (record.source === 'simple' || !record.artifact) throw new PermanentError(`instance ${instanceId} has nothing to build`);
    if (!record.build) throw new PermanentError(`instance ${instanceId} has no build key (made by an older gateway); create it again`);
    if (record.status !== 'Queued' && record.status !== 'Building') {
      logger.info({ instanceId, status: record.status }, 'build skipped: instance is no longer waiting for one');
      return;
    }
    const log = new LogBatcher(this.deps.logs, instanceId);
    // Another instance may have built the same key since the gateway looked.
    if (await this.fromCache(record, log)) return;
    const claimed = await store.transition(instanceId, ['Queued', 'Building'], 'Building', { buildStartedAt: new Date().toISOString() });
    if (!claimed.ok) {
      logger.info({ instanceId, status: claimed.current }, 'build skipped: instance is no longer waiting for one');
      return;
    }

    const cancel = new AbortController();
    const stopWatching = this.watchForDelete(instanceId, cancel);
    const combined = AbortSignal.any([signal, cancel.signal]);
    const started = process.hrtime.bigint();
    const observe = (outcome: BuildOutcome | 'timeout') => metrics.duration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    metrics.inProgress.inc();
    try {
      const outcome = await this.build(record, attempt, combined, log);
      observe(outcome === 'built' ? 'success' : 'cached');
    } catch (err) {
      await this.settleFailure(record, err, { attempt, maxAttempts, signal: combined, cancelled: cancel.signal.aborted, log, observe });
    } finally {
      stopWatching();
      metrics.inProgress.dec();
      await this.deps.workspace.clean(instanceId).catch(() => undefined);
      await this.housekeeping();
    }
  }

  private async settleFailure(
    record: InstanceRecord,
    err: unknown,
    ctx: { attempt: number; maxAttempts: number; signal: AbortSignal; cancelled: boolean; log: LogBatcher; observe: (o: BuildOutcome | 'timeout') => void },
  ): Promise<void> {
    const { store, logs, logger, config } = this.deps;
    const id = record.id;
    if (ctx.cancelled) {
      const reason = 'build cancelled: the instance was deleted';
      ctx.log.push(`codebay: ${reason}`);
      await ctx.log.drain();
      await logs.end(id, 'cancelled', reason);
      ctx.observe('cancelled');
      logger.info({ instanceId: id }, reason);
      return;
    }
    const timedOut = ctx.signal.aborted && (ctx.signal.reason as Error | undefined)?.name === 'TimeoutError';
    // Shown to users (build-status, the instance's `error`): masked like every log line.
    const reason = ctx.log.mask(
      timedOut
        ? `build timed out after ${config.BUILD_TIMEOUT_SECONDS} s`
        : ctx.signal.aborted && !(err instanceof PermanentError)
          ? ((ctx.signal.reason as Error | undefined)?.message ?? 'build interrupted')
          : (err as Error).message,
    );
    const willRetry = err instanceof TransientError && ctx.attempt < ctx.maxAttempts && !ctx.signal.aborted;
    ctx.log.push(willRetry ? `codebay: ${reason} — retrying (attempt ${ctx.attempt + 1} of ${ctx.maxAttempts})` : `codebay: build failed: ${reason}`);
    await ctx.log.drain();
    if (willRetry) {
      await store.transition(id, ['Building'], 'Queued');
      throw err instanceof TransientError ? new TransientError(reason) : err;
    }
    ctx.observe(timedOut ? 'timeout' : 'failure');
    const failed = await store.transition(id, ['Building'], 'Failed', {
      failure: { phase: 'build', reason },
      buildEndedAt: new Date().toISOString(),
    });
    await logs.end(id, failed.ok ? 'failure' : 'cancelled', reason);
    throw new PermanentError(reason);
  }

  /** Polls the instance while it builds: a delete (Deleting/Deleted/gone) aborts the build. */
  private watchForDelete(instanceId: string, cancel: AbortController): () => void {
    const timer = setInterval(() => {
      void this.deps.store
        .statuses([instanceId])
        .then(([status]) => {
          if (status === undefined || status === 'Deleting' || status === 'Deleted') cancel.abort(new CancelledError('the instance was deleted'));
        })
        .catch(() => undefined);
    }, CANCEL_POLL_MS);
    return () => clearInterval(timer);
  }

  /**
   * When the build cache has the key (a recorded digest the registry still holds): the
   * instance goes Cached, with the image by digest, and on to provisioning.
   * `count`: whether this lookup goes into the hit/miss metric (the polls while waiting for
   * another builder's build of the key do not).
   */
  private async fromCache(record: InstanceRecord, log: LogBatcher, count = true): Promise<boolean> {
    const { cache, store, logs, queues, logger, metrics } = this.deps;
    const key = record.build!.key;
    const hit = await cache.lookup(key).catch((err: Error) => {
      logger.warn({ instanceId: record.id, err: err.message }, 'build cache lookup failed; building');
      return undefined;
    });
    if (count || hit) metrics.cache.inc({ result: hit ? 'hit' : 'miss' });
    if (!hit) return false;
    const moved = await store.transition(record.id, ['Queued', 'Building'], 'Cached', {
      devcontainerImage: hit.image,
      launch: hit.launch,
      build: { ...record.build!, cache: 'hit' },
    });
    if (!moved.ok) return true;
    log.push(`codebay: build key ${key}: already built as ${hit.image}; nothing to build`);
    await log.drain();
    await logs.end(record.id, 'cached');
    await enqueueInstanceJob(queues, 'provision', record.id);
    logger.info({ instanceId: record.id, key }, 'build key already built: cached, provisioning queued');
    return true;
  }

  /** Waits until this instance holds its key's build lock; 'cached' when another builder built the key meanwhile. */
  private async waitForKey(record: InstanceRecord, signal: AbortSignal, log: LogBatcher): Promise<'mine' | 'cached'> {
    const key = record.build!.key;
    let announced = false;
    for (;;) {
      const claim = await this.deps.locks.claim(key, record.id);
      if (claim.ok) return 'mine';
      if (!announced) {
        log.push(`codebay: instance ${claim.holder} is building the same configuration (build key ${key.slice(0, 12)}…); waiting for it`);
        announced = true;
      }
      await sleep(LOCK_POLL_MS, undefined, { signal });
      if (await this.fromCache(record, log, false)) return 'cached';
    }
  }

  /**
   * One line in the build log for each fetch the egress proxy refused or cut off; the last
   * is kept for the reason. Fetches that merely fail (a name that does not resolve: the CLI
   * asks Docker Hub for image details it can do without) show in the CLI's own lines.
   */
  private fetchWatcher(log: LogBatcher): { onEvent: (e: EgressEvent) => void; last: () => EgressEvent | undefined } {
    let last: EgressEvent | undefined;
    return {
      onEvent: (e) => {
        if (e.kind === 'error') return;
        last = e;
        log.push(`codebay: fetch of ${e.target} ${e.kind === 'refused' ? 'refused' : 'timed out'}: ${e.reason}`);
      },
      last: () => last,
    };
  }

  private async build(record: InstanceRecord, attempt: number, signal: AbortSignal, log: LogBatcher): Promise<'built' | 'cached'> {
    const { config, registries, store, logs, cli, images, cache, locks, workspace, queues, logger } = this.deps;
    const id = record.id;
    const { key, family } = record.build!;
    if ((await this.waitForKey(record, signal, log)) === 'cached') return 'cached';
    const stopKeepAlive = locks.keepAlive(key, id);
    const fetches = this.fetchWatcher(log);
    const proxy = new EgressProxy({
      policy: config.FEATURE_SOURCES,
      connectTimeoutMs: config.FETCH_CONNECT_TIMEOUT_SECONDS * 1000,
      idleTimeoutMs: config.FETCH_IDLE_TIMEOUT_SECONDS * 1000,
      lookupTimeoutMs: config.FETCH_CONNECT_TIMEOUT_SECONDS * 1000,
      onEvent: fetches.onEvent,
    });
    try {
      // The holder before us may have finished just as we took over.
      if (await this.fromCache(record, log, false)) return 'cached';
      const pushRef = buildImageRef(registries.push, key);
      log.push(`codebay: building build key ${key} on builder ${config.BUILDER_NAME}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
      const folders = await workspace.materialise(id, record.source, record.artifact!);
      // Users see neither the builder's folders nor (once the config is read) their build args' values.
      const paths = { [folders.workspace]: '<workspace>', [folders.tmp]: '<tmp>', [folders.root]: '<job>' };
      log.mask = createMasker({ paths });
      // The second check, on what the CLI will really read: the same policy, every path with
      // symlinks followed on disk, and the build key recomputed from the unpacked files.
      const checked = await workspace.verify(folders, record);
      log.mask = createMasker({ values: buildArgValues(checked.config), paths });
      await mkdir(join(folders.tmp, 'home'), { recursive: true });

      const familyPull = familyImageRef(registries.pull, family);
      const cacheFrom = (await images.pull(familyPull)) ? familyPull : undefined;
      if (cacheFrom) await images.forgetDigests(cacheFrom);
      log.push(
        cacheFrom ? `codebay: reusing layers of your last build of this configuration` : `codebay: no earlier build of this configuration to reuse layers from`,
      );

      const proxyUrl = await proxy.start();
      try {
        await cli.build({
          workspaceFolder: folders.workspace,
          imageName: pushRef,
          env: cliEnvironment({ tmpDir: folders.tmp, dockerHost: config.DOCKER_HOST, proxyUrl, allowlist: config.BUILD_LOCAL_ENV_ALLOWLIST }),
          dockerPath: config.DOCKER_PATH,
          signal,
          stallMs: config.BUILD_STALL_SECONDS * 1000,
          onLine: log.push,
          cacheFrom,
          labels: { [BUILD_KEY_LABEL]: key, 'codebay.family': family },
        });
      } catch (err) {
        // A refused or cut-off fetch says more than the CLI's summary of it, and is not retried:
        // a source that never answers would hold the builder for every attempt.
        const fetch = fetches.last();
        if (fetch && !signal.aborted)
          throw new PermanentError(
            `fetch of ${fetch.target} ${fetch.kind === 'refused' ? 'refused' : 'timed out'}: ${fetch.reason} — ${(err as Error).message}`,
          );
        throw err;
      }
      const buildEndedAt = new Date().toISOString();
      await store.patch(id, { buildEndedAt });
      if (signal.aborted) throw signal.reason;

      log.push(`codebay: pushing ${pushRef}`);
      const digest = await images.push(pushRef, log.push);
      if (!digest) throw new TransientError(`the registry did not report a digest for ${pushRef}`);
      const familyPush = familyImageRef(registries.push, family);
      await images.tag(pushRef, familyPush);
      await images.push(familyPush, () => undefined);
      await images.forgetDigests(pushRef);
      const launch = launchFromImageLabels(await images.labels(pushRef));
      await cache.record(key, { digest, launch, builtAt: buildEndedAt, builder: config.BUILDER_NAME });
      const image = `${registries.pull}/${BUILD_IMAGE_REPOSITORY}@${digest}`;
      log.push(`codebay: pushed ${image}`);
      await log.drain();

      const built = await store.transition(id, ['Building'], 'Built', {
        devcontainerImage: image,
        launch,
        buildEndedAt,
        pushEndedAt: new Date().toISOString(),
      });
      if (!built.ok) {
        logger.info({ instanceId: id, status: built.current }, 'build finished but the instance moved on (deleted?)');
        await logs.end(id, 'cancelled', `instance is ${built.current ?? 'gone'}`);
        return 'built';
      }
      await logs.end(id, 'success');
      await enqueueInstanceJob(queues, 'provision', id);
      logger.info({ instanceId: id, key, digest }, 'build done, provisioning queued');
      return 'built';
    } finally {
      proxy.close();
      stopKeepAlive();
      await locks.release(key, id).catch(() => undefined);
    }
  }

  /**
   * After every job, and when a builder starts (its daemon may hold what a killed predecessor
   * left mid-build): leftover build containers, the CLI's temp tags and dangling images go,
   * built images stay within the budget.
   */
  async housekeeping(): Promise<void> {
    try {
      const result = await this.deps.images.prune(BUILD_KEY_LABEL, this.deps.config.BUILDER_MAX_IMAGE_BYTES);
      if (result.removed.length > 0 || result.dangling > 0 || result.containers > 0) this.deps.logger.info(result, 'pruned images');
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'image housekeeping failed');
    }
  }
}
