import { PermanentError, TransientError, type InstanceRecord } from '@codebay/contracts';
import { mergeMetadata, parseMetadataLabel } from '@codebay/devcontainer';
import { enqueueInstanceJob, type BuildLogStream, type CodebayQueues, type InstanceStore, type Logger } from '@codebay/platform';
import type { Histogram } from 'prom-client';
import type { BuilderConfig } from './config.ts';
import type { DevcontainerCli } from './devcontainer-cli.ts';
import type { ImageStore } from './images.ts';
import { LogBatcher } from './log-batcher.ts';
import type { BuildWorkspace } from './workspace.ts';

export interface BuildAttempt {
  instanceId: string;
  attempt: number;
  maxAttempts: number;
  signal: AbortSignal;
}

/** The image an instance's build is pushed as (the seed's naming), at a registry address. */
export const instanceImage = (registry: string, instanceId: string) => `${registry}/vscode-devcontainer-${instanceId}:latest`;

/**
 * The build use-case: claim the instance (Queued → Building), build it with the
 * Dev Containers CLI on this builder's daemon, push it, record the image and its
 * merged configuration (Building → Built), and hand it to the provisioner.
 */
export class BuildInstance {
  constructor(
    private readonly config: BuilderConfig,
    private readonly store: InstanceStore,
    private readonly logs: BuildLogStream,
    private readonly cli: DevcontainerCli,
    private readonly images: ImageStore,
    private readonly workspace: BuildWorkspace,
    private readonly queues: CodebayQueues,
    private readonly logger: Logger,
    private readonly duration: Histogram<'outcome'>,
  ) {}

  async run({ instanceId, attempt, maxAttempts, signal }: BuildAttempt): Promise<void> {
    const record = await this.store.get(instanceId);
    if (!record) throw new PermanentError(`instance ${instanceId} has no record`);
    if (record.source === 'simple' || !record.artifact) throw new PermanentError(`instance ${instanceId} has nothing to build`);
    const claimed = await this.store.transition(instanceId, ['Queued', 'Building'], 'Building', { buildStartedAt: new Date().toISOString() });
    if (!claimed.ok) {
      this.logger.info({ instanceId, status: claimed.current }, 'build skipped: instance is no longer waiting for one');
      return;
    }
    const log = new LogBatcher(this.logs, instanceId);
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    try {
      await this.build(record, attempt, signal, log);
      this.duration.observe({ outcome: 'success' }, seconds());
    } catch (err) {
      const reason = signal.aborted && !(err instanceof PermanentError) ? this.abortReason(signal) : (err as Error).message;
      const willRetry = err instanceof TransientError && attempt < maxAttempts && !signal.aborted;
      log.push(willRetry ? `codebay: ${reason} — retrying (attempt ${attempt + 1} of ${maxAttempts})` : `codebay: build failed: ${reason}`);
      await log.drain();
      if (willRetry) {
        await this.store.transition(instanceId, ['Building'], 'Queued');
        throw err;
      }
      this.duration.observe({ outcome: 'failure' }, seconds());
      const failed = await this.store.transition(instanceId, ['Building'], 'Failed', {
        failure: { phase: 'build', reason },
        buildEndedAt: new Date().toISOString(),
      });
      await this.logs.end(instanceId, failed.ok ? 'failure' : 'cancelled', reason);
      throw new PermanentError(reason);
    } finally {
      await this.workspace.clean(instanceId).catch(() => undefined);
    }
  }

  private abortReason(signal: AbortSignal): string {
    const r = signal.reason as Error | undefined;
    if (r?.name === 'TimeoutError') return `build timed out after ${this.config.BUILD_TIMEOUT_SECONDS} s`;
    return r?.message ?? 'build cancelled';
  }

  private async build(record: InstanceRecord, attempt: number, signal: AbortSignal, log: LogBatcher): Promise<void> {
    const id = record.id;
    const pushRef = instanceImage(this.config.REGISTRY_PUSH ?? this.config.REGISTRY, id);
    const pullRef = instanceImage(this.config.REGISTRY, id);
    log.push(`codebay: building ${pushRef}${attempt > 1 ? ` (attempt ${attempt})` : ''}`);
    const folders = await this.workspace.materialise(id, record.source, record.artifact!);

    await this.cli.build({
      workspaceFolder: folders.workspace,
      imageName: pushRef,
      tmpDir: folders.tmp,
      dockerHost: this.config.DOCKER_HOST,
      dockerPath: this.config.DOCKER_PATH,
      signal,
      onLine: log.push,
    });
    const buildEndedAt = new Date().toISOString();
    await this.store.patch(id, { buildEndedAt });

    log.push(`codebay: pushing ${pushRef}`);
    const digest = await this.images.push(pushRef, log.push);
    log.push(`codebay: pushed ${pushRef}${digest ? ` (${digest})` : ''}`);
    const labels = await this.images.labels(pushRef);
    const launch = mergeMetadata(parseMetadataLabel(labels['devcontainer.metadata']));
    await log.drain();

    const built = await this.store.transition(id, ['Building'], 'Built', {
      devcontainerImage: pullRef,
      launch,
      buildEndedAt,
      pushEndedAt: new Date().toISOString(),
    });
    if (!built.ok) {
      this.logger.info({ instanceId: id, status: built.current }, 'build finished but the instance moved on (deleted?)');
      await this.logs.end(id, 'cancelled', `instance is ${built.current ?? 'gone'}`);
      return;
    }
    await this.logs.end(id, 'success');
    await enqueueInstanceJob(this.queues, 'provision', id);
    this.logger.info({ instanceId: id, image: pullRef }, 'build done, provisioning queued');
  }
}
