import { dockerFromHost, type Docker } from '@codebay/platform';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { dockerNames, type DockerNames } from '../../services/provisioner/src/runtime/docker-driver.ts';
import { components } from './components.ts';
import type { EditorTarget } from './editor-e2e.ts';
import { freePort } from './ports.ts';
import { removeDeployment, LOG_DIR } from './stack.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The images docker-compose.yml runs (deploy/images/build.sh --only). */
const IMAGES = 'codebay,builder-dind,redis,registry';

/** Secrets and host ports of one compose deployment: what its .env file holds. */
export interface ComposeSettings {
  REDIS_PASSWORD: string;
  CODEBAY_ADMIN_TOKEN: string;
  CODEBAY_SECRET_KEY: string;
  REGISTRY_PULL_AUTH: string;
  REGISTRY_PUSH_AUTH: string;
  GATEWAY_PORT: number;
  GATEWAY_METRICS_PORT: number;
  PROVISIONER_METRICS_PORT: number;
  REDIS_PORT: number;
  REGISTRY_PORT: number;
  MIRROR_PORT: number;
  CODEBAY_DEPLOYMENT: string;
}

/** One `docker compose` project of docker-compose.yml on the suites' Docker daemon. */
export interface ComposeDeployment extends EditorTarget {
  /** The compose project name (`codebay-c<hex>`): containers `<it>-<service>-<n>`. */
  project: string;
  settings: ComposeSettings;
  docker: Docker;
  /** Runs `docker compose <args>` for this project; resolves with its stdout, rejects with its stderr on a non-zero exit. */
  compose(args: string[], timeoutMs?: number): Promise<string>;
  /** `up -d --wait` (every service healthy), with more arguments (`--scale builder=2`). */
  up(extra?: string[]): Promise<void>;
  /** Names of the running containers of one service, by replica number. */
  containers(service: string): Promise<string[]>;
  /** `down -v` (containers, networks and the project's volumes), the instances' Docker objects and the temp folder. */
  down(): Promise<void>;
}

/**
 * The compose v2 CLI (deploy/compose/install.sh: built once from Go modules, cached under
 * /var/cache/codebay; a warm call builds nothing). Its path.
 */
export async function composeBinary(): Promise<string> {
  const { stdout } = await run('bash', [join(ROOT, 'deploy/compose/install.sh')], { cwd: ROOT, maxBuffer: 16 << 20 });
  return stdout.trim().split('\n').at(-1)!;
}

/**
 * Builds the images (deploy/images/build.sh; cached layers make a warm build seconds) and
 * returns their references as build.sh's env file lines (IMAGE_CODEBAY=…, …).
 */
async function buildImages(dockerHost: string, envFile: string): Promise<void> {
  await run('bash', [join(ROOT, 'deploy/images/build.sh'), '--only', IMAGES, '--env-file', envFile], {
    cwd: ROOT,
    env: { ...process.env, DOCKER_HOST: dockerHost },
    maxBuffer: 64 << 20,
    timeout: 20 * 60_000,
  });
}

/** This machine's IPv4 resolvers (/etc/resolv.conf), loopback ones left out, comma-separated. */
async function hostResolvers(): Promise<string> {
  const conf = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  return [...conf.matchAll(/^nameserver\s+(\d+\.\d+\.\d+\.\d+)\s*$/gm)]
    .map((m) => m[1]!)
    .filter((ip) => !ip.startsWith('127.'))
    .join(',');
}

/**
 * Fills the deployment's base-image mirror as docker-compose.yml's step 5 says: the daemon's
 * debian:bookworm under its Docker Hub name, and BuildKit's Dockerfile frontend as
 * docker/dockerfile:1.4 and :1 (deploy/buildkit/frontend-image.sh), which builds under BuildKit pull.
 */
async function seedMirror(docker: Docker, dockerHost: string, mirrorPort: number): Promise<void> {
  await run('bash', [join(ROOT, 'deploy/buildkit/frontend-image.sh'), `localhost:${mirrorPort}`], {
    cwd: ROOT,
    env: { ...process.env, DOCKER_HOST: dockerHost },
    maxBuffer: 16 << 20,
  });
  const repo = `localhost:${mirrorPort}/library/debian`;
  await docker.getImage('debian:bookworm').tag({ repo, tag: 'bookworm' });
  try {
    // (Anonymous: the Engine API still wants an X-Registry-Auth header.)
    const stream = await docker.getImage(`${repo}:bookworm`).push({ tag: 'bookworm', authconfig: { serveraddress: `localhost:${mirrorPort}` } });
    await new Promise<void>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, events: { error?: string }[]) => {
        const failed = events?.find((e) => e.error);
        if (err ?? failed) reject(err ?? new Error(`push ${repo}:bookworm: ${failed!.error}`));
        else resolve();
      }),
    );
  } finally {
    await docker
      .getImage(`${repo}:bookworm`)
      .remove({ noprune: true })
      .catch(() => undefined);
  }
}

/**
 * Brings docker-compose.yml up as a project of its own on the suites' Docker daemon: its own
 * name, free host ports, fresh secrets in a temporary .env (mode 0600), its own
 * CODEBAY_DEPLOYMENT for the instances' Docker objects; the images built by
 * deploy/images/build.sh; the base-image mirror filled with debian:bookworm and the Dockerfile
 * frontend; with `extensionSource`, that host folder as the builders' EXTENSION_SOURCE_DIR. Resolves once
 * `up --wait` saw every service healthy and the gateway answers /readyz. Throws (after taking
 * down what it started) when any of that fails.
 */
export async function startCompose(opts: { extensionSource?: string } = {}): Promise<ComposeDeployment> {
  const c = components();
  const dockerHost = c.dockerHost;
  const socket = dockerHost.replace(/^unix:\/\//, '');
  const docker = dockerFromHost(dockerHost);
  const hex = randomBytes(4).toString('hex');
  const project = `codebay-c${hex}`;
  const work = await mkdtemp(join(tmpdir(), `codebay-${project}-`));
  const [gw, gwMetrics, provMetrics, redis, registry, mirror] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const secret = () => randomBytes(18).toString('hex');
  const settings: ComposeSettings = {
    REDIS_PASSWORD: secret(),
    CODEBAY_ADMIN_TOKEN: secret(),
    CODEBAY_SECRET_KEY: randomBytes(32).toString('base64'),
    REGISTRY_PULL_AUTH: `pull-${hex}:${secret()}`,
    REGISTRY_PUSH_AUTH: `push-${hex}:${secret()}`,
    GATEWAY_PORT: gw,
    GATEWAY_METRICS_PORT: gwMetrics,
    PROVISIONER_METRICS_PORT: provMetrics,
    REDIS_PORT: redis,
    REGISTRY_PORT: registry,
    MIRROR_PORT: mirror,
    CODEBAY_DEPLOYMENT: project,
  };
  const envFile = join(work, '.env');
  const lines = Object.entries({
    ...settings,
    PUBLIC_URL: `http://127.0.0.1:${gw}`,
    DOCKER_SOCKET: socket,
    DOCKER_GID: (await stat(socket)).gid,
    CODEBAY_EDITOR_ROOT: c.editorRoot,
    CODEBAY_LAUNCHER_DIR: join(ROOT, 'packages/editor/launcher'),
    // Build containers resolve names with this machine's resolvers (the samples' RUN apt-get).
    DIND_DNS: await hostResolvers(),
    ...(opts.extensionSource ? { EXTENSION_SOURCE_DIR: opts.extensionSource } : {}),
  }).map(([k, v]) => `${k}=${v}`);
  await writeFile(envFile, `${lines.join('\n')}\n`, { mode: 0o600 });
  await chmod(envFile, 0o600);
  const imagesFile = join(work, 'images.env');
  await buildImages(dockerHost, imagesFile);
  const binary = await composeBinary();
  mkdirSync(LOG_DIR, { recursive: true });

  // Only what compose needs from this process: the suites' own variables (REGISTRY_PULL_AUTH, …)
  // would override the .env file's.
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, DOCKER_HOST: dockerHost };
  const base = ['-p', project, '-f', join(ROOT, 'docker-compose.yml'), '--project-directory', ROOT, '--env-file', envFile, '--env-file', imagesFile];
  const compose = async (args: string[], timeoutMs = 600_000) => {
    try {
      const { stdout } = await run(binary, [...base, ...args], { cwd: ROOT, env, maxBuffer: 64 << 20, timeout: timeoutMs });
      return stdout;
    } catch (e) {
      const err = e as { stderr?: string; message: string };
      throw new Error(`docker compose ${args.join(' ')}: ${err.stderr?.trim() || err.message}`);
    }
  };
  const names: DockerNames = dockerNames(project);
  const url = `http://127.0.0.1:${gw}`;
  const deployment: ComposeDeployment = {
    project,
    settings,
    docker,
    url,
    names,
    registry: `localhost:${registry}`,
    compose,
    async up(extra = []) {
      await compose(['up', '-d', '--wait', '--wait-timeout', '300', ...extra]);
    },
    async containers(service) {
      const out = await compose(['ps', '--status', 'running', '--format', '{{.Name}}', service]);
      return out.split('\n').filter(Boolean).sort();
    },
    async down() {
      // The services' logs, for a failure's post-mortem.
      await compose(['logs', '--no-color', '--timestamps'])
        .then((logs) => writeFile(join(LOG_DIR, `${project}.log`), logs))
        .catch(() => undefined);
      await compose(['down', '-v', '--remove-orphans', '--timeout', '20']).finally(async () => {
        await removeDeployment(dockerHost, project);
        await rm(work, { recursive: true, force: true });
      });
    },
    api(path, init = {}) {
      const { token = settings.CODEBAY_ADMIN_TOKEN, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token) headers.set('authorization', `Bearer ${token}`);
      return fetch(`${url}${path}`, { ...rest, headers, redirect: 'manual' });
    },
  };
  try {
    // The mirror first (nothing depends on it but the builders): filled before they build.
    await compose(['up', '-d', '--wait', 'mirror']);
    await seedMirror(docker, dockerHost, mirror);
    await deployment.up();
    await waitFor('the gateway to be ready', async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.ok ? true : undefined), 60_000);
  } catch (e) {
    await deployment.down().catch(() => undefined);
    throw e;
  }
  return deployment;
}
