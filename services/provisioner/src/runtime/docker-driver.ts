import {
  PermanentError,
  TransientError,
  launchConfigSchema,
  namesRegistry,
  parseCpu,
  parseMemory,
  type InstanceRecord,
  type RuntimeInfo,
} from '@codebay/contracts';
import {
  followProgress,
  instanceSecrets,
  registryAuthConfig,
  type ArtifactStore,
  type Docker,
  type InstanceStore,
  type Logger,
  type PlatformKey,
  type RegistryCredentials,
} from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { get as httpGet } from 'node:http';
import type { EditorBundles } from '../editor-bundles.ts';
import type { RuntimeDriver } from './driver.ts';

export interface DockerDriverOptions {
  publishHost: string;
  launcherDir: string;
  readyTimeoutMs: number;
  /** Derives each instance's editor secret. */
  key: PlatformKey;
  /** codebay's registry (`REGISTRY`) and its pull-only credentials: built images are pulled with them, nothing else is. */
  registry: { address: string; auth?: RegistryCredentials };
}

/** Port the editor listens on inside every instance. */
export const EDITOR_PORT = 8080;
const EDITOR_DIR = '/opt/codebay/editor';
const LAUNCHER_DIR = '/opt/codebay/launcher';

export const dockerNames = {
  container: (id: string) => `codebay-${id}`,
  /** One bridge network per instance, inter-container traffic off: nothing else is on it (made ahead of need: see SpareNetworks). */
  network: () => `codebay-net-${randomBytes(8).toString('hex')}`,
  workspaceVolume: (id: string) => `codebay-ws-${id}`,
  sharedVolume: (userId: string) => `codebay-shared-${userId}`,
};

const PERMANENT_PULL = [/manifest unknown/i, /not found/i, /pull access denied/i, /invalid reference/i, /unauthorized/i];

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
export class SpareNetworks {
  private readonly ready: string[] = [];
  private filling: Promise<void> | undefined;
  private readonly pool = randomBytes(6).toString('hex');

  constructor(
    private readonly docker: Docker,
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
      while (this.ready.length < this.size) this.ready.push(await this.create());
    })()
      .catch(() => undefined)
      .finally(() => (this.filling = undefined));
  }

  /** Removes other pools' spares no container uses and older than a minute. */
  async sweep(): Promise<void> {
    const spares = await this.docker.listNetworks({ filters: JSON.stringify({ label: ['codebay.kind=network-spare'] }) });
    for (const n of spares) {
      if (n.Labels?.['codebay.pool'] === this.pool || Date.now() - Date.parse(n.Created) < 60_000) continue;
      await this.docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined); // in use (a container joined it since): it stays
    }
  }

  private async create(): Promise<string> {
    const name = dockerNames.network();
    await this.docker.createNetwork({
      Name: name,
      Driver: 'bridge',
      CheckDuplicate: true,
      Labels: { 'codebay.managed': 'true', 'codebay.kind': 'network-spare', 'codebay.pool': this.pool },
      Options: { 'com.docker.network.bridge.enable_icc': 'false' },
    });
    return name;
  }
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode;
}

async function ignore404<T>(p: Promise<T>): Promise<T | undefined> {
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
  constructor(
    private readonly docker: Docker,
    private readonly bundles: EditorBundles,
    private readonly artifacts: ArtifactStore,
    private readonly store: InstanceStore,
    private readonly logger: Logger,
    private readonly opts: DockerDriverOptions,
    private readonly networks = new SpareNetworks(docker),
  ) {}

  private labels(record: InstanceRecord, kind: string): Record<string, string> {
    return { 'codebay.managed': 'true', 'codebay.instance': record.id, 'codebay.user': record.userId, 'codebay.kind': kind };
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

  async provision(record: InstanceRecord): Promise<RuntimeInfo> {
    const image = record.devcontainerImage ?? record.baseImage;
    if (!image) throw new PermanentError('instance has no image');
    const bundle = await this.bundles.forVscode(record.vscodeVersion);
    await this.pull(image);

    await this.ensureVolume(dockerNames.sharedVolume(record.userId), {
      'codebay.managed': 'true',
      'codebay.user': record.userId,
      'codebay.kind': 'shared',
      'codebay.size': record.resources.shared_storage_size,
    });
    await this.ensureVolume(dockerNames.workspaceVolume(record.id), { ...this.labels(record, 'workspace'), 'codebay.size': record.resources.storage_size });
    // A retried job finds the container of an earlier attempt: replace it (the volumes keep the
    // state), on the network that attempt took.
    const name = dockerNames.container(record.id);
    const earlier = await ignore404(this.docker.getContainer(name).inspect());
    const network = Object.keys(earlier?.NetworkSettings.Networks ?? {}).find((n) => n.startsWith('codebay-net-')) ?? (await this.networks.take());
    if (earlier) await ignore404(this.docker.getContainer(name).remove({ force: true }));

    const launch = record.launch ?? launchConfigSchema.parse({});
    const env = Object.entries(launch.containerEnv).map(([k, v]) => `${k}=${v}`);
    env.push(
      `CODEBAY_LAUNCH=${JSON.stringify({ ...launch, workspaceFolder: '/workspace', port: EDITOR_PORT })}`,
      `CODEBAY_EDITOR_DIR=${EDITOR_DIR}`,
      // The launcher hands it to the editor only (and drops it from its own environment).
      `CODEBAY_EDITOR_SECRET=${instanceSecrets.editor(this.opts.key, record.id)}`,
    );
    const r = record.resources;
    const container = await this.createContainer(network, {
      name,
      Image: image,
      Entrypoint: [`${EDITOR_DIR}/bin/node`, `${LAUNCHER_DIR}/launcher.mjs`],
      Cmd: [],
      Env: env,
      WorkingDir: '/workspace',
      Labels: { ...this.labels(record, 'instance'), 'codebay.network': network },
      ExposedPorts: { [`${EDITOR_PORT}/tcp`]: {} },
      HostConfig: {
        Mounts: [
          { Type: 'volume', Source: dockerNames.workspaceVolume(record.id), Target: '/workspace' },
          { Type: 'volume', Source: dockerNames.sharedVolume(record.userId), Target: '/shared' },
          { Type: 'bind', Source: bundle.dir, Target: EDITOR_DIR, ReadOnly: true },
          { Type: 'bind', Source: this.opts.launcherDir, Target: LAUNCHER_DIR, ReadOnly: true },
        ],
        NetworkMode: network,
        PortBindings: { [`${EDITOR_PORT}/tcp`]: [{ HostIp: this.opts.publishHost, HostPort: '' }] },
        Memory: parseMemory(r.memory_limit),
        MemoryReservation: parseMemory(r.memory_request),
        NanoCpus: (parseCpu(r.cpu_limit) ?? 1000) * 1_000_000,
        CpuShares: Math.max(2, Math.round(((parseCpu(r.cpu_request) ?? 200) * 1024) / 1000)),
        PidsLimit: 4096,
        RestartPolicy: { Name: 'unless-stopped' },
        Init: true,
      },
    });

    if (record.source === 'workspace' && record.artifact && !record.workspaceSeeded) {
      // Unpacked by the daemon into the volume through the created (not yet started) container.
      await container.putArchive(createReadStream(this.artifacts.path(record.artifact)), { path: '/workspace' });
      await this.store.patch(record.id, { workspaceSeeded: true });
    }

    await container.start();
    const info = await container.inspect();
    const binding = info.NetworkSettings.Ports[`${EDITOR_PORT}/tcp`]?.[0];
    if (!binding?.HostPort) throw new TransientError('the editor port was not published');
    this.logger.info({ instanceId: record.id, container: info.Id.slice(0, 12), port: binding.HostPort }, 'instance container started');
    return { driver: 'docker', endpoint: `http://${this.opts.publishHost}:${binding.HostPort}`, containerId: info.Id, network };
  }

  async waitReady(record: InstanceRecord, runtime: RuntimeInfo, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + this.opts.readyTimeoutMs;
    const container = this.docker.getContainer(runtime.containerId ?? dockerNames.container(record.id));
    while (Date.now() < deadline) {
      if (signal.aborted) throw new TransientError('provisioning was interrupted');
      if (await answers200(`${runtime.endpoint}/healthz`, 1_000)) return;
      const state = (await container.inspect()).State;
      if (!state.Running || state.Restarting) {
        throw new PermanentError(`the instance exited (code ${state.ExitCode}) before the editor answered: ${await this.tail(container)}`);
      }
      await new Promise((r) => setTimeout(r, 300));
    }
    throw new PermanentError(`the editor did not answer within ${this.opts.readyTimeoutMs / 1000} s: ${await this.tail(container)}`);
  }

  private async tail(container: Docker.Container): Promise<string> {
    const buf = (await container.logs({ stdout: true, stderr: true, tail: 15 }).catch(() => Buffer.alloc(0))) as Buffer;
    // Multiplexed stream frames carry an 8-byte header each; drop non-printable bytes for a readable reason.
    return buf
      .toString('utf8')
      .replace(/[\x00-\x08\x0b-\x1f]/g, '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .slice(-8)
      .join(' | ');
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

  async deprovision(record: InstanceRecord): Promise<void> {
    const container = this.docker.getContainer(dockerNames.container(record.id));
    // Its network: recorded at provisioning, or (a provisioning cut short) on the container's label.
    const network = record.runtime?.network ?? (await ignore404(container.inspect()))?.Config.Labels['codebay.network'];
    await ignore404(container.remove({ force: true }));
    if (network) await this.removeSoon(() => this.docker.getNetwork(network).remove());
    const volume = this.docker.getVolume(dockerNames.workspaceVolume(record.id));
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
