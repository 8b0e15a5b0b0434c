import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCompose, type ComposeDeployment } from '../support/compose.ts';
import { execIn } from '../support/docker.ts';
import { editorEndToEnd } from '../support/editor-e2e.ts';
import { createFromDevcontainer, createFromWorkspace, uniqueDevcontainer, waitForStatus } from '../support/instances.ts';
import { makeVsix } from '../support/vsix.ts';
import { waitFor } from '../support/wait.ts';
import { uniqueConfigFile, workspaceTarball } from '../support/workspaces.ts';

const SAMPLES = fileURLToPath(new URL('../../samples', import.meta.url));

/** The first line Redis answers to one inline command sent without authentication. */
function redisAnswer(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(`${command}\r\n`));
    let data = '';
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('utf8');
      if (data.includes('\r\n')) {
        socket.destroy();
        resolve(data.split('\r\n')[0]!);
      }
    });
    socket.on('error', reject);
  });
}

/**
 * docker-compose.yml, for real: `docker compose up` brings the whole system up from locally
 * built images in a project of its own (its own ports and secrets) on the suites' Docker
 * daemon; the end-to-end tests run against it; `--scale builder=2` gives two builders, each
 * with its own Docker daemon, and two builds run at once; `down -v` leaves nothing behind.
 */
describe('docker compose: the whole system on one Docker host', () => {
  let d: ComposeDeployment;
  /** The host folder .env names as EXTENSION_SOURCE_DIR: one .vsix. */
  let extensionSource: string;

  beforeAll(async () => {
    extensionSource = await mkdtemp(join(tmpdir(), 'codebay-compose-extensions-'));
    await chmod(extensionSource, 0o755);
    makeVsix(join(extensionSource, 'compose.vsix'), { publisher: 'codebay-test', name: 'compose', version: '1.2.3' });
    d = await startCompose({ extensionSource });
  }, 900_000);

  afterAll(async () => {
    if (extensionSource) await rm(extensionSource, { recursive: true, force: true });
    if (!d) return;
    // Every volume the project's containers use, anonymous ones (the builders' dockerd storage) too.
    const projectFilter = (label: string) => JSON.stringify({ label: [`${label}=${d.project}`] });
    const containers = await d.docker.listContainers({ all: true, filters: projectFilter('com.docker.compose.project') });
    const used = containers.flatMap((ct) => ct.Mounts.filter((m) => m.Type === 'volume').map((m) => m.Name!));
    // The instances the tests deleted through the API left no container (checked before down(),
    // whose clean-up would hide one).
    const instanceLeft = await d.docker.listContainers({ all: true, filters: projectFilter('codebay.deployment') });
    await d.down();
    expect(instanceLeft.map((c) => c.Names[0])).toEqual([]);
    // Nothing of the project nor of its instances is left on the daemon.
    for (const label of ['com.docker.compose.project', 'codebay.deployment']) {
      expect(await d.docker.listContainers({ all: true, filters: projectFilter(label) }), label).toEqual([]);
      expect((await d.docker.listVolumes({ filters: projectFilter(label) })).Volumes ?? [], label).toEqual([]);
      expect(await d.docker.listNetworks({ filters: projectFilter(label) }), label).toEqual([]);
    }
    const names = new Set(((await d.docker.listVolumes()).Volumes ?? []).map((v) => v.Name));
    expect(used.filter((v) => names.has(v))).toEqual([]);
  }, 180_000);

  it('runs every service with a restart policy, Redis with a password and AOF, the registry with users, the builder without the host’s socket', async () => {
    const services = ['redis', 'registry', 'registry-push', 'mirror', 'gateway', 'provisioner', 'builder'];
    for (const service of services) {
      const [name] = await d.containers(service);
      expect(name, service).toBeDefined();
      const info = await d.docker.getContainer(name!).inspect();
      expect(info.HostConfig.RestartPolicy?.Name, service).toBe('unless-stopped');
      expect(info.State.Health?.Status, service).toBe('healthy');
    }
    // Redis: nothing without the password; append-only file on.
    expect(await redisAnswer(d.settings.REDIS_PORT, 'PING')).toMatch(/^-NOAUTH/);
    const redis = new Redis({ host: '127.0.0.1', port: d.settings.REDIS_PORT, password: d.settings.REDIS_PASSWORD, lazyConnect: true });
    try {
      await redis.connect();
      expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
      expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
    } finally {
      redis.disconnect();
    }
    // The registry: the pull user only (and read-only); the push endpoint is not on the host.
    const v2 = `http://127.0.0.1:${d.settings.REGISTRY_PORT}/v2/`;
    const basic = (auth: string) => ({ authorization: `Basic ${Buffer.from(auth).toString('base64')}` });
    expect((await fetch(v2)).status).toBe(401);
    expect((await fetch(v2, { headers: basic(d.settings.REGISTRY_PULL_AUTH) })).status).toBe(200);
    expect((await fetch(v2, { headers: basic(d.settings.REGISTRY_PUSH_AUTH) })).status).toBe(401);
    const [push] = await d.containers('registry-push');
    expect(Object.values((await d.docker.getContainer(push!).inspect()).HostConfig.PortBindings ?? {}).flat()).toEqual([]);
    // The builder talks to a daemon of its own; no mount brings the host's socket in: its one bind
    // mount is the extension source, read-only.
    const [builder] = await d.containers('builder');
    const mounts = (await d.docker.getContainer(builder!).inspect()).Mounts;
    expect(mounts.map((m) => m.Destination)).not.toContain('/var/run/docker.sock');
    expect(mounts.filter((m) => m.Type === 'bind').map((m) => [m.Source, m.Destination, m.RW])).toEqual([
      [extensionSource, '/var/lib/codebay/extension-source', false],
    ]);
    const inner = await execIn(d.docker, builder!, ['docker', 'info', '--format', '{{.ID}}']);
    expect(inner.code).toBe(0);
    const outer = await d.docker.info();
    expect(inner.stdout.trim()).not.toBe(outer.ID);
  });

  it('a hostile Dockerfile cannot make the builder’s daemon fetch from the project’s private network (ADD http://<service>/ is refused)', async () => {
    // A service on the project's network that answers HTTP: what Redis, a metadata endpoint or
    // the host would be to a Dockerfile's ADD, were the daemon's own connections not limited.
    const network = `${d.project}_default`;
    const [gateway] = await d.containers('gateway');
    const probe = await d.docker.createContainer({
      // Node from codebay's own image: an HTTP server that answers every request with "secret".
      Image: (await d.docker.getContainer(gateway!).inspect()).Config.Image,
      Entrypoint: ['node'],
      Cmd: ['-e', "require('node:http').createServer((req, res) => res.end('secret')).listen(8000)"],
      User: '10001:10001',
      HostConfig: { NetworkMode: network },
      NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: ['probe'] } } },
    });
    const user = `cmp-${randomBytes(3).toString('hex')}`;
    let id: string | undefined;
    try {
      await probe.start();
      const [builder] = await d.containers('builder');
      const get = `fetch('http://probe:8000/').then(async (r) => console.log(await r.text()), (e) => { console.log(String(e.cause?.code ?? e)); process.exit(1); })`;
      // The builder process (uid 10001) reaches it: the target is real …
      const asBuilder = await waitFor(
        'the probe to answer the builder process',
        async () => {
          const r = await execIn(d.docker, builder!, ['node', '-e', get], '10001:10001');
          if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stdout.trim()} ${r.stderr.trim()}`);
          return r;
        },
        30_000,
        500,
      );
      expect(asBuilder.stdout.trim()).toBe('secret');
      // … root's connections (the daemon's) are refused …
      const asRoot = await execIn(d.docker, builder!, ['node', '-e', get], '0:0');
      expect(asRoot.code).toBe(1);
      expect(asRoot.stdout).toMatch(/ECONNREFUSED/);
      // … so a build's ADD of it fails, saying so, and nothing of it lands in an image.
      const inst = await createFromWorkspace(
        d,
        user,
        await workspaceTarball({
          config: { build: { dockerfile: 'Dockerfile' } },
          dockerfile: `FROM debian:bookworm\nADD http://probe:8000/${randomBytes(4).toString('hex')} /probe\n`,
        }),
      );
      id = inst.instance_id;
      const failed = await waitForStatus(d, inst.instance_id, ['Failed', 'Running'], 300_000);
      expect(failed.status).toBe('Failed');
      const logs = ((await (await d.api(`/api/instances/${inst.instance_id}/build-logs`)).json()) as { logs: string }).logs;
      expect(logs).toMatch(/probe:8000[^\n]*(connection refused|connect)/i);
    } finally {
      await probe.remove({ force: true }).catch(() => undefined);
      if (id) await d.api(`/api/instances/${id}`, { method: 'DELETE' }).catch(() => undefined);
      await d.docker
        .getVolume(d.names.sharedVolume(user))
        .remove()
        .catch(() => undefined);
    }
  });

  describe('end to end: create, build log, editor in Chromium, a workspace upload, delete', () => {
    editorEndToEnd(() => d, { workspace: true });
  });

  it('the builder bakes an extension from the folder EXTENSION_SOURCE_DIR names in .env', async () => {
    const [builder] = await d.containers('builder');
    expect((await d.docker.getContainer(builder!).inspect()).Config.Env).toContain('EXTENSION_SOURCE_DIR=/var/lib/codebay/extension-source');
    const file = uniqueConfigFile({
      customizations: { vscode: { extensions: ['codebay-test.compose'] } },
    });
    const dir = dirname(file);
    const user = `cmpext-${randomBytes(3).toString('hex')}`;
    let id: string | undefined;
    try {
      id = (await createFromDevcontainer(d, user, file)).instance_id;
      const running = await waitForStatus(d, id, ['Running'], 300_000);
      expect(running.warnings.filter((w) => w.property === 'customizations.vscode.extensions')).toEqual([]);
      const { logs } = (await (await d.api(`/api/instances/${id}/build-logs`)).json()) as { logs: string };
      expect(logs).toContain('codebay: extension codebay-test.compose 1.2.3: baked into the image');
      const index = await execIn(d.docker, d.names.container(id), ['cat', '/usr/local/share/codebay/extensions/index.json']);
      expect(JSON.parse(index.stdout)).toEqual({
        extensions: [{ id: 'codebay-test.compose', version: '1.2.3', file: 'codebay-test.compose-1.2.3.vsix' }],
        missing: [],
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
      if (id) {
        await d.api(`/api/instances/${id}`, { method: 'DELETE' });
        await waitForStatus(d, id, ['Deleted'], 60_000);
      }
      await d.docker
        .getVolume(d.names.sharedVolume(user))
        .remove()
        .catch(() => undefined);
    }
  });

  it('--scale builder=2: two builders, each with its own Docker daemon, run two builds at once', async () => {
    await d.up(['--scale', 'builder=2']);
    const builders = await d.containers('builder');
    expect(builders).toHaveLength(2);
    const daemonIds = await Promise.all(builders.map(async (b) => (await execIn(d.docker, b, ['docker', 'info', '--format', '{{.ID}}'])).stdout.trim()));
    expect(new Set(daemonIds).size).toBe(2);

    const user = `cmp-${randomBytes(3).toString('hex')}`;
    const created: InstanceResponse[] = [];
    try {
      created.push(
        ...(await Promise.all([0, 1].map(async () => createFromDevcontainer(d, user, await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`))))),
      );
      const [ra, rb] = await Promise.all(created.map((i) => waitForStatus(d, i.instance_id, ['Running'], 300_000)));
      // Built on two builders …
      const builderOf = async (id: string) => {
        const res = (await (await d.api(`/api/instances/${id}/build-logs`)).json()) as { logs: string };
        return /on builder (\S+)/.exec(res.logs)?.[1];
      };
      const [ba, bb] = await Promise.all([builderOf(ra!.instance_id), builderOf(rb!.instance_id)]);
      expect(ba).toBeDefined();
      expect(bb).toBeDefined();
      expect(ba).not.toBe(bb);
      // … whose build windows overlap …
      const t = (s: string | null | undefined) => Date.parse(s ?? '');
      expect(t(ra!.timings.build_started_at)).toBeLessThan(t(rb!.timings.build_ended_at));
      expect(t(rb!.timings.build_started_at)).toBeLessThan(t(ra!.timings.build_ended_at));
      // … each image on exactly one of the two daemons: the builder's own.
      for (const inst of created) {
        const ref = `registry-push:5000/codebay-devcontainer:${inst.build!.key}`;
        const holders = await Promise.all(
          builders.map(async (b) => (await execIn(d.docker, b, ['docker', 'image', 'inspect', '--format', '{{.Id}}', ref])).code === 0),
        );
        expect(holders.filter(Boolean)).toHaveLength(1);
      }
    } finally {
      for (const inst of created) await d.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' });
      await Promise.all(created.map((i) => waitForStatus(d, i.instance_id, ['Deleted'], 60_000)));
      await d.docker
        .getVolume(d.names.sharedVolume(user))
        .remove()
        .catch(() => undefined);
    }
  });

  it('a gateway and a builder that crash are started again by their restart policy, healthy', async () => {
    const [gateway] = await d.containers('gateway');
    const [builder] = await d.containers('builder');
    const restarts = async (name: string) => (await d.docker.getContainer(name).inspect()).RestartCount;
    const before = { gateway: await restarts(gateway!), builder: await restarts(builder!) };
    // SIGKILL, as a crash: the gateway's node (tini's child), the builder's node (its dockerd
    // then stops with it, and the container exits).
    expect((await execIn(d.docker, gateway!, ['sh', '-c', 'kill -KILL $(cat /proc/1/task/1/children)'])).code).toBe(0);
    expect((await execIn(d.docker, builder!, ['pkill', '-KILL', '-f', '/app/services/builder/dist/main.js'])).code).toBe(0);
    for (const [name, was] of [
      [gateway!, before.gateway],
      [builder!, before.builder],
    ] as const) {
      await waitFor(
        `${name} to be restarted and healthy`,
        async () => {
          const info = await d.docker.getContainer(name).inspect();
          return info.RestartCount > was && info.State.Health?.Status === 'healthy' ? true : undefined;
        },
        90_000,
        500,
      );
    }
    expect((await fetch(`${d.url}/readyz`)).ok).toBe(true);
  });

  it('Redis keeps its data across a restart (append-only file on its volume)', async () => {
    const key = `codebay-compose-test:${randomBytes(4).toString('hex')}`;
    const connectRedis = async () => {
      const r = new Redis({ host: '127.0.0.1', port: d.settings.REDIS_PORT, password: d.settings.REDIS_PASSWORD, lazyConnect: true, maxRetriesPerRequest: 1 });
      await r.connect();
      return r;
    };
    const before = await connectRedis();
    await before.set(key, 'kept');
    before.disconnect();
    // A hard stop: no shutdown save, only what the append-only file holds (fsync every second).
    await waitFor(
      'the write to reach the append-only file',
      async () => ((await execIn(d.docker, (await d.containers('redis'))[0]!, ['grep', '-rq', key, '/data'])).code === 0 ? true : undefined),
      10_000,
    );
    await d.compose(['kill', 'redis']);
    // Redis alone (a plain `up` would also take the builders back to one replica).
    await d.up(['redis']);
    const after = await connectRedis();
    try {
      expect(await after.get(key)).toBe('kept');
      await after.del(key);
    } finally {
      after.disconnect();
    }
  });
});
