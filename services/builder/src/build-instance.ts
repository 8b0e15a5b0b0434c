import {
  BUILD_IMAGE_REPOSITORY,
  NO_EXTENSION_SOURCE,
  PermanentError,
  TransientError,
  buildImageRef,
  familyImageRef,
  mergeWarnings,
  type BuildOutcome,
  type InstanceRecord,
  type InstanceStatus,
  type LaunchConfig,
  type PropertyWarning,
} from '@codebay/contracts';
import { configWarnings, launchFromImageLabels, metadataWarnings, parseMetadataLabel } from '@codebay/devcontainer';
import {
  createMasker,
  isShutdown,
  secretBuildArgValues,
  type BuildCache,
  type CachedBuilds,
  type BuildLogStream,
  type JobQueues,
  type InstanceStore,
  type Logger,
  type RegistrySettings,
} from '@codebay/platform';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Counter, Gauge, Histogram } from 'prom-client';
import { explainBuildFailure } from './build-failure.ts';
import type { BuildLocks } from './build-lock.ts';
import type { BuilderConfig } from './config.ts';
import { cliEnvironment, failedBuildOf, type DevcontainerCli } from './devcontainer-cli.ts';
import { EgressProxy, type EgressEvent } from './egress-proxy.ts';
import { bakeExtensions } from './extension-bake.ts';
import { bakedFrom, extensionWarnings, wantedExtensionIds, type ExtensionSource } from './extension-source.ts';
import type { ExtensionSourceWatch } from './extension-source-watch.ts';
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
  /** Extensions of the builds' configurations: `baked` into an image, or `missing` from the extension source. */
  extensions: Counter<'result'>;
}

/** What the build use-case works with (wired in main.ts). */
export interface BuildInstanceDeps {
  config: BuilderConfig;
  registries: RegistrySettings;
  store: InstanceStore;
  logs: BuildLogStream;
  cli: DevcontainerCli;
  images: ImageStore;
  /** Where a builder records the image it pushed for a build key. */
  cache: BuildCache;
  /** The "already built" decision (shared with the gateway's fast path). */
  cachedBuilds: CachedBuilds;
  locks: BuildLocks;
  workspace: BuildWorkspace;
  jobs: JobQueues;
  logger: Logger;
  metrics: BuildMetrics;
  /** The operator's extension source (EXTENSION_SOURCE_DIR): wanted extensions are baked into each image. None: instances install them at start from the gallery. */
  extensions?: ExtensionSource;
  /** This builder's extension source fingerprint, rescanned before each build: a cached image baked from another source is built again. */
  sourceWatch: Pick<ExtensionSourceWatch, 'current'>;
}

/** The image's own warnings, from its labels: what its features ask that codebay does not grant, the extensions its build could not bake. */
function imageWarnings(labels: Record<string, string>): PropertyWarning[] {
  return mergeWarnings(metadataWarnings(parseMetadataLabel(labels['devcontainer.metadata'])), extensionWarnings(labels));
}

/** The label every image codebay builds carries (housekeeping finds them by it). */
const BUILD_KEY_LABEL = 'codebay.build-key';

/** A delete reached the instance while it was being built. */
class CancelledError extends Error {
  override name = 'CancelledError';
}

const CANCEL_POLL_MS = 1_000;
const LOCK_POLL_MS = 1_000;
/**
 * How long `handOff` waits at most for a provision job that looked at the instance while it was
 * Building to finish (it defers within milliseconds; a worker that died holding it loses it to
 * BullMQ's stalled-job recovery within the lock duration, and the job then runs again).
 */
const HANDOFF_SETTLE_MS = 120_000;
const HANDOFF_POLL_MS = 20;

/** Statuses in which a runtime has taken the offer of a built image (see `offer`): the instance ran or runs it. */
const OFFER_TAKEN: readonly InstanceStatus[] = ['Provisioning', 'Running', 'Failed'];

/** A built image on its way to the registry. */
interface PushTarget {
  record: InstanceRecord;
  /** The builder's tag of the image (`<push registry>/codebay-devcontainer:<key>`). */
  pushRef: string;
  buildEndedAt: string;
  launch: LaunchConfig;
  /** What the image's features ask of the container that codebay does not grant (`metadataWarnings`). */
  warnings: PropertyWarning[];
  /** The extension source the image was baked from, for its cache record (`bakedFrom`). */
  extensionSource: string | null | undefined;
  log: LogBatcher;
  signal: AbortSignal;
}

/** A pushed image: its manifest digest and how instances pull it (by that digest). */
interface Pushed {
  digest: string;
  image: string;
  pushEndedAt: string;
}

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
 *
 * The push does not hold the instance back: the image just built is offered, by image ID, to
 * a runtime on this builder's daemon (`offer`), which may start the instance from it while the
 * push runs (`Building → Provisioning → Running`). The push still completes for the build cache
 * and other nodes, and the key → digest record is written only once it has; the record then
 * learns the pushed image (`devcontainerImage`, by digest) and `pushEndedAt`. A push that fails
 * before any runtime took the image fails the attempt as always (the job builds again); once an
 * instance runs the image, the push is retried here and, if it keeps failing, the instance keeps
 * running and gets a `warning` (see `publishAgain`).
 */
/** The config names cache to import (`build.cacheFrom`: a string or a non-empty list). */
function userCacheFrom(config: Record<string, unknown>): boolean {
  const from = (config.build as { cacheFrom?: unknown } | undefined)?.cacheFrom;
  return typeof from === 'string' ? from !== '' : Array.isArray(from) && from.length > 0;
}

export class BuildInstance {
  /**
   * The daemon's build cache may hold records another build's user chose (ImageStore.isolateBuildCache):
   * true until it was all cleared (what ran before this builder started is unknown), and after a
   * build that imported cache its user named (`build.cacheFrom`).
   */
  private buildCacheTainted = true;

  constructor(private readonly deps: BuildInstanceDeps) {}

  async run({ instanceId, attempt, maxAttempts, signal }: BuildAttempt): Promise<void> {
    const { store, logger, metrics } = this.deps;
    const record = await store.get(instanceId);
    if (!record) throw new PermanentError(`instance ${instanceId} has no record`);
    if (record.source === 'simple' || !record.artifact) throw new PermanentError(`instance ${instanceId} has nothing to build`);
    if (!record.build) throw new PermanentError(`instance ${instanceId} has no build key (made by an older gateway); create it again`);
    if (record.status !== 'Queued' && record.status !== 'Building') {
      if (record.localImage && !record.devcontainerImage && !record.warning && OFFER_TAKEN.includes(record.status)) return this.resumePush(record, signal);
      logger.info({ instanceId, status: record.status }, 'build skipped: instance is no longer waiting for one');
      return;
    }
    const log = new LogBatcher(this.deps.logs, instanceId);
    // The source this builder would bake from now (the folder may have changed since the gateway looked).
    const source = await this.deps.sourceWatch.current();
    // Another instance may have built the same key since the gateway looked.
    if (await this.fromCache(record, log, { source })) return;
    // (A re-claimed build withdraws an earlier attempt's offer: a late provision job must not start that image.)
    const claimed = await store.transition(instanceId, ['Queued', 'Building'], 'Building', { buildStartedAt: new Date().toISOString(), localImage: null });
    if (!claimed.ok) {
      logger.info({ instanceId, status: claimed.current }, 'build skipped: instance is no longer waiting for one');
      return;
    }

    const cancel = new AbortController();
    const stopWatching = this.watchForDelete(instanceId, cancel);
    const combined = AbortSignal.any([signal, cancel.signal]);
    const started = process.hrtime.bigint();
    const observe = (outcome: BuildOutcome | 'timeout' | 'released') => metrics.duration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    metrics.inProgress.inc();
    try {
      const outcome = await this.build(record, attempt, combined, log, source);
      observe(outcome === 'built' ? 'success' : 'cached');
    } catch (err) {
      await this.settleFailure(record, err, { attempt, maxAttempts, signal: combined, cancelled: cancel.signal.aborted, log, observe });
    } finally {
      stopWatching();
      metrics.inProgress.dec();
      // How long this job held the builder: queued instances' estimates come from these (not from builds cut short).
      if (!cancel.signal.aborted && !isShutdown(signal))
        await this.deps.jobs.recordBuildDuration(Number(process.hrtime.bigint() - started) / 1e9).catch(() => undefined);
      await this.deps.workspace.clean(instanceId).catch(() => undefined);
      // A builder that is stopping hands its job back first; the next start tidies the daemon.
      if (!isShutdown(signal)) await this.housekeeping();
    }
  }

  /**
   * The last word on a build job that will not run again (its last attempt failed, it
   * stalled too often, or it failed in a way `run` did not settle): an instance still
   * waiting for a build goes Failed with `reason`, and its build log ends. One that `run`
   * already settled (Failed, Cached, Built, deleted) is left as it is.
   */
  async settleFinalFailure(instanceId: string, reason: string): Promise<void> {
    const failed = await this.deps.store.transition(instanceId, ['Queued', 'Building'], 'Failed', {
      failure: { phase: 'build', reason },
      buildEndedAt: new Date().toISOString(),
      localImage: null,
    });
    if (failed.ok) await this.deps.logs.end(instanceId, 'failure', reason);
  }

  private async settleFailure(
    record: InstanceRecord,
    err: unknown,
    ctx: {
      attempt: number;
      maxAttempts: number;
      signal: AbortSignal;
      cancelled: boolean;
      log: LogBatcher;
      observe: (o: BuildOutcome | 'timeout' | 'released') => void;
    },
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
    if (isShutdown(ctx.signal)) {
      // This builder is stopping: the job goes back to the queue (startWorkers) and another builder starts it afresh.
      ctx.log.push('codebay: this builder is shutting down: the build goes back to the queue for another builder');
      await ctx.log.drain();
      await store.transition(id, ['Building'], 'Queued', { localImage: null });
      ctx.observe('released');
      logger.info({ instanceId: id }, 'build released: the builder is shutting down');
      throw err;
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
    // One log line: the reason's sentences (the lines it quotes are just above in the log).
    const said = reason.split('\n')[0]!;
    ctx.log.push(willRetry ? `codebay: ${said} — retrying (attempt ${ctx.attempt + 1} of ${ctx.maxAttempts})` : `codebay: build failed: ${said}`);
    await ctx.log.drain();
    if (willRetry) {
      await store.transition(id, ['Building'], 'Queued', { localImage: null });
      throw err instanceof TransientError ? new TransientError(reason) : err;
    }
    ctx.observe(timedOut ? 'timeout' : 'failure');
    // From Queued too: a failed push withdraws its image's offer by going back to Queued (see build).
    const failed = await store.transition(id, ['Building', 'Queued'], 'Failed', {
      failure: { phase: 'build', reason },
      buildEndedAt: new Date().toISOString(),
      localImage: null,
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
   * another builder's build of the key do not). `source`: this builder's extension source
   * fingerprint (an image that wants extensions must have been baked from it; undefined: the
   * published one).
   */
  private async fromCache(
    record: InstanceRecord,
    log: LogBatcher,
    { count = true, source }: { count?: boolean; source: string | undefined },
  ): Promise<boolean> {
    const { cachedBuilds, store } = this.deps;
    const key = record.build!.key;
    const hit = await cachedBuilds.lookup(key, { count, instanceId: record.id, ...(source === undefined ? {} : { extensionSource: source }) });
    if (!hit) return false;
    const fields = cachedBuilds.fields(hit, record.build!, record.warnings);
    const moved = await store.transition(record.id, ['Queued', 'Building'], 'Cached', fields);
    if (!moved.ok) return true;
    await log.drain();
    await cachedBuilds.settle(record.id, key, hit, fields.warnings);
    return true;
  }

  /** Waits until this instance holds its key's build lock; 'cached' when another builder built the key meanwhile. */
  private async waitForKey(record: InstanceRecord, signal: AbortSignal, log: LogBatcher, source: string | undefined): Promise<'mine' | 'cached'> {
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
      if (await this.fromCache(record, log, { count: false, source })) return 'cached';
    }
  }

  /**
   * One line in the build log for each fetch the egress proxy refused or cut off; the last
   * is kept for the reason. Fetches that merely fail (a name that does not resolve: the CLI
   * asks Docker Hub for image details it can do without) show in the CLI's own lines.
   */
  private fetchWatcher(log: LogBatcher): { onEvent: (e: EgressEvent) => void; last: () => EgressEvent | undefined; all: () => EgressEvent[] } {
    let last: EgressEvent | undefined;
    // Every event, failed lookups and connects too: explainBuildFailure names a feature whose source was among them.
    const all: EgressEvent[] = [];
    return {
      onEvent: (e) => {
        if (all.length < 1_000) all.push(e);
        if (e.kind === 'error') return;
        last = e;
        log.push(`codebay: fetch of ${e.target} ${e.kind === 'refused' ? 'refused' : 'timed out'}: ${e.reason}`);
      },
      last: () => last,
      all: () => all,
    };
  }

  private async build(record: InstanceRecord, attempt: number, signal: AbortSignal, log: LogBatcher, source: string | undefined): Promise<'built' | 'cached'> {
    const { config, registries, store, cli, images, locks, workspace } = this.deps;
    const id = record.id;
    const { key, family } = record.build!;
    if ((await this.waitForKey(record, signal, log, source)) === 'cached') return 'cached';
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
      if (await this.fromCache(record, log, { count: false, source })) return 'cached';
      const pushRef = buildImageRef(registries.push, key);
      log.push(`codebay: building build key ${key} on builder ${config.BUILDER_NAME}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
      const folders = await workspace.materialise(id, record.source, record.artifact!);
      // Users never see the builder's folders, nor (once the config is read) its secret build args' values.
      const paths = { [folders.workspace]: '<workspace>', [folders.tmp]: '<tmp>', [folders.root]: '<job>' };
      log.mask = createMasker({ paths });
      // The second check, on what the CLI will really read: the same policy, every path with
      // symlinks followed on disk, and the build key recomputed from the unpacked files.
      const checked = await workspace.verify(folders, record);
      log.mask = createMasker({ values: secretBuildArgValues(checked.config), paths });
      // The config's warnings, and the gateway's about its hostRequirements (they depend on the runtime and the operator's maxima).
      const gatewayWarnings = (record.warnings ?? []).filter((w) => w.property.startsWith('hostRequirements.'));
      for (const w of mergeWarnings(configWarnings(checked.config), gatewayWarnings)) log.push(`codebay: warning: ${w.message}`);
      await mkdir(join(folders.tmp, 'home'), { recursive: true });

      // The last build of this configuration, from where builders push it (see ImageStore.pull).
      const lastBuild = familyImageRef(registries.push, family);
      const cacheFrom = (await images.pull(lastBuild, 'push')) ? lastBuild : undefined;
      if (cacheFrom) await images.forgetDigests(cacheFrom);
      log.push(
        cacheFrom ? `codebay: reusing layers of your last build of this configuration` : `codebay: no earlier build of this configuration to reuse layers from`,
      );

      // No record an earlier build (another tenant's) left over its cache mounts or imported may answer a step of this one.
      const isolated = await images.isolateBuildCache(this.buildCacheTainted).catch((err: Error) => {
        throw new TransientError(`could not clear the daemon's build cache before the build: ${err.message}`);
      });
      if (isolated.cleared) this.buildCacheTainted = false;
      // Cache a user names is imported into the daemon's cache: cleared before the next build.
      if (userCacheFrom(checked.config)) this.buildCacheTainted = true;
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
        // A refused or cut-off fetch is not retried: a source that never answers would hold the builder for every attempt.
        const fetch = fetches.last();
        // The failing part named (a feature as written and its step, a source this deployment cannot reach), with its last lines.
        const failed = failedBuildOf(err);
        const features = Object.keys((checked.config.features as Record<string, unknown> | undefined) ?? {});
        const explained = failed && !signal.aborted ? explainBuildFailure(failed, { features, fetches: fetches.all(), mask: log.mask }) : undefined;
        if (explained) throw err instanceof TransientError && !fetch ? new TransientError(explained) : new PermanentError(explained);
        // Otherwise a refused or cut-off fetch says more than the CLI's summary of it.
        if (fetch && !signal.aborted)
          throw new PermanentError(
            `fetch of ${fetch.target} ${fetch.kind === 'refused' ? 'refused' : 'timed out'}: ${fetch.reason} — ${(err as Error).message}`,
          );
        throw err;
      }
      const buildEndedAt = new Date().toISOString();
      await store.patch(id, { buildEndedAt });
      if (signal.aborted) throw signal.reason;

      // What the CLI just built, by ID (the name is this builder's own tag, set by the CLI a moment ago).
      let built = await images.image(pushRef);
      const launch = launchFromImageLabels(built.labels);
      // The extensions the configuration and its features want, from the operator's source, into the image (tagged pushRef again).
      const wanted = wantedExtensionIds(launch.extensions);
      // For the cache record: the source this image's extensions come from (see BuiltImage.extensionSource).
      let extensionSource: string | null = wanted.length === 0 ? null : NO_EXTENSION_SOURCE;
      if (this.deps.extensions && wanted.length > 0) {
        const baked = await bakeExtensions(
          { source: this.deps.extensions, images },
          { from: built.id, tag: pushRef, wanted, workDir: join(folders.tmp, 'extensions'), log: log.push, signal },
        );
        if (signal.aborted) throw signal.reason;
        this.deps.metrics.extensions.inc({ result: 'baked' }, baked.resolution.found.length);
        this.deps.metrics.extensions.inc({ result: 'missing' }, baked.resolution.missing.length);
        built = await images.image(pushRef);
        if (built.id !== baked.imageId) throw new TransientError(`${pushRef} changed while its extensions were baked into it`);
        extensionSource = baked.resolution.fingerprint;
      }
      // What the features ask of the container that codebay does not grant, and the extensions the source lacks: on the instance and in the log.
      const warnings = imageWarnings(built.labels);
      // (One line per property: the config's own hostRequirements.gpu is in the image's metadata too, and was said above.)
      const said = new Set((record.warnings ?? []).map((w) => w.property));
      for (const w of warnings) if (!said.has(w.property)) log.push(`codebay: warning: ${w.message}`);
      if (warnings.length) await store.patch(id, { warnings: mergeWarnings(record.warnings ?? [], warnings) });
      const offered = await this.offer(record, built.id, launch, log);
      const target = { record, pushRef, buildEndedAt, launch, warnings, extensionSource, log, signal };
      let pushed: Pushed | undefined;
      try {
        pushed = await this.publish(target);
      } catch (err) {
        if (!offered) throw err;
        // The offer goes with the status, atomically: a runtime takes it only from Building. Then
        // the job's next attempt builds again, as for any push that fails.
        const withdrawn = await store.transition(id, ['Building'], 'Queued', { localImage: null });
        if (withdrawn.ok || !OFFER_TAKEN.includes(withdrawn.current!)) throw err;
        // An instance was started from this very image: it keeps running, the push is retried here.
        pushed = await this.publishAgain(target, err);
      }
      if (pushed) await this.finish(target, pushed, offered);
      return 'built';
    } finally {
      proxy.close();
      stopKeepAlive();
      await locks.release(key, id).catch(() => undefined);
    }
  }

  /**
   * Offers the image just built to a runtime on this builder's Docker daemon before it is
   * pushed: the record names it by image ID (`localImage`) with its launch configuration, and
   * the provision job is queued now. A provisioner whose daemon holds an image with exactly
   * that ID (the same daemon, in practice) may start the instance from it while the push runs
   * (`Building → Provisioning`); any other waits for `Built` (the pushed image, by digest).
   * The ID is the content address of the image's configuration, which names every layer by
   * its content: the instance runs exactly the image built for it, and the registry's copy,
   * pushed from it, has the same configuration (its manifest names the ID as its config digest).
   */
  private async offer(record: InstanceRecord, imageId: string, launch: LaunchConfig, log: LogBatcher): Promise<boolean> {
    const { store, jobs, config } = this.deps;
    const offered = await store.transition(record.id, ['Building'], 'Building', { localImage: { id: imageId, builder: config.BUILDER_NAME }, launch });
    if (!offered.ok) return false;
    log.push(`codebay: built ${imageId}; an instance on this builder's daemon may start from it while it is pushed`);
    await jobs.enqueue('provision', { instanceId: record.id });
    return true;
  }

  /**
   * Pushes the built image under its key and its family's tag and records key → digest: the
   * build cache only ever names an image the registry holds (docs/security.md).
   */
  private async publish({ record, pushRef, buildEndedAt, launch, warnings, extensionSource, log }: PushTarget): Promise<Pushed> {
    const { registries, images, cache, config } = this.deps;
    const { key, family } = record.build!;
    log.push(`codebay: pushing ${pushRef}`);
    const digest = await images.push(pushRef, log.push);
    if (!digest) throw new TransientError(`the registry did not report a digest for ${pushRef}`);
    const familyPush = familyImageRef(registries.push, family);
    await images.tag(pushRef, familyPush);
    await images.push(familyPush, () => undefined);
    await images.forgetDigests(pushRef);
    await cache.record(key, {
      digest,
      launch,
      warnings,
      builtAt: buildEndedAt,
      builder: config.BUILDER_NAME,
      ...(extensionSource === undefined ? {} : { extensionSource }),
    });
    const image = `${registries.pull}/${BUILD_IMAGE_REPOSITORY}@${digest}`;
    log.push(`codebay: pushed ${image}`);
    await log.drain();
    return { digest, image, pushEndedAt: new Date().toISOString() };
  }

  /**
   * The push of an image an instance already runs failed: pushed again (PUSH_ATTEMPTS in all,
   * backing off), in this job — this daemon holds the image, and building it again would make
   * another. If every attempt fails, the instance keeps running the image it was built; the
   * failure becomes its `warning`, a line and the reason of its build log's end (the build
   * succeeded), and the build cache does not get the key: an identical request builds again.
   */
  private async publishAgain(target: PushTarget, first: unknown): Promise<Pushed | undefined> {
    const { config, store, logs, logger } = this.deps;
    const { record, log, signal } = target;
    let err = first as Error;
    for (let attempt = 2; attempt <= config.PUSH_ATTEMPTS && !signal.aborted; attempt++) {
      const delayMs = config.PUSH_BACKOFF_SECONDS * 1000 * 2 ** (attempt - 2);
      log.push(
        `codebay: ${log.mask(err.message)} — the instance runs this image already; pushing again in ${delayMs / 1000} s (attempt ${attempt} of ${config.PUSH_ATTEMPTS})`,
      );
      await log.drain();
      try {
        await sleep(delayMs, undefined, { signal });
        return await this.publish(target);
      } catch (e) {
        err = signal.aborted ? new Error(`push interrupted: ${(signal.reason as Error | undefined)?.message ?? 'aborted'}`) : (e as Error);
      }
    }
    const reason = log.mask(
      `the image was not pushed (${err.message}); the instance runs it, but it is not in the build cache: an identical request builds it again`,
    );
    log.push(`codebay: ${reason}`);
    await log.drain();
    await store.patch(record.id, { warning: reason });
    await logs.end(record.id, 'success', reason);
    logger.warn({ instanceId: record.id, err: err.message }, 'push failed after the instance started from the image; the instance keeps running');
    return undefined;
  }

  /**
   * The image is pushed: the instance goes Built with it (by digest) and on to provisioning —
   * unless a runtime took the offer meanwhile, and the instance runs (or ran) the image
   * already: then the record only learns the pushed image and when the push ended.
   */
  private async finish({ record, buildEndedAt, launch }: PushTarget, pushed: Pushed, offered: boolean): Promise<void> {
    const { store, logs, logger } = this.deps;
    const id = record.id;
    const built = await store.transition(id, ['Building'], 'Built', { devcontainerImage: pushed.image, launch, buildEndedAt, pushEndedAt: pushed.pushEndedAt });
    if (built.ok) {
      await logs.end(id, 'success');
      await this.handOff(id, offered);
      logger.info({ instanceId: id, key: record.build!.key, digest: pushed.digest }, 'build done, provisioning queued');
      return;
    }
    if (OFFER_TAKEN.includes(built.current!)) {
      await store.patch(id, { devcontainerImage: pushed.image, pushEndedAt: pushed.pushEndedAt });
      await logs.end(id, 'success');
      logger.info({ instanceId: id, status: built.current, digest: pushed.digest }, 'image pushed; the instance started from it before the push ended');
      return;
    }
    logger.info({ instanceId: id, status: built.current }, 'build finished but the instance moved on (deleted?)');
    await logs.end(id, 'cancelled', `instance is ${built.current ?? 'gone'}`);
  }

  /**
   * Hands a Built instance to the provisioner. The job queued with the offer may still be
   * finishing, having looked while the instance was Building from a runtime that could not
   * take the image (another daemon, Kubernetes): such a job ends without provisioning, and
   * while it is live it swallows a new request (one job id per instance). So until the instance
   * leaves Built, a job that ended is replaced; one that waits will find Built itself. A job
   * that looks ends within milliseconds: this loop rarely turns.
   */
  private async handOff(id: string, offered: boolean): Promise<void> {
    const { jobs, store } = this.deps;
    await jobs.enqueue('provision', { instanceId: id });
    if (!offered) return;
    const job = () => jobs.queue('provision').getJob(jobs.catalog.provision.id({ instanceId: id }));
    for (const deadline = Date.now() + HANDOFF_SETTLE_MS; Date.now() < deadline; await sleep(HANDOFF_POLL_MS)) {
      const [status] = await store.statuses([id]);
      if (status !== 'Built') return;
      const state = (await (await job())?.getState()) ?? 'gone';
      if (state === 'active') continue;
      if (state === 'completed' || state === 'failed' || state === 'gone') await jobs.enqueue('provision', { instanceId: id });
      return;
    }
  }

  /**
   * A build job that finds its instance started from the image while a builder pushed it, and
   * no pushed image recorded: that builder stopped mid-push (it died; the job stalled and came
   * here). The push is finished here when this daemon holds that very image (by ID); otherwise
   * the instance keeps running and its build log says why its image is not cached.
   */
  private async resumePush(record: InstanceRecord, signal: AbortSignal): Promise<void> {
    const { registries, images, logs, logger, store } = this.deps;
    const local = record.localImage!;
    const log = new LogBatcher(logs, record.id);
    const target: PushTarget = {
      record,
      pushRef: buildImageRef(registries.push, record.build!.key),
      buildEndedAt: record.buildEndedAt ?? new Date().toISOString(),
      launch: record.launch ?? launchFromImageLabels({}),
      // The image's own (its features') warnings: read from the image below, never from the record
      // (a running instance's log can add warnings to its record; the cache entry is shared).
      warnings: [],
      extensionSource: undefined,
      log,
      signal,
    };
    if (!(await images.has(local.id))) {
      const reason = `the builder that built this image (${local.builder}) stopped while pushing it; the instance runs it, but it is not in the build cache`;
      log.push(`codebay: ${reason}`);
      await log.drain();
      await store.patch(record.id, { warning: reason });
      await logs.end(record.id, 'success', reason);
      logger.warn({ instanceId: record.id, builder: local.builder }, 'cannot finish the push of an image this daemon does not hold');
      return;
    }
    log.push(`codebay: finishing the push of ${local.id} (builder ${local.builder} stopped while pushing it)`);
    const labels = (await images.image(local.id)).labels;
    target.warnings = imageWarnings(labels);
    target.extensionSource = bakedFrom(labels, wantedExtensionIds(target.launch.extensions));
    await images.tag(local.id, target.pushRef);
    let pushed: Pushed | undefined;
    try {
      pushed = await this.publish(target);
    } catch (err) {
      pushed = await this.publishAgain(target, err);
    }
    if (pushed) await this.finish(target, pushed, false);
  }

  /**
   * After every job, and when a builder starts (its daemon may hold what a killed predecessor
   * left mid-build): leftover build containers, the CLI's temp tags and dangling images go,
   * built images and BuildKit's cache stay within their budgets, and the cache is isolated
   * (ImageStore.isolateBuildCache).
   */
  async housekeeping(): Promise<void> {
    try {
      const { config, images } = this.deps;
      const result = await images.prune(BUILD_KEY_LABEL, config.BUILDER_MAX_IMAGE_BYTES, config.BUILDER_MAX_BUILD_CACHE_BYTES, this.buildCacheTainted);
      if (result.clearedBuildCache) this.buildCacheTainted = false;
      if (result.removed.length > 0 || result.dangling > 0 || result.containers > 0 || result.cacheBytes > 0) this.deps.logger.info(result, 'pruned images');
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'image housekeeping failed');
    }
  }
}
