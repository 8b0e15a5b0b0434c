import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisKeys } from '@codebay/contracts';
import { JobQueues, createRedis, dockerFromHost } from '@codebay/platform';
import { dockerNames, type DockerNames } from '../../services/provisioner/src/runtime/docker-driver.ts';
import { components } from './components.ts';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** What each service must not hold (as deploy/local/start.sh runs them): builders never the platform key or the admin token, only builders the push user. */
const WITHHELD: Record<ServiceName, string[]> = {
  gateway: ['REGISTRY_PUSH_AUTH'],
  builder: ['CODEBAY_ADMIN_TOKEN', 'CODEBAY_SECRET_KEY'],
  provisioner: ['CODEBAY_ADMIN_TOKEN', 'REGISTRY_PUSH_AUTH'],
};
export const LOG_DIR = join(ROOT, '.tmp/test-logs');

export type ServiceName = 'gateway' | 'builder' | 'provisioner';

export interface Stack {
  url: string;
  /** Names of this stack's Docker objects (its own deployment, `CODEBAY_DEPLOYMENT`): containers, volumes, networks. */
  names: DockerNames;
  adminToken: string;
  queuePrefix: string;
  artifactDir: string;
  env: NodeJS.ProcessEnv;
  /** Running processes by label: the service name, or the label given to startService. */
  processes: Map<string, ChildProcess>;
  /** HTTP port of each process (the gateway's API, the workers' /metrics), by label. */
  ports: Record<string, number>;
  /** Where each process serves /metrics, by label (the gateway on a port of its own; the workers' is `ports`). */
  metricsPorts: Record<string, number>;
  /** Stops one process (SIGTERM, or SIGKILL to simulate a crash). */
  stopService(label: string, signal?: NodeJS.Signals): Promise<void>;
  /** Starts a service; with `as`, one more process of it under that label, with `env` on top of the stack's. */
  startService(name: ServiceName, extra?: { as?: string; env?: NodeJS.ProcessEnv }): Promise<void>;
  stop(): Promise<void>;
  api(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
}

/**
 * Removes every Docker object labelled `codebay.deployment=<deployment>` (containers first, with
 * force, then networks and volumes): what a test's deployment made, whatever state its instances
 * were left in. Running containers left behind would pile up run after run (a daemon restart
 * then re-attaches to all of them).
 */
export async function removeDeployment(dockerHost: string, deployment: string): Promise<void> {
  const docker = dockerFromHost(dockerHost);
  const filters = JSON.stringify({ label: [`codebay.deployment=${deployment}`] });
  const containers = await docker.listContainers({ all: true, filters });
  await Promise.all(
    containers.map((ct) =>
      docker
        .getContainer(ct.Id)
        .remove({ force: true })
        .catch(() => undefined),
    ),
  );
  const networks = await docker.listNetworks({ filters });
  await Promise.all(
    networks.map((n) =>
      docker
        .getNetwork(n.Id)
        .remove()
        .catch(() => undefined),
    ),
  );
  const { Volumes: volumes } = await docker.listVolumes({ filters });
  await Promise.all(
    (volumes ?? []).map((v) =>
      docker
        .getVolume(v.Name)
        .remove()
        .catch(() => undefined),
    ),
  );
}

/**
 * Starts the real gateway, builder and provisioner as child processes against
 * the real Redis, dockerd and registry, each run with its own queue prefix and
 * folders so runs never see each other's jobs.
 */
export async function startStack(opts: { services?: ServiceName[]; name?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Stack> {
  const c = components();
  const services = opts.services ?? ['gateway', 'builder', 'provisioner'];
  const runId = `${opts.name ?? 'run'}-${randomBytes(3).toString('hex')}`;
  const work = await mkdtemp(join(tmpdir(), `codebay-${runId}-`));
  const [gatewayPort, builderMetrics, provisionerMetrics] = await Promise.all([freePort(), freePort(), freePort()]);
  const adminToken = randomBytes(24).toString('hex');
  const queuePrefix = `codebay-test:${runId}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: c.redisUrl,
    DOCKER_HOST: c.dockerHost,
    REGISTRY: c.registry,
    REGISTRY_PUSH: c.registryPush,
    REGISTRY_PULL_AUTH: c.registryPullAuth,
    REGISTRY_PUSH_AUTH: c.registryPushAuth,
    CODEBAY_SECRET_KEY: randomBytes(32).toString('base64'),
    CODEBAY_QUEUE_PREFIX: queuePrefix,
    // Docker objects of their own: never a running system's (`codebay-…`), nor another run's.
    CODEBAY_DEPLOYMENT: `codebay-t${randomBytes(4).toString('hex')}`,
    CODEBAY_ARTIFACT_DIR: join(work, 'artifacts'),
    CODEBAY_BUILD_DIR: join(work, 'builds'),
    CODEBAY_EDITOR_ROOT: c.editorRoot,
    CODEBAY_ADMIN_TOKEN: adminToken,
    GATEWAY_HOST: '127.0.0.1',
    GATEWAY_PORT: String(gatewayPort),
    LOG_LEVEL: 'info',
    ...opts.env,
  };
  const ports: Record<string, number> = { gateway: gatewayPort, builder: builderMetrics, provisioner: provisionerMetrics };
  const processes = new Map<string, ChildProcess>();
  const metricsPorts: Record<string, number> = {};
  mkdirSync(LOG_DIR, { recursive: true });

  const startService = async (name: ServiceName, extra: { as?: string; env?: NodeJS.ProcessEnv } = {}) => {
    const label = extra.as ?? name;
    ports[label] ??= await freePort();
    metricsPorts[label] ??= name === 'gateway' ? await freePort() : ports[label];
    const log = createWriteStream(join(LOG_DIR, `${runId}-${label}.log`), { flags: 'a' });
    // One process per service, the compiled build (`pnpm build`) run by node itself, so a signal reaches the service.
    const own: NodeJS.ProcessEnv = { ...env, ...extra.env, METRICS_PORT: String(metricsPorts[label]) };
    for (const k of WITHHELD[name]) delete own[k];
    const child = spawn(process.execPath, ['--enable-source-maps', join(ROOT, 'services', name, 'dist/main.js')], {
      cwd: ROOT,
      env: own,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    processes.set(label, child);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`${label} exited with ${code}; see ${LOG_DIR}/${runId}-${label}.log`))),
    );
    const path = name === 'gateway' ? '/health' : '/healthz';
    await Promise.race([
      exited,
      waitFor(`${label} to answer`, async () => ((await fetch(`http://127.0.0.1:${ports[label]}${path}`)).ok ? true : undefined), 60_000),
    ]);
    exited.catch(() => undefined);
  };

  const stopService = async (name: string, signal: NodeJS.Signals = 'SIGTERM') => {
    const child = processes.get(name);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 25_000);
    await done;
    clearTimeout(timer);
    processes.delete(name);
  };

  // Side by side: nothing in a service's start waits for another (each retries what it needs).
  const starts = await Promise.allSettled(services.map((name) => startService(name)));
  const failed = starts.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // None of them outlives a stack that is never returned.
    await Promise.all([...processes.keys()].map((name) => stopService(name)));
    throw failed.reason;
  }
  const url = `http://127.0.0.1:${gatewayPort}`;
  return {
    url,
    names: dockerNames(env.CODEBAY_DEPLOYMENT!),
    adminToken,
    queuePrefix,
    artifactDir: env.CODEBAY_ARTIFACT_DIR!,
    env,
    processes,
    ports,
    metricsPorts,
    startService,
    stopService,
    async stop() {
      await Promise.all([...processes.keys()].map((name) => stopService(name)));
      await rm(work, { recursive: true, force: true });
      // Nothing of this run stays on the daemon: its instances' containers, networks and volumes.
      await removeDeployment(c.dockerHost, env.CODEBAY_DEPLOYMENT!);
      // This run's queues go with it.
      const redis = createRedis(c.redisUrl, 'test-stack-cleanup');
      const queues = new JobQueues(redis, queuePrefix);
      await Promise.all(queues.entries().map(([, q]) => q.obliterate({ force: true }).catch(() => undefined)));
      await queues.close();
      // And what its provisioners and builders published.
      await redis.del(redisKeys.editorVersions(queuePrefix), redisKeys.extensionSource(queuePrefix));
      await redis.quit();
    },
    api(path, init = {}) {
      const { token = adminToken, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token) headers.set('authorization', `Bearer ${token}`);
      return fetch(`${url}${path}`, { ...rest, headers, redirect: 'manual' });
    },
  };
}
