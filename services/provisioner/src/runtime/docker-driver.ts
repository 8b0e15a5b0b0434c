import {
  PermanentError,
  TransientError,
  DEFAULT_WORKSPACE,
  INSTANCE_EDITOR_PORT,
  instanceLaunch,
  launchConfigSchema,
  namesRegistry,
  parseCpu,
  parseMemory,
  type InstanceRecord,
  type RuntimeInfo,
} from '@codebay/contracts';
import {
  demuxDockerLog,
  followProgress,
  instanceSecrets,
  registryAuthConfig,
  type ArtifactStore,
  type Docker,
  type Logger,
  type PlatformKey,
  type RegistryCredentials,
} from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { get as httpGet } from 'node:http';
import { PassThrough } from 'node:stream';
import type { EditorBundles } from '../editor-bundles.ts';
import type { Provisioned, RuntimeDriver } from './driver.ts';
import { readTimestampedLines, timestampNanos } from './log-lines.ts';
import { lastLogLines } from './log-tail.ts';

export interface DockerDriverDeps {
  docker: Docker;
  bundles: EditorBundles;
  /** Where workspace uploads are read from to seed a new instance's /workspace. */
  artifacts: ArtifactStore;
  logger: Logger;
  options: DockerDriverOptions;
}

export interface DockerDriverOptions {
  /** Names and labels this deployment's objects (`CODEBAY_DEPLOYMENT`): see dockerNames. */
  deployment: string;
  publishHost: string;
  launcherDir: string;
  readyTimeoutMs: number;
  /**
   * CPU an instance may use while its editor starts (millicores; `EDITOR_START_CPU`), when more
   * than its cpu_limit: from the container's start until the editor answers (or waiting for it
   * ends), then the instance's own limit applies. 0: the limit from the start.
   */
  startCpuMillis: number;
  /** Derives each instance's editor secret. */
  key: PlatformKey;
  /** codebay's registry (`REGISTRY`) and its pull-only credentials: built images are pulled with them, nothing else is. */
  registry: { address: string; auth?: RegistryCredentials };
}

/** Port the editor listens on inside every instance. */
const EDITOR_PORT = INSTANCE_EDITOR_PORT;
/** The editor's port in an instance container (published on EDITOR_PUBLISH_HOST). */
export const DOCKER_EDITOR_PORT = EDITOR_PORT;
const EDITOR_DIR = '/opt/codebay/editor';
const LAUNCHER_DIR = '/opt/codebay/launcher';

/**
 * Names of one deployment's Docker objects (`CODEBAY_DEPLOYMENT`, default `codebay`): two
 * deployments on one daemon (a running system and the test suites) share no container,
 * volume or network, and neither's housekeeping touches the other's.
 */
export function dockerNames(deployment: string) {
  return {
    container: (id: string) => `${deployment}-${id}`,
    /** One bridge network per instance, inter-container traffic off: nothing else is on it (made ahead of need: see SpareNetworks). */
    network: () => `${deployment}-net-${randomBytes(8).toString('hex')}`,
    isNetwork: (name: string) => name.startsWith(`${deployment}-net-`),
    workspaceVolume: (id: string) => `${deployment}-ws-${id}`,
    sharedVolume: (userId: string) => `${deployment}-shared-${userId}`,
  };
}
export type DockerNames = ReturnType<typeof dockerNames>;

/** The label every object of a deployment carries. */
/** Labels every Docker object of a deployment (`codebay.deployment=<CODEBAY_DEPLOYMENT>`). */
export const DEPLOYMENT_LABEL = 'codebay.deployment';

/** A full image ID: the sha256 of the image's configuration. */
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;

const PERMANENT_PULL = [/manifest unknown/i, /not found/i, /pull access denied/i, /invalid reference/i, /unauthorized/i];

/**
 * Lines in an instance's log that say its editor listens: code-server's own, and the
 * launcher's once its probe answered. Each triggers a readiness probe (never more than that).
 */
const EDITOR_LISTENING = [/HTTP server listening on /, /^\[codebay-launcher\] \S+ editor is healthy/];
/** A probe this often as well, in case those lines never come. */
/** A line of the container's log longer than this is cut before it is matched. */
const MAX_READY_LINE = 4_096;
/** Bytes of the container's log followed while waiting for the editor. */
const READY_LOG_BUDGET = 1024 * 1024;
const READY_FALLBACK_PROBE_MS = 1_000;

/**
 * One readiness probe with node:http. (Node 20's fetch can hang until its timeout when a
 * process's first request meets a connection reset, as a just-started container gives.)
 */
function answers200(url: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpGet(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/**
 * Instance networks made ahead of need: making a bridge network (with its iptables rules)
 * costs a daemon ~80 ms, which would otherwise add to every instance's start. A few are kept
 * ready; taking one refills the pool in the background. Spares carry the label
 * `codebay.kind=network-spare` and the pool's id; a new pool removes other pools' spares
 * that no container uses (a provisioner that went away), once they are a minute old.
 */
class SpareNetworks {
  private readonly ready: string[] = [];
  private stopped = false;
  private filling: Promise<void> | undefined;
  private readonly pool = randomBytes(6).toString('hex');

  constructor(
    private readonly docker: Docker,
    /** Whose spares these are: another deployment's are never touched. */
    private readonly deployment: string,
    private readonly size = 2,
  ) {}

  /** A network no container is on yet: a spare, or a new one when none is ready. */
  async take(): Promise<string> {
    const name = this.ready.shift() ?? (await this.create());
    this.fill();
    return name;
  }

  /** Makes spares until `size` are ready (in the background; a failure only means the next take makes its own). */
  fill(): void {
    this.filling ??= (async () => {
      while (!this.stopped && this.ready.length < this.size) this.ready.push(await this.create());
    })()
      .catch(() => undefined)
      .finally(() => (this.filling = undefined));
  }

  /** Removes this pool's ready spares (a provisioner that stops leaves no network behind); stops refilling. */
  async drain(): Promise<void> {
    this.stopped = true;
    await this.filling;
    for (const name of this.ready.splice(0))
      await this.docker
        .getNetwork(name)
        .remove()
        .catch(() => undefined);
  }

  /** Removes this deployment's other pools' spares no container uses and older than a minute. */
  async sweep(): Promise<void> {
    const spares = await this.docker.listNetworks({
      filters: JSON.stringify({ label: ['codebay.kind=network-spare', `${DEPLOYMENT_LABEL}=${this.deployment}`] }),
    });
    for (const n of spares) {
      if (n.Labels?.['codebay.pool'] === this.pool || Date.now() - Date.parse(n.Created) < 60_000) continue;
      await this.docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined); // in use (a container joined it since): it stays
    }
  }

  private async create(): Promise<string> {
    const name = dockerNames(this.deployment).network();
    await this.docker.createNetwork({
      Name: name,
      Driver: 'bridge',
      CheckDuplicate: true,
      Labels: { 'codebay.managed': 'true', [DEPLOYMENT_LABEL]: this.deployment, 'codebay.kind': 'network-spare', 'codebay.pool': this.pool },
      Options: { 'com.docker.network.bridge.enable_icc': 'false' },
    });
    return name;
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

/** `p`'s value, or undefined when the daemon answers 404 (the object does not exist); other errors throw. */
export async function ignore404<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/**
 * The single-machine runtime: one container per instance on the local Docker
 * engine, on a bridge network of its own (no other container can reach it; the daemon's
 * iptables isolation drops traffic between bridges), a per-instance workspace volume, a
 * per-user shared volume that outlives instances, the editor bundle and launcher mounted
 * read-only, the editor port published on loopback only and guarded by the instance's
 * own editor secret. Containers run with Docker's default capabilities and without
 * no-new-privileges, so `sudo` works in images set up for it: the boundary is the
 * container (and, on a daemon with `--userns-remap`, an unprivileged host uid), not the
 * user inside it.
 */
export class DockerDriver implements RuntimeDriver {
  private readonly docker: Docker;
  private readonly bundles: EditorBundles;
  private readonly artifacts: ArtifactStore;
  private readonly logger: Logger;
  private readonly opts: DockerDriverOptions;
  private readonly names: DockerNames;
  private readonly networks: SpareNetworks;

  constructor(deps: DockerDriverDeps) {
    ({ docker: this.docker, bundles: this.bundles, artifacts: this.artifacts, logger: this.logger, options: this.opts } = deps);
    this.names = dockerNames(this.opts.deployment);
    this.networks = new SpareNetworks(this.docker, this.opts.deployment);
  }

  private labels(record: InstanceRecord, kind: string): Record<string, string> {
    return {
      'codebay.managed': 'true',
      [DEPLOYMENT_LABEL]: this.opts.deployment,
      'codebay.instance': record.id,
      'codebay.user': record.userId,
      'codebay.kind': kind,
    };
  }

  private async pull(image: string): Promise<void> {
    // Only codebay's own images are pulled with its credentials; a user's base image never is.
    const ours = namesRegistry(image, [this.opts.registry.address]);
    const authconfig = ours ? registryAuthConfig(this.opts.registry.address, this.opts.registry.auth) : undefined;
    try {
      const stream = await this.docker.pull(image, { authconfig });
      await followProgress(this.docker, stream);
    } catch (err) {
      const message = `could not pull image ${image}: ${(err as Error).message}`;
      if (PERMANENT_PULL.some((re) => re.test(message))) throw new PermanentError(message);
      throw new TransientError(message);
    }
  }

  private async ensureVolume(name: string, labels: Record<string, string>): Promise<void> {
    const existing = await ignore404(this.docker.getVolume(name).inspect());
    if (!existing) await this.docker.createVolume({ Name: name, Labels: labels });
  }

  /** Whether this daemon holds the image with exactly this ID: the ID is looked up as an ID (never a tag) and checked on what comes back. */
  async holdsImage(imageId: string): Promise<boolean> {
    if (!IMAGE_ID.test(imageId)) return false;
    const info = await ignore404(this.docker.getImage(imageId).inspect());
    return info?.Id === imageId;
  }

  /**
   * The image an instance runs: the pushed image by digest (pulled unless this daemon holds
   * that digest already: a digest names content, and Docker only keeps one it verified);
   * before the push has ended, the image its builder built, by ID, when this daemon holds it
   * (see BuildInstance.offer); else the base image (pulled: a tag may have moved).
   */
  private async imageOf(record: InstanceRecord): Promise<string> {
    if (record.devcontainerImage) {
      const present = await ignore404(this.docker.getImage(record.devcontainerImage).inspect());
      if (!present?.RepoDigests?.includes(record.devcontainerImage)) await this.pull(record.devcontainerImage);
      return record.devcontainerImage;
    }
    if (record.localImage) {
      if (!(await this.holdsImage(record.localImage.id)))
        throw new TransientError(`the image built for this instance (${record.localImage.id}) is not on this daemon and its push has not ended`);
      return record.localImage.id;
    }
    if (!record.baseImage) throw new PermanentError('instance has no image');
    await this.pull(record.baseImage);
    return record.baseImage;
  }

  async provision(record: InstanceRecord): Promise<Provisioned> {
    const name = this.names.container(record.id);
    const t0 = performance.now();
    const ms: Record<string, number> = {};
    const lap = (step: string) => (ms[step] = Math.round(performance.now() - t0 - Object.values(ms).reduce((a, b) => a + b, 0)));
    // Independent lookups at once: the image (pulled if need be), the bundle, the volumes, and a
    // container of an earlier attempt (a retried job replaces it; the volumes keep the state),
    // whose network it reuses.
    const [image, bundle, , , earlier] = await Promise.all([
      this.imageOf(record),
      this.bundles.forVscode(record.vscodeVersion),
      this.ensureVolume(this.names.sharedVolume(record.userId), {
        'codebay.managed': 'true',
        [DEPLOYMENT_LABEL]: this.opts.deployment,
        'codebay.user': record.userId,
        'codebay.kind': 'shared',
        'codebay.size': record.resources.shared_storage_size,
      }),
      this.ensureVolume(this.names.workspaceVolume(record.id), { ...this.labels(record, 'workspace'), 'codebay.size': record.resources.storage_size }),
      ignore404(this.docker.getContainer(name).inspect()),
    ]);
    const network = Object.keys(earlier?.NetworkSettings.Networks ?? {}).find((n) => this.names.isNetwork(n)) ?? (await this.networks.take());
    if (earlier) await ignore404(this.docker.getContainer(name).remove({ force: true }));

    const workspace = record.workspace ?? DEFAULT_WORKSPACE;
    const { containerEnv, launchJson } = instanceLaunch(record.launch ?? launchConfigSchema.parse({}), record.id, EDITOR_PORT, workspace);
    const env = Object.entries(containerEnv).map(([k, v]) => `${k}=${v}`);
    env.push(
      `CODEBAY_LAUNCH=${launchJson}`,
      `CODEBAY_EDITOR_DIR=${EDITOR_DIR}`,
      // The launcher hands it to the editor only (and drops it from its own environment).
      `CODEBAY_EDITOR_SECRET=${instanceSecrets.editor(this.opts.key, record.id)}`,
    );
    const r = record.resources;
    lap('prepare');
    const container = await this.createContainer(network, {
      name,
      Image: image,
      Entrypoint: [`${EDITOR_DIR}/bin/node`, `${LAUNCHER_DIR}/launcher.mjs`],
      Cmd: [],
      Env: env,
      WorkingDir: workspace.folder,
      Labels: { ...this.labels(record, 'instance'), 'codebay.network': network },
      ExposedPorts: { [`${EDITOR_PORT}/tcp`]: {} },
      HostConfig: {
        Mounts: [
          { Type: 'volume', Source: this.names.workspaceVolume(record.id), Target: workspace.target },
          { Type: 'volume', Source: this.names.sharedVolume(record.userId), Target: '/shared' },
          { Type: 'bind', Source: bundle.dir, Target: EDITOR_DIR, ReadOnly: true },
          { Type: 'bind', Source: this.opts.launcherDir, Target: LAUNCHER_DIR, ReadOnly: true },
        ],
        NetworkMode: network,
        PortBindings: { [`${EDITOR_PORT}/tcp`]: [{ HostIp: this.opts.publishHost, HostPort: '' }] },
        Memory: parseMemory(r.memory_limit),
        MemoryReservation: parseMemory(r.memory_request),
        // The editor starts with a burst (startCpuMillis); waitReady sets the instance's own limit.
        NanoCpus: Math.max(parseCpu(r.cpu_limit) ?? 1000, this.opts.startCpuMillis) * 1_000_000,
        CpuShares: Math.max(2, Math.round(((parseCpu(r.cpu_request) ?? 200) * 1024) / 1000)),
        PidsLimit: 4096,
        // No raw sockets (forged packets on the instance's network), as on Kubernetes.
        CapDrop: ['NET_RAW'],
        RestartPolicy: { Name: 'unless-stopped' },
        Init: true,
      },
    });

    let seeded = record.workspaceSeeded;
    if (record.source === 'workspace' && record.artifact && !record.workspaceSeeded) {
      // Unpacked by the daemon into the volume through the created (not yet started) container.
      await container.putArchive(createReadStream(this.artifacts.path(record.artifact)), { path: workspace.target });
      seeded = true;
    }

    // Made from the built image by ID: the container says which image it holds, before anything in it runs.
    if (image === record.localImage?.id) {
      const created = await container.inspect();
      if (created.Image !== image) throw new PermanentError(`the container was made from ${created.Image}, not the image built for it (${image})`);
    }
    lap('create');
    await container.start();
    lap('start');
    const info = await container.inspect();
    const binding = info.NetworkSettings.Ports[`${EDITOR_PORT}/tcp`]?.[0];
    if (!binding?.HostPort) throw new TransientError('the editor port was not published');
    this.logger.info({ instanceId: record.id, container: info.Id.slice(0, 12), port: binding.HostPort, image, ms }, 'instance container started');
    return {
      runtime: { driver: 'docker', endpoint: `http://${this.opts.publishHost}:${binding.HostPort}`, containerId: info.Id, network },
      workspaceSeeded: seeded,
    };
  }

  /**
   * Resolves once the editor answers `/healthz` through its published port. Event-driven: the
   * container's log is followed, and the lines that say the editor listens (code-server's own,
   * then the launcher's) each trigger a probe at once — a line only ever triggers a probe, the
   * answer decides. The log ending means the container stopped (or is restarting): the reason
   * is its last lines. A slow probe now and then covers an editor whose lines never come.
   */
  async waitReady(record: InstanceRecord, runtime: RuntimeInfo, signal: AbortSignal): Promise<void> {
    const container = this.docker.getContainer(runtime.containerId ?? this.names.container(record.id));
    try {
      await this.editorAnswers(container, runtime, signal);
    } finally {
      // The start burst ends however waiting ended: from here on, the instance's own cpu_limit.
      if (this.opts.startCpuMillis > (parseCpu(record.resources.cpu_limit) ?? 1000)) {
        await container
          .update({ NanoCpus: (parseCpu(record.resources.cpu_limit) ?? 1000) * 1_000_000 })
          .catch((err: Error) => this.logger.warn({ instanceId: record.id, err: err.message }, 'could not end the start CPU burst'));
      }
    }
  }

  private async editorAnswers(container: Docker.Container, runtime: RuntimeInfo, signal: AbortSignal): Promise<void> {
    const healthz = `${runtime.endpoint}/healthz`;
    const log = (await container.logs({ follow: true, stdout: true, stderr: true, since: 0 })) as unknown as NodeJS.ReadableStream & { destroy(): void };
    const lines = new PassThrough();
    this.docker.modem.demuxStream(log, lines, lines);
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      let probing = false;
      let probeAgain = false;
      const settle = (err?: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        clearInterval(fallback);
        signal.removeEventListener('abort', onAbort);
        log.destroy();
        lines.destroy();
        if (err) reject(err);
        else resolve();
      };
      const failWithTail = (why: string) =>
        void this.tail(container).then(
          (t) => settle(new PermanentError(`${why}: ${t}`)),
          () => settle(new PermanentError(why)),
        );
      const probe = () => {
        if (settled) return;
        if (probing) {
          probeAgain = true;
          return;
        }
        probing = true;
        void answers200(healthz, 1_000).then((ok) => {
          probing = false;
          if (ok) return settle();
          if (probeAgain) {
            probeAgain = false;
            probe();
          }
        });
      };
      const onAbort = () => settle(new TransientError('provisioning was interrupted'));
      const deadline = setTimeout(() => failWithTail(`the editor did not answer within ${this.opts.readyTimeoutMs / 1000} s`), this.opts.readyTimeoutMs);
      const fallback = setInterval(probe, READY_FALLBACK_PROBE_MS);
      signal.addEventListener('abort', onAbort, { once: true });
      // The log is the tenant's output: lines are cut at MAX_READY_LINE characters and the log is
      // followed for READY_LOG_BUDGET bytes at most (then the slow probes alone decide): output
      // without newlines, or a flood, never grows the provisioner's memory.
      let pending = '';
      let seen = 0;
      lines.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        const parts = (pending + chunk.toString('utf8')).split('\n');
        pending = parts.pop()!.slice(-MAX_READY_LINE);
        for (const line of parts) if (EDITOR_LISTENING.some((re) => re.test(line.slice(0, MAX_READY_LINE)))) probe();
        if (seen > READY_LOG_BUDGET) {
          log.destroy();
          lines.destroy();
        }
      });
      log.once('end', () => {
        if (settled) return;
        void container.inspect().then(
          ({ State, RestartCount }) => {
            if (!State.Running || State.Restarting || RestartCount > 0) failWithTail(`the instance exited (code ${State.ExitCode}) before the editor answered`);
          },
          (err: Error) => settle(new TransientError(`the instance's container vanished: ${err.message}`)),
        );
      });
      if (signal.aborted) onAbort();
      else probe();
    });
  }

  async followLog(
    record: InstanceRecord,
    runtime: RuntimeInfo,
    since: string | undefined,
    onLine: (at: string, text: string) => void,
    signal: AbortSignal,
  ): Promise<void> {
    const container = this.docker.getContainer(runtime.containerId ?? this.names.container(record.id));
    // Docker's `since` is whole seconds: the lines of that second before `since` are left out by readTimestampedLines.
    const nanos = since === undefined ? undefined : timestampNanos(since);
    const sinceSeconds = nanos === undefined ? 0 : Number(nanos / 1_000_000_000n);
    const log = (await container.logs({
      follow: true,
      stdout: true,
      stderr: true,
      timestamps: true,
      since: sinceSeconds,
    })) as unknown as NodeJS.ReadableStream & {
      destroy(): void;
    };
    const lines = new PassThrough();
    this.docker.modem.demuxStream(log, lines, lines);
    log.once('end', () => lines.end());
    // dockerd going away mid-stream: the follow ends (the mirror follows again), never an unhandled error.
    log.once('error', () => lines.end());
    const onAbort = () => {
      log.destroy();
      lines.end();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await readTimestampedLines(lines, since, onLine);
    } finally {
      signal.removeEventListener('abort', onAbort);
      log.destroy();
    }
  }

  /**
   * The container's last lines for a failure reason: at most 8 non-empty ones of its last 15,
   * joined with ` | ` (lastLogLines). The log is demultiplexed first (demuxDockerLog: a container
   * without a TTY sends 8-byte frame headers, whose length bytes must not end up in the reason).
   */
  private async tail(container: Docker.Container): Promise<string> {
    const [buf, tty] = await Promise.all([
      container.logs({ stdout: true, stderr: true, tail: 15 }).catch(() => Buffer.alloc(0)) as Promise<Buffer>,
      container.inspect().then(
        (i) => i.Config.Tty === true,
        () => false,
      ),
    ]);
    return lastLogLines(demuxDockerLog(buf, tty));
  }

  /** Creates the container on `network`; a network taken for a container that could not be made goes back to nobody (it is removed). */
  private async createContainer(network: string, spec: Docker.ContainerCreateOptions): Promise<Docker.Container> {
    try {
      return await this.docker.createContainer(spec);
    } catch (err) {
      await this.docker
        .getNetwork(network)
        .remove()
        .catch(() => undefined);
      throw err;
    }
  }

  /** Readies the pool of instance networks (and clears spares a provisioner that went away left). */
  async start(): Promise<void> {
    await this.networks.sweep().catch((err: Error) => this.logger.warn({ err: err.message }, 'could not clear spare networks'));
    this.networks.fill();
  }

  /** Removes the spare networks this driver made ahead of need. */
  async stop(): Promise<void> {
    await this.networks.drain();
  }

  /** `docker:<deployment>`: failed instances this driver keeps (see RuntimeDriver.keeper). */
  get keeper(): string {
    return `docker:${this.opts.deployment}`;
  }

  /**
   * Stops a failed instance's container and keeps it (RuntimeDriver.keepFailed): stopped by hand,
   * its restart policy (unless-stopped) starts it neither now nor when the daemon restarts, and
   * `docker logs`, `inspect` and `cp` still work on it. False when there is no container.
   */
  async keepFailed(record: InstanceRecord): Promise<boolean> {
    const container = this.docker.getContainer(this.names.container(record.id));
    try {
      await container.stop({ t: 5 });
      return true;
    } catch (err) {
      // 304: stopped already (it exited, or was never started).
      if (statusOf(err) === 304) return true;
      if (statusOf(err) === 404) return false;
      throw err;
    }
  }

  async deprovision(record: InstanceRecord): Promise<void> {
    const container = this.docker.getContainer(this.names.container(record.id));
    // Its network: recorded at provisioning, or (a provisioning cut short) on the container's label.
    const network = record.runtime?.network ?? (await ignore404(container.inspect()))?.Config.Labels['codebay.network'];
    await ignore404(container.remove({ force: true }));
    if (network) await this.removeSoon(() => this.docker.getNetwork(network).remove());
    const volume = this.docker.getVolume(this.names.workspaceVolume(record.id));
    await this.removeSoon(() => volume.remove());
  }

  /** Removes something a container being removed may hold for a moment (409): retried briefly; gone already is fine. */
  private async removeSoon(remove: () => Promise<unknown>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await ignore404(remove());
        return;
      } catch (err) {
        if (statusOf(err) !== 409 || attempt >= 10) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
}
