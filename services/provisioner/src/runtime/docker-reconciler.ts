import type { Docker, InstanceStore, JobQueues, Logger } from '@codebay/platform';
import { StringDecoder } from 'node:string_decoder';
import type { KeptFailures } from '../kept-failures.ts';
import { DEPLOYMENT_LABEL, ignore404 } from './docker-driver.ts';

/** What the reconciler did about one Running instance (for logs and tests). */
export type EditorCheck = 'running' | 'endpoint-updated' | 'restarting' | 'reprovisioning' | 'vanished' | 'skipped';

export interface DockerReconcilerDeps {
  docker: Docker;
  store: InstanceStore;
  jobs: Pick<JobQueues, 'enqueue'>;
  logger: Logger;
  /** This deployment's `codebay.deployment` label: other deployments' containers are not ours. */
  deployment: string;
  /** Address editor ports are published on (the endpoint is `http://<it>:<host port>`). */
  publishHost: string;
  /** Container port of the editor. */
  editorPort: number;
  /** Full pass over every Running record, besides the events (ms; 0: events and start-up only). */
  sweepIntervalMs: number;
  /** `codebay_reconcile_actions_total{action}`: vanished, reprovisioned, endpoint_updated. */
  actions?: { inc(labels: { action: string }): void };
  /** Removes failed instances' containers kept for inspection once their deadline passed (each sweep). */
  keptFailures?: Pick<KeptFailures, 'releaseDue'>;
}

interface ContainerState {
  /** Its `codebay.deployment` label. */
  deployment?: string;
  running: boolean;
  restarting: boolean;
  exitCode: number;
  hostPort?: string;
}

/**
 * Keeps Running records and the Docker runtime together, as the Kubernetes reconciler does for
 * its objects: it follows the daemon's container events (`die`, `start`, `destroy` of this
 * deployment's instance containers; reconnecting with backoff when the daemon goes away, and
 * going over every Running record each time it (re)connects and every `sweepIntervalMs`).
 *
 * For a Running record whose editor container
 * - runs: nothing, or the endpoint is corrected when Docker restarted it on another host port;
 * - is being restarted by Docker (its restart policy): nothing until it starts again;
 * - stopped for good (killed with its daemon, `docker stop`, a crash past the restart policy):
 *   Running → Provisioning with a `warning` that says so, and a provision job, which makes a new
 *   container on the same volumes (`/workspace`, `/shared` kept; lifecycle commands that ran
 *   once do not run again) and ends Running — or Failed with the reason;
 * - is gone: Running → Failed, "the editor container was removed".
 * A daemon that does not answer changes nothing: containers outlive their daemon (live restore;
 * published ports keep working), and the editor is judged when the daemon answers again.
 * Each sweep also removes the stopped containers of failed instances whose keep for inspection
 * ended (KeptFailures: the deadline is on the record, so it holds across provisioner restarts).
 */
export class DockerReconciler {
  private readonly deps: DockerReconcilerDeps;
  private stopped = false;
  private events?: NodeJS.ReadableStream & { destroy(): void };
  private timer?: NodeJS.Timeout;
  private reconnect?: NodeJS.Timeout;

  constructor(deps: DockerReconcilerDeps) {
    this.deps = deps;
  }

  /** Starts following events (and sweeping) in the background. */
  start(): void {
    if (this.deps.sweepIntervalMs > 0) {
      this.timer = setInterval(
        () => void this.sweep().catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'docker reconcile failed')),
        this.deps.sweepIntervalMs,
      );
    }
    void this.follow(1_000);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.reconnect);
    this.events?.destroy();
  }

  /**
   * Checks every Running record of this runtime (one that cannot be judged now is left for the next
   * pass), then removes what failed instances kept for inspection past their deadline.
   */
  async sweep(): Promise<void> {
    const ids = await this.deps.store.allIds();
    const records = await this.deps.store.many(ids);
    for (const record of records) {
      if (record.status !== 'Running' || record.runtime?.driver !== 'docker') continue;
      await this.check(record.id).catch((err: Error) => this.deps.logger.warn({ instanceId: record.id, err: err.message }, 'docker reconcile failed'));
    }
    await this.deps.keptFailures?.releaseDue(records);
  }

  /** Judges one instance's editor container against its record (see the class). */
  async check(instanceId: string): Promise<EditorCheck> {
    const { store, logger } = this.deps;
    const record = await store.get(instanceId);
    if (!record || record.status !== 'Running' || record.runtime?.driver !== 'docker' || !record.runtime.containerId) return 'skipped';
    const state = await this.inspect(record.runtime.containerId);
    // Another deployment's container (records of several deployments may share a Redis) is not ours to judge.
    if (state?.deployment !== undefined && state.deployment !== this.deps.deployment) return 'skipped';
    // What was read may be old by now (a provision job may have replaced the container meanwhile).
    const again = await store.get(instanceId);
    if (again?.status !== 'Running' || again.runtime?.containerId !== record.runtime.containerId) return 'skipped';
    if (state === undefined) {
      const done = await store.transition(instanceId, ['Running'], 'Failed', {
        failure: { phase: 'provision', reason: 'the editor container was removed' },
      });
      if (done.ok) {
        this.deps.actions?.inc({ action: 'vanished' });
        logger.warn({ instanceId }, 'editor container removed: instance Failed');
      }
      return done.ok ? 'vanished' : 'skipped';
    }
    if (state.running) {
      const endpoint = state.hostPort ? `http://${this.deps.publishHost}:${state.hostPort}` : undefined;
      if (!endpoint || endpoint === record.runtime.endpoint) return 'running';
      await store.patch(instanceId, { runtime: { ...record.runtime, endpoint } });
      this.deps.actions?.inc({ action: 'endpoint_updated' });
      logger.info({ instanceId, endpoint }, 'editor container restarted on another port: endpoint updated');
      return 'endpoint-updated';
    }
    if (state.restarting) return 'restarting';
    const at = new Date().toISOString();
    const moved = await store.transition(instanceId, ['Running'], 'Provisioning', {
      warning: `the editor container stopped at ${at} (exit code ${state.exitCode}): a new one is started on the same volumes`,
      provisionStartedAt: at,
    });
    if (!moved.ok) return 'skipped';
    await this.deps.jobs.enqueue('provision', { instanceId });
    this.deps.actions?.inc({ action: 'reprovisioned' });
    logger.warn({ instanceId, exitCode: state.exitCode }, 'editor container stopped: provisioning it again');
    return 'reprovisioning';
  }

  private async inspect(containerId: string): Promise<ContainerState | undefined> {
    const info = await ignore404(this.deps.docker.getContainer(containerId).inspect());
    if (!info) return undefined;
    return {
      deployment: info.Config?.Labels?.[DEPLOYMENT_LABEL],
      running: info.State.Running && !info.State.Restarting,
      restarting: info.State.Restarting,
      exitCode: info.State.ExitCode,
      hostPort: info.NetworkSettings.Ports?.[`${this.deps.editorPort}/tcp`]?.[0]?.HostPort,
    };
  }

  /** Subscribes to the daemon's events; on failure or end, tries again after `delayMs` (doubling to 30 s). */
  private async follow(delayMs: number): Promise<void> {
    if (this.stopped) return;
    const retry = (why: string) => {
      if (this.stopped || this.reconnect) return;
      this.deps.logger.warn({ why, retryInMs: delayMs }, 'docker events: reconnecting');
      this.reconnect = setTimeout(() => {
        this.reconnect = undefined;
        void this.follow(Math.min(delayMs * 2, 30_000));
      }, delayMs);
    };
    let stream: NodeJS.ReadableStream & { destroy(): void };
    try {
      stream = (await this.deps.docker.getEvents({
        filters: { type: ['container'], event: ['die', 'start', 'destroy'], label: [`${DEPLOYMENT_LABEL}=${this.deps.deployment}`, 'codebay.kind=instance'] },
      })) as NodeJS.ReadableStream & { destroy(): void };
    } catch (err) {
      retry((err as Error).message);
      return;
    }
    this.events = stream;
    delayMs = 1_000;
    const decoder = new StringDecoder('utf8');
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += decoder.write(chunk);
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let id: string | undefined;
        try {
          id = (JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> } }).Actor?.Attributes?.['codebay.instance'];
        } catch {
          this.deps.logger.warn({ line: line.slice(0, 200) }, 'docker events: a line that is not JSON, skipped');
        }
        if (id) void this.check(id).catch((err: Error) => this.deps.logger.warn({ instanceId: id, err: err.message }, 'docker reconcile failed'));
      }
    });
    stream.on('error', (err: Error) => retry(err.message));
    stream.on('end', () => retry('the event stream ended'));
    // Subscribed: now catch up on whatever happened while nobody listened (a failure waits for the next pass).
    await this.sweep().catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'docker reconcile failed'));
  }
}
