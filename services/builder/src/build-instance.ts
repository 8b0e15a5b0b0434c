import {
  BUILD_IMAGE_REPOSITORY,
  PermanentError,
  TransientError,
  buildImageRef,
  familyImageRef,
  type BuildOutcome,
  type InstanceRecord,
} from '@codebay/contracts';
import { launchFromImageLabels, parseDevcontainerJson } from '@codebay/devcontainer';
import { enqueueInstanceJob, type BuildLogStream, type CodebayQueues, type InstanceStore, type Logger, type RegistryClient } from '@codebay/platform';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { BuildLocks } from './build-lock.ts';
import type { BuilderConfig } from './config.ts';
import type { DevcontainerCli } from './devcontainer-cli.ts';
import type { ImageStore } from './images.ts';
import { LogBatcher } from './log-batcher.ts';
import { buildArgValues, createMasker } from './secrets.ts';
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
 * from everything the build reads). If the registry has that key's image, nothing is
 * built: the instance goes `Cached` and on to provisioning. Otherwise one builder per key
 * builds it (others with the same key wait, then take it from the registry) with the
 * Dev Containers CLI on this builder's own daemon, reusing the layers of the config
 * family's last image, pushes it under the key and the family, and hands the instance on.
 * A delete stops the build within a second or so; a timeout stops it with a reason.
 */
export class BuildInstance {
  constructor(
    private readonly config: BuilderConfig,
    private readonly registries: { pull: string; push: string },
    private readonly store: InstanceStore,
    private readonly logs: BuildLogStream,
    private readonly cli: DevcontainerCli,
    private readonly images: ImageStore,
    private readonly registry: RegistryClient,
    private readonly locks: BuildLocks,
    private readonly workspace: BuildWorkspace,
    private readonly queues: CodebayQueues,
    private readonly logger: Logger,
    private readonly metrics: BuildMetrics,
  ) {}

  async run({ instanceId, attempt, maxAttempts, signal }: BuildAttempt): Promise<void> {
    const record = await this.store.get(instanceId);
    if (!record) throw new PermanentError(`instance ${instanceId} has no record`);
    if (record.source === 'simple' || !record.artifact) throw new PermanentError(`instance ${instanceId} has nothing to build`);
    if (!record.build) throw new PermanentError(`instance ${instanceId} has no build key (made by an older gateway); create it again`);
    if (record.status !== 'Queued' && record.status !== 'Building') {
      this.logger.info({ instanceId, status: record.status }, 'build skipped: instance is no longer waiting for one');
      return;
    }
    const log = new LogBatcher(this.logs, instanceId);
    // Another instance may have built the same key since the gateway looked.
    if (await this.fromRegistry(record, log)) return;
    const claimed = await this.store.transition(instanceId, ['Queued', 'Building'], 'Building', { buildStartedAt: new Date().toISOString() });
    if (!claimed.ok) {
      this.logger.info({ instanceId, status: claimed.current }, 'build skipped: instance is no longer waiting for one');
      return;
    }

    const cancel = new AbortController();
    const stopWatching = this.watchForDelete(instanceId, cancel);
    const combined = AbortSignal.any([signal, cancel.signal]);
    const started = process.hrtime.bigint();
    const observe = (outcome: BuildOutcome | 'timeout') => this.metrics.duration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    this.metrics.inProgress.inc();
    try {
      const outcome = await this.build(record, attempt, combined, log);
      observe(outcome === 'built' ? 'success' : 'cached');
    } catch (err) {
      await this.settleFailure(record, err, { attempt, maxAttempts, signal: combined, cancelled: cancel.signal.aborted, log, observe });
    } finally {
      stopWatching();
      this.metrics.inProgress.dec();
      await this.workspace.clean(instanceId).catch(() => undefined);
      await this.housekeeping();
    }
  }

  private async settleFailure(
    record: InstanceRecord,
    err: unknown,
    ctx: { attempt: number; maxAttempts: number; signal: AbortSignal; cancelled: boolean; log: LogBatcher; observe: (o: BuildOutcome | 'timeout') => void },
  ): Promise<void> {
    const id = record.id;
    if (ctx.cancelled) {
      const reason = 'build cancelled: the instance was deleted';
      ctx.log.push(`codebay: ${reason}`);
      await ctx.log.drain();
      await this.logs.end(id, 'cancelled', reason);
      ctx.observe('cancelled');
      this.logger.info({ instanceId: id }, reason);
      return;
    }
    const timedOut = ctx.signal.aborted && (ctx.signal.reason as Error | undefined)?.name === 'TimeoutError';
    const reason = timedOut
      ? `build timed out after ${this.config.BUILD_TIMEOUT_SECONDS} s`
      : ctx.signal.aborted && !(err instanceof PermanentError)
        ? ((ctx.signal.reason as Error | undefined)?.message ?? 'build interrupted')
        : (err as Error).message;
    const willRetry = err instanceof TransientError && ctx.attempt < ctx.maxAttempts && !ctx.signal.aborted;
    ctx.log.push(willRetry ? `codebay: ${reason} — retrying (attempt ${ctx.attempt + 1} of ${ctx.maxAttempts})` : `codebay: build failed: ${reason}`);
    await ctx.log.drain();
    if (willRetry) {
      await this.store.transition(id, ['Building'], 'Queued');
      throw err;
    }
    ctx.observe(timedOut ? 'timeout' : 'failure');
    const failed = await this.store.transition(id, ['Building'], 'Failed', {
      failure: { phase: 'build', reason },
      buildEndedAt: new Date().toISOString(),
    });
    await this.logs.end(id, failed.ok ? 'failure' : 'cancelled', reason);
    throw new PermanentError(reason);
  }

  /** Polls the instance while it builds: a delete (Deleting/Deleted/gone) aborts the build. */
  private watchForDelete(instanceId: string, cancel: AbortController): () => void {
    const timer = setInterval(() => {
      void this.store
        .statuses([instanceId])
        .then(([status]) => {
          if (status === undefined || status === 'Deleting' || status === 'Deleted') cancel.abort(new CancelledError('the instance was deleted'));
        })
        .catch(() => undefined);
    }, CANCEL_POLL_MS);
    return () => clearInterval(timer);
  }

  /**
   * When the registry has the key's image: the instance goes Cached and on to provisioning.
   * `count`: whether this lookup goes into the hit/miss metric (the polls while waiting for
   * another builder's build of the key do not).
   */
  private async fromRegistry(record: InstanceRecord, log: LogBatcher, count = true): Promise<boolean> {
    const key = record.build!.key;
    let labels: Record<string, string> | undefined;
    try {
      labels = (await this.registry.image(BUILD_IMAGE_REPOSITORY, key))?.labels;
    } catch (err) {
      this.logger.warn({ instanceId: record.id, err: (err as Error).message }, 'registry lookup failed; building');
    }
    if (count || labels) this.metrics.cache.inc({ result: labels ? 'hit' : 'miss' });
    if (!labels) return false;
    const image = buildImageRef(this.registries.pull, key);
    const moved = await this.store.transition(record.id, ['Queued', 'Building'], 'Cached', {
      devcontainerImage: image,
      launch: launchFromImageLabels(labels),
      build: { ...record.build!, cache: 'hit' },
    });
    if (!moved.ok) return true;
    log.push(`codebay: build key ${key}: ${image} is in the registry; nothing to build`);
    await log.drain();
    await this.logs.end(record.id, 'cached');
    await enqueueInstanceJob(this.queues, 'provision', record.id);
    this.logger.info({ instanceId: record.id, key }, 'build key already in the registry: cached, provisioning queued');
    return true;
  }

  /** Waits until this instance holds its key's build lock; 'cached' when another builder built the key meanwhile. */
  private async waitForKey(record: InstanceRecord, signal: AbortSignal, log: LogBatcher): Promise<'mine' | 'cached'> {
    const key = record.build!.key;
    let announced = false;
    for (;;) {
      const claim = await this.locks.claim(key, record.id);
      if (claim.ok) return 'mine';
      if (!announced) {
        log.push(`codebay: instance ${claim.holder} is building the same configuration (build key ${key.slice(0, 12)}…); waiting for it`);
        announced = true;
      }
      await sleep(LOCK_POLL_MS, undefined, { signal });
      if (await this.fromRegistry(record, log, false)) return 'cached';
    }
  }

  private async build(record: InstanceRecord, attempt: number, signal: AbortSignal, log: LogBatcher): Promise<'built' | 'cached'> {
    const id = record.id;
    const { key, family } = record.build!;
    if ((await this.waitForKey(record, signal, log)) === 'cached') return 'cached';
    const stopKeepAlive = this.locks.keepAlive(key, id);
    try {
      // The holder before us may have finished just as we took over.
      if (await this.fromRegistry(record, log, false)) return 'cached';
      const pushRef = buildImageRef(this.registries.push, key);
      const familyRef = familyImageRef(this.registries.push, family);
      log.push(`codebay: building ${pushRef} on builder ${this.config.BUILDER_NAME}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
      const folders = await this.workspace.materialise(id, record.source, record.artifact!);
      log.mask = createMasker([...(await this.buildArgs(folders.workspace)), record.accessToken]);
      const cacheFrom = (await this.images.pull(familyRef)) ? familyRef : undefined;
      log.push(cacheFrom ? `codebay: reusing layers of ${familyRef}` : `codebay: no earlier image of this configuration to reuse layers from`);

      await this.cli.build({
        workspaceFolder: folders.workspace,
        imageName: pushRef,
        tmpDir: folders.tmp,
        dockerHost: this.config.DOCKER_HOST,
        dockerPath: this.config.DOCKER_PATH,
        signal,
        onLine: log.push,
        cacheFrom,
        labels: { [BUILD_KEY_LABEL]: key, 'codebay.family': family },
      });
      const buildEndedAt = new Date().toISOString();
      await this.store.patch(id, { buildEndedAt });
      if (signal.aborted) throw signal.reason;

      log.push(`codebay: pushing ${pushRef}`);
      const digest = await this.images.push(pushRef, log.push);
      await this.images.tag(pushRef, familyRef);
      await this.images.push(familyRef, () => undefined);
      log.push(`codebay: pushed ${pushRef}${digest ? ` (${digest})` : ''}`);
      const launch = launchFromImageLabels(await this.images.labels(pushRef));
      await log.drain();

      const built = await this.store.transition(id, ['Building'], 'Built', {
        devcontainerImage: buildImageRef(this.registries.pull, key),
        launch,
        buildEndedAt,
        pushEndedAt: new Date().toISOString(),
      });
      if (!built.ok) {
        this.logger.info({ instanceId: id, status: built.current }, 'build finished but the instance moved on (deleted?)');
        await this.logs.end(id, 'cancelled', `instance is ${built.current ?? 'gone'}`);
        return 'built';
      }
      await this.logs.end(id, 'success');
      await enqueueInstanceJob(this.queues, 'provision', id);
      this.logger.info({ instanceId: id, key }, 'build done, provisioning queued');
      return 'built';
    } finally {
      stopKeepAlive();
      await this.locks.release(key, id).catch(() => undefined);
    }
  }

  /** Build arg values of the materialised config: masked in the log. */
  private async buildArgs(workspace: string): Promise<string[]> {
    for (const path of ['.devcontainer/devcontainer.json', '.devcontainer.json']) {
      const file = join(workspace, path);
      if (!existsSync(file)) continue;
      try {
        return buildArgValues(parseDevcontainerJson(await readFile(file, 'utf8')));
      } catch {
        return [];
      }
    }
    return [];
  }

  /**
   * After every job, and when a builder starts (its daemon may hold what a killed predecessor
   * left mid-build): leftover build containers, the CLI's temp tags and dangling images go,
   * built images stay within the budget.
   */
  async housekeeping(): Promise<void> {
    try {
      const result = await this.images.prune(BUILD_KEY_LABEL, this.config.BUILDER_MAX_IMAGE_BYTES);
      if (result.removed.length > 0 || result.dangling > 0 || result.containers > 0) this.logger.info(result, 'pruned images');
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'image housekeeping failed');
    }
  }
}
