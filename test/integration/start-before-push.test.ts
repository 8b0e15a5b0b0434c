import { BUILD_IMAGE_REPOSITORY, type InstanceRecord, type InstanceResponse } from '@codebay/contracts';
import { BuildCache, InstanceStore, RegistryClient, createRedis, dockerFromHost, parseRegistryCredentials } from '@codebay/platform';
import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components, pullLogin } from '../support/components.ts';
import { createFromWorkspace, getInstance, waitForStatus } from '../support/instances.ts';
import { buildLogEnd, buildLogLines, forgetUsers } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { salt, workspaceTarball } from '../support/workspaces.ts';

/** Registry ports the daemons may reach (deploy/local/components.sh: 32000-32009; 32000/32001 are codebay's, 32009 another suite's). */
const GATE_PORTS = [32002, 32003, 32004, 32005, 32006, 32007, 32008];

/**
 * An HTTP proxy in front of the real push endpoint of codebay's registry, so a test decides
 * when a push ends: every manifest upload (`PUT /v2/…/manifests/…`, the last step of a
 * `docker push`) is held until `release()`, or answered `403 DENIED` in `deny` mode. Blobs
 * and everything else pass through to the registry untouched (the Host header too, so the
 * upload URLs the registry hands out point back here).
 */
class ManifestGate {
  private server!: Server;
  private open = false;
  private deny = false;
  private readonly waiting: (() => void)[] = [];
  /** Manifest uploads seen so far, with when they arrived and when they were let through or refused. */
  readonly manifests: { path: string; heldAt: number; answeredAt?: number; outcome?: 'passed' | 'denied' }[] = [];
  port = 0;

  constructor(private readonly upstream: URL) {}

  async listen(): Promise<void> {
    for (const port of GATE_PORTS) {
      const server = createServer((req, res) => void this.handle(req, res));
      const ok = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (ok) {
        this.server = server;
        this.port = (server.address() as AddressInfo).port;
        return;
      }
    }
    throw new Error(`no free port among ${GATE_PORTS.join(', ')}`);
  }

  /** Lets held and later manifest uploads through (or, with `deny`, refuses them all). */
  release(opts: { deny?: boolean } = {}): void {
    this.deny = opts.deny ?? false;
    this.open = true;
    for (const go of this.waiting.splice(0)) go();
  }

  /** Holds manifest uploads again. */
  close(): void {
    this.open = false;
    this.deny = false;
  }

  /** Manifest uploads held now (arrived, not yet answered). */
  held(): number {
    return this.manifests.filter((m) => m.answeredAt === undefined).length;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method === 'PUT' && /^\/v2\/.+\/manifests\/[^/]+$/.test(req.url ?? '')) {
      const entry: ManifestGate['manifests'][number] = { path: req.url!, heldAt: Date.now() };
      this.manifests.push(entry);
      const body: Buffer[] = [];
      for await (const chunk of req) body.push(chunk as Buffer);
      if (!this.open) await new Promise<void>((resolve) => this.waiting.push(resolve));
      entry.answeredAt = Date.now();
      if (this.deny) {
        entry.outcome = 'denied';
        res.writeHead(403, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: 'requested access to the resource is denied (test gate)' }] }));
        return;
      }
      entry.outcome = 'passed';
      this.forward(req, res, Buffer.concat(body));
      return;
    }
    this.forward(req, res);
  }

  private forward(req: IncomingMessage, res: ServerResponse, body?: Buffer): void {
    const up = request({ host: this.upstream.hostname, port: this.upstream.port, method: req.method, path: req.url, headers: req.headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on('error', (err) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(err.message);
    });
    if (body) up.end(body);
    else req.pipe(up);
  }

  async stop(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close').catch(() => undefined);
  }
}

/**
 * An instance on the Docker runtime whose daemon built its image starts from that image (by
 * image ID) while the image is still being pushed; the push still completes, and only then
 * is the build cache recorded. Real gateway, builder and provisioner on one dockerd, the real
 * registry (its push endpoint behind ManifestGate), Redis, code-server.
 */
describe('an instance starts from the image its builder built, before the push ends', () => {
  const c = components();
  const user = `early-${salt()}`;
  const docker = dockerFromHost(c.dockerHost);
  const registry = new RegistryClient(`http://${c.registry}`, { auth: pullLogin(c) });
  const gate = new ManifestGate(new URL(`http://${c.registryPush.replace(/^localhost:/, '127.0.0.1:')}`));
  let stack: Stack;
  let redis: ReturnType<typeof createRedis>;
  let store: InstanceStore;
  let cache: BuildCache;

  /** The manifest of `reference` in the registry (read with the pull-only user), or undefined. */
  async function manifest(reference: string): Promise<{ digest: string; config: string } | undefined> {
    const { username, password } = parseRegistryCredentials(c.registryPullAuth);
    const res = await fetch(`http://${c.registry}/v2/${BUILD_IMAGE_REPOSITORY}/manifests/${reference}`, {
      headers: {
        accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
        authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
      },
    });
    if (res.status === 404) return undefined;
    expect(res.status).toBe(200);
    const body = (await res.json()) as { config: { digest: string } };
    return { digest: res.headers.get('docker-content-digest')!, config: body.config.digest };
  }

  /** An instance of a workspace whose Dockerfile adds a layer no other build has (its push uploads something new), and the upload. */
  const create = async () => {
    const tarball = await workspaceTarball({
      config: { build: { dockerfile: 'Dockerfile' } },
      dockerfile: `FROM debian:bookworm\nRUN echo ${salt()} > /opt/early-start\n`,
    });
    return { inst: await createFromWorkspace(stack, user, tarball), tarball };
  };

  /** Waits for Running; the instance's record and what its container runs. */
  async function runningWhileHeld(id: string): Promise<{ running: InstanceResponse; record: InstanceRecord; containerId: string; imageId: string }> {
    const running = await waitForStatus(stack, id, ['Running'], 180_000);
    const record = (await store.get(id))!;
    const info = await docker.getContainer(stack.names.container(id)).inspect();
    return { running, record, containerId: info.Id, imageId: info.Image };
  }

  beforeAll(async () => {
    await gate.listen();
    stack = await startStack({
      name: 'early',
      env: { REGISTRY_PUSH: `localhost:${gate.port}`, BUILDER_NAME: 'builder-early', PUSH_ATTEMPTS: '2', PUSH_BACKOFF_SECONDS: '1' },
    });
    redis = createRedis(c.redisUrl, 'test-early');
    store = new InstanceStore(redis);
    cache = new BuildCache(redis, registry, c.registry);
  });
  afterAll(async () => {
    await stack?.stop();
    await gate.stop();
    await redis?.quit();
    await forgetUsers(user);
    await docker
      .getVolume(stack.names.sharedVolume(user))
      .remove()
      .catch(() => undefined);
  });

  it('reaches Running while its push is held, runs the built image by ID, and the push completes afterwards (registry by digest, cache recorded after)', async () => {
    gate.close();
    const { inst, tarball } = await create();
    const id = inst.instance_id;
    const key = inst.build!.key;
    expect(inst.build!.cache).toBe('miss');

    const { running, record, containerId, imageId } = await runningWhileHeld(id);
    // Running before the push ended: nothing of it is in the registry, the record or the cache.
    expect(gate.manifests.every((m) => m.answeredAt === undefined)).toBe(true);
    expect(running.timings.push_ended_at).toBeNull();
    expect(running.timings.running_at).not.toBeNull();
    expect(running.devcontainer_image).toBeNull();
    expect(await manifest(key)).toBeUndefined();
    expect(await cache.lookup(key)).toBeUndefined();
    // It runs the image its builder built, named by its image ID (never by a tag).
    expect(record.localImage).toEqual({ id: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), builder: 'builder-early' });
    expect(imageId).toBe(record.localImage!.id);
    expect((await docker.getContainer(containerId).inspect()).Config.Image).toBe(record.localImage!.id);

    // The push is in progress (its manifest upload waits at the gate), then let through.
    await waitFor('the push to reach its manifest upload', () => (gate.held() > 0 ? true : undefined), 120_000, 100);
    gate.release();
    const pushed = await waitFor(
      'the push to end',
      async () => {
        const now = await getInstance(stack, id);
        return now.timings.push_ended_at ? now : undefined;
      },
      120_000,
      200,
    );
    expect(pushed.status).toBe('Running');
    expect(Date.parse(pushed.timings.running_at!)).toBeLessThan(Date.parse(pushed.timings.push_ended_at!));
    expect(Date.parse(pushed.timings.running_at!)).toBeLessThanOrEqual(Math.min(...gate.manifests.map((m) => m.answeredAt!)));
    // The record names the pushed image by digest; the registry has it, and it is the very image the instance runs.
    expect(pushed.devcontainer_image).toMatch(new RegExp(`^${c.registry}/${BUILD_IMAGE_REPOSITORY}@sha256:[0-9a-f]{64}$`));
    const digest = pushed.devcontainer_image!.split('@')[1]!;
    expect(await registry.hasManifest(BUILD_IMAGE_REPOSITORY, digest)).toBe(true);
    expect(await manifest(digest)).toEqual({ digest, config: imageId });
    expect(await manifest(key)).toEqual({ digest, config: imageId });
    // The cache was recorded once the push had succeeded, with that digest.
    expect((await cache.lookup(key))?.digest).toBe(digest);
    expect(await buildLogEnd(stack, id)).toMatchObject({ outcome: 'success' });
    // Untouched by the push: the same container, still running.
    const after = await docker.getContainer(stack.names.container(id)).inspect();
    expect(after.Id).toBe(containerId);
    expect(after.State.Running).toBe(true);
    expect(after.RestartCount).toBe(0);
    // An identical request is a cache hit: the pushed image by that digest.
    const again = await createFromWorkspace(stack, user, tarball);
    expect(again.build).toEqual({ key, cache: 'hit' });
    expect(again.devcontainer_image).toBe(pushed.devcontainer_image);
    await stack.api(`/api/instances/${again.instance_id}`, { method: 'DELETE' });
    await stack.api(`/api/instances/${id}`, { method: 'DELETE' });
  });

  it('a push that fails after the instance started leaves it running, says why in its warning and build log, and records no cache entry', async () => {
    gate.close();
    const { inst } = await create();
    const id = inst.instance_id;
    const key = inst.build!.key;
    const { running, containerId } = await runningWhileHeld(id);
    expect(running.timings.push_ended_at).toBeNull();
    await waitFor('the push to reach its manifest upload', () => (gate.held() > 0 ? true : undefined), 120_000, 100);
    gate.release({ deny: true });

    const warned = await waitFor(
      'the failed push to be reported',
      async () => {
        const now = await getInstance(stack, id);
        return now.warning ? now : undefined;
      },
      120_000,
      200,
    );
    expect(warned.status).toBe('Running');
    expect(warned.error).toBeNull();
    expect(warned.warning).toMatch(/the image was not pushed \(.*denied.*\); the instance runs it, but it is not in the build cache/);
    expect(warned.devcontainer_image).toBeNull();
    expect(warned.timings.push_ended_at).toBeNull();
    // Both attempts (PUSH_ATTEMPTS=2) reached the registry and were refused.
    expect(gate.manifests.filter((m) => m.outcome === 'denied').length).toBeGreaterThanOrEqual(2);
    const lines = (await buildLogLines(stack, id)).join('\n');
    expect(lines).toContain('the instance runs this image already; pushing again in 1 s (attempt 2 of 2)');
    expect(await buildLogEnd(stack, id)).toMatchObject({ outcome: 'success', reason: warned.warning });
    expect(await cache.lookup(key)).toBeUndefined();
    expect(await manifest(key)).toBeUndefined();
    // The instance was never touched: the same container, running, and its editor answers.
    const info = await docker.getContainer(stack.names.container(id)).inspect();
    expect(info.Id).toBe(containerId);
    expect(info.State.Running).toBe(true);
    expect(info.RestartCount).toBe(0);
    const endpoint = (await store.get(id))!.runtime!.endpoint;
    expect((await fetch(`${endpoint}/healthz`)).status).toBe(200);
    await stack.api(`/api/instances/${id}`, { method: 'DELETE' });
  });
});
