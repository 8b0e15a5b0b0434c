import { PermanentError, TransientError, mergeWarnings, type InstanceRecord, type InstanceStatus } from '@codebay/contracts';
import { applyImageHostRequirements, type ImageRequirementsOutcome } from '@codebay/devcontainer';
import { createMasker, isShutdown, type InstanceStore, type Logger } from '@codebay/platform';
import type { Histogram } from 'prom-client';
import type { InstanceLogMirror } from './instance-log.ts';
import type { KeptFailures } from './kept-failures.ts';
import type { RuntimeDriver } from './runtime/driver.ts';
import { timeToEditor } from './time-to-editor.ts';

const mask = createMasker();

export interface ProvisionAttempt {
  instanceId: string;
  attempt: number;
  maxAttempts: number;
  signal: AbortSignal;
}

/**
 * The provision use-case: claim the instance (Built|Cached|Queued-simple →
 * Provisioning; or Building, when the runtime holds the image its builder just built and
 * is still pushing: see `claimableFrom`), have the runtime driver create and start it,
 * wait until the editor answers, then Running. A delete that lands meanwhile wins:
 * whatever this attempt created is removed again. The image's hostRequirements (from its
 * metadata) raise the instance's resources with the claim, or fail the instance before anything
 * is made when they are above what it may have (`imageRequirements`).
 */
export interface ProvisionInstanceDeps {
  store: InstanceStore;
  driver: RuntimeDriver;
  logger: Logger;
  /** `codebay_provision_duration_seconds{outcome}`. */
  duration: Histogram<'outcome'>;
  /** `codebay_time_to_editor_seconds{cache}` and `codebay_instance_phase_duration_seconds{phase,cache}`, at an instance's first Running. */
  timeToEditor?: { total: Histogram<'cache'>; phases: Histogram<'phase' | 'cache'> };
  /** Mirrors the container's log into the instance log and its lifecycle lines into the record, from its start. */
  instanceLogs?: InstanceLogMirror;
  /** Keeps a new instance's failed container for inspection a while (FAILED_INSTANCE_KEEP_SECONDS); without it, removed at once. */
  keptFailures?: Pick<KeptFailures, 'keepOrRemove'>;
}

export class ProvisionInstance {
  private readonly store: InstanceStore;
  private readonly driver: RuntimeDriver;
  private readonly logger: Logger;
  private readonly duration: Histogram<'outcome'>;
  private readonly timeToEditor: ProvisionInstanceDeps['timeToEditor'];
  private readonly instanceLogs: InstanceLogMirror | undefined;
  private readonly keptFailures: ProvisionInstanceDeps['keptFailures'];

  constructor(deps: ProvisionInstanceDeps) {
    ({
      store: this.store,
      driver: this.driver,
      logger: this.logger,
      duration: this.duration,
      timeToEditor: this.timeToEditor,
      instanceLogs: this.instanceLogs,
      keptFailures: this.keptFailures,
    } = deps);
  }

  /**
   * What a new instance's failed provisioning made: kept for inspection (the `kept` to record) or
   * removed (null). See KeptFailures.keepOrRemove.
   */
  private async keepOrRemove(record: InstanceRecord): Promise<InstanceRecord['kept']> {
    if (this.keptFailures) return this.keptFailures.keepOrRemove(record);
    await this.driver.deprovision(record).catch(() => undefined);
    return null;
  }

  /**
   * The last word on a provision job that will not run again (its last attempt failed, or it
   * stalled too often): an instance still waiting for or in provisioning goes Failed with
   * `reason`, and whatever was created for it is kept for inspection a while, or removed (see
   * keepOrRemove) — unless it ran before (the reconciler is starting it again): its volumes hold
   * the user's work, and only a delete removes them. One `run` settled is left alone.
   */
  async settleFinalFailure(instanceId: string, reason: string): Promise<void> {
    const record = await this.store.get(instanceId);
    if (!record) return;
    const from = record.source === 'simple' ? (['Queued', 'Provisioning'] as const) : (['Built', 'Cached', 'Provisioning'] as const);
    const failed = await this.store.transition(instanceId, from, 'Failed', { failure: { phase: 'provision', reason: mask(reason) } });
    if (!failed.ok || record.runningAt) return;
    // Failed first (a run that ended otherwise meanwhile is never stopped), then kept: only while still Failed.
    const kept = await this.keepOrRemove(record);
    if (kept) await this.store.transition(instanceId, ['Failed'], 'Failed', { kept });
  }

  /**
   * The statuses an attempt may claim the instance from. While its image is being pushed, a
   * Building instance whose builder offered the image it built (`localImage`, by image ID) is
   * claimed only by a runtime that holds exactly that image — on the builder's own daemon — and
   * starts from it before the push ends; any other runtime leaves it (the builder queues the
   * job again once the instance is Built, with the pushed image). `Built` is allowed alongside:
   * the push may end between the read and the claim.
   */
  private async claimableFrom(record: InstanceRecord): Promise<readonly InstanceStatus[] | undefined> {
    if (record.source === 'simple') return ['Queued', 'Provisioning'];
    if (record.status !== 'Building') return ['Built', 'Cached', 'Provisioning'];
    const local = record.localImage;
    return local && !record.devcontainerImage && (await this.driver.holdsImage?.(local.id)) ? ['Building', 'Built'] : undefined;
  }

  /**
   * The lifecycle command the editor was still waiting for when provisioning failed, said first
   * in the reason (`the editor waits for postStartCommand (waitFor), which was still running: …`),
   * from the lines the instance log mirror read; undefined when none was running.
   */
  private async stillRunning(instanceId: string): Promise<string | undefined> {
    const lifecycle = (await this.store.get(instanceId).catch(() => null))?.lifecycle;
    const running = Object.entries(lifecycle?.commands ?? {}).find(([, c]) => c.state === 'running');
    if (!lifecycle || !running) return undefined;
    return `the editor waits for ${lifecycle.waitFor} (waitFor), and ${running[0]} was still running: `;
  }

  /**
   * The image's hostRequirements (`launch.hostRequirements`, read from its metadata by its builder
   * and kept with the build cache's entry) applied to the instance's resources, within what the
   * operator allowed it at create (`maxResources`): see applyImageHostRequirements. Undefined
   * when there are none to apply (simple instances, images without any, records made before).
   */
  private imageRequirements(record: InstanceRecord): ImageRequirementsOutcome | undefined {
    const host = record.launch?.hostRequirements;
    if (!host || !record.maxResources || record.source === 'simple') return undefined;
    return applyImageHostRequirements(record.resources, host, record.maxResources);
  }

  /**
   * The image asks for more than this deployment gives an instance (or for a GPU): the instance
   * ends Failed with the reason, before anything is made for it. The image itself is fine: its
   * build (and push, and cache entry) goes on.
   */
  private async refuse(record: InstanceRecord, from: readonly InstanceStatus[], reason: string): Promise<void> {
    const failed = await this.store.transition(record.id, from, 'Failed', { failure: { phase: 'provision', reason }, kept: null });
    if (failed.ok) await this.instanceLogs?.end(record.id, 'failure', reason).catch(() => undefined);
    this.logger.warn({ instanceId: record.id, reason, recorded: failed.ok }, 'not provisioned: the image asks for more than an instance may have');
  }

  async run({ instanceId, attempt, maxAttempts, signal }: ProvisionAttempt): Promise<void> {
    let record = await this.store.get(instanceId);
    if (!record) throw new PermanentError(`instance ${instanceId} has no record`);
    const from = await this.claimableFrom(record);
    if (!from) {
      this.logger.info({ instanceId, image: record.localImage?.id }, 'provision deferred: the image is being pushed and this runtime does not hold it');
      return;
    }
    const host = this.imageRequirements(record);
    if (host?.reason) return this.refuse(record, from, host.reason);
    // The raised resources go into the record with the claim, and a warning naming each field: the
    // API shows what the instance is given, and that it is not what the create answered.
    const raised = host?.warning ? { resources: host.resources, warnings: mergeWarnings(record.warnings ?? [], [host.warning]) } : {};
    const claimed = await this.store.transition(instanceId, from, 'Provisioning', { provisionStartedAt: new Date().toISOString(), ...raised });
    if (!claimed.ok) {
      this.logger.info({ instanceId, status: claimed.current }, 'provision skipped: instance is not waiting for it');
      return;
    }
    if (host?.warning) {
      record = { ...record, ...raised };
      this.logger.info({ instanceId, raised: host.raised }, "resources raised to the image's hostRequirements");
    }
    const started = Date.now();
    try {
      const { runtime, workspaceSeeded } = await this.driver.provision(record, signal);
      // A new container: its lifecycle starts again (lines the old one left are in the log already).
      await this.store.patch(instanceId, { runtime, workspaceSeeded, containerStartedAt: new Date().toISOString(), lifecycle: null });
      this.instanceLogs?.follow(record, runtime);
      await this.driver.waitReady(record, runtime, signal);
      const running = await this.store.transition(instanceId, ['Provisioning'], 'Running', { runtime, runningAt: new Date().toISOString() });
      if (!running.ok) {
        this.logger.info({ instanceId, status: running.current }, 'instance deleted while provisioning; removing what was created');
        await this.driver.deprovision(record);
        return;
      }
      this.duration.observe({ outcome: 'success' }, (Date.now() - started) / 1000);
      // Time-to-editor once per instance: a container started again (the reconciler's) is not a new instance.
      if (this.timeToEditor && !record.runningAt) {
        const measured = timeToEditor((await this.store.get(instanceId)) ?? record);
        if (measured) {
          this.timeToEditor.total.observe({ cache: measured.cache }, measured.total);
          for (const [phase, seconds] of Object.entries(measured.phases)) this.timeToEditor.phases.observe({ phase, cache: measured.cache }, seconds);
        }
      }
      this.logger.info({ instanceId, seconds: (Date.now() - started) / 1000 }, 'instance running');
    } catch (err) {
      if (isShutdown(signal)) {
        // This provisioner is stopping: the job goes back to the queue; the next attempt claims the
        // instance from Provisioning and replaces whatever this one created.
        this.logger.info({ instanceId }, 'provisioning released: the provisioner is shutting down');
        throw err;
      }
      // Shown to the user (`error`): credential-shaped strings from the container's own log are masked.
      const reason = mask(`${(await this.stillRunning(instanceId)) ?? ''}${(err as Error).message}`);
      const willRetry = !(err instanceof PermanentError) && attempt < maxAttempts;
      if (willRetry) {
        this.logger.warn({ instanceId, attempt, reason }, 'provisioning failed, will retry');
        throw err instanceof TransientError ? err : new TransientError(reason);
      }
      this.duration.observe({ outcome: 'failure' }, (Date.now() - started) / 1000);
      // An instance that ran before keeps what it has (its /workspace above all) until it is deleted;
      // a new one's container is kept for inspection a while (stopped), or removed.
      const kept = record.runningAt ? null : await this.keepOrRemove(record);
      const failed = await this.store.transition(instanceId, ['Provisioning'], 'Failed', { failure: { phase: 'provision', reason }, kept });
      // Its log stays readable (the launcher's and the editor's lines up to the failure).
      if (failed.ok) await this.instanceLogs?.end(instanceId, 'failure', reason).catch(() => undefined);
      this.logger.warn({ instanceId, reason, recorded: failed.ok }, 'provisioning failed');
      throw new PermanentError(reason);
    }
  }
}
