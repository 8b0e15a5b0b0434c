import type { InstanceResponse } from '@codebay/contracts';
import { redisKeys } from '@codebay/contracts';
import { BuildCache, RegistryClient, builtImageSchema, createRedis } from '@codebay/platform';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { components, pullLogin } from './components.ts';
import { execIn, testDocker } from './docker.ts';
import { editorRequest } from './editor.ts';
import { fileBlob, getInstance, packWorkspace, waitForStatus } from './instances.ts';
import { buildLogEnd, forgetUsers } from './records.ts';
import { startStack, type ServiceName, type Stack } from './stack.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A user of the platform with an API token of their own. */
export interface Tenant {
  user: string;
  token: string;
  api(path: string, init?: RequestInit): Promise<Response>;
  /** POST /api/instances/workspace with this tarball; the raw response (4xx included). */
  createWorkspace(tarball: string): Promise<Response>;
  /** POST /api/instances/devcontainer with this config (an object, or JSONC text). */
  createDevcontainer(config: Record<string, unknown> | string): Promise<Response>;
  /** POST /api/instances/simple. */
  createSimple(body: Record<string, unknown>): Promise<Response>;
  /** Deletes every instance of this tenant's (best effort). */
  cleanUp(): Promise<void>;
}

/** Two tenants with their own tokens on one stack: the one attacked and the one attacking. */
export interface HostileStack {
  stack: Stack;
  victim: Tenant;
  attacker: Tenant;
  stop(): Promise<void>;
}

function tenant(stack: Stack, user: string, token: string): Tenant {
  const api = (path: string, init: RequestInit = {}) => stack.api(path, { ...init, token } as RequestInit & { token: string });
  const t: Tenant = {
    user,
    token,
    api,
    async createWorkspace(tarball) {
      const form = new FormData();
      form.set('workspace', await fileBlob(tarball, 'application/gzip'), 'workspace.tar.gz');
      return api('/api/instances/workspace', { method: 'POST', body: form });
    },
    async createDevcontainer(config) {
      const form = new FormData();
      const text = typeof config === 'string' ? config : JSON.stringify(config);
      form.set('devcontainer_json', new Blob([text], { type: 'application/json' }), 'devcontainer.json');
      return api('/api/instances/devcontainer', { method: 'POST', body: form });
    },
    async createSimple(body) {
      return api('/api/instances/simple', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    },
    async cleanUp() {
      const list = (await (await api('/api/instances')).json().catch(() => ({ instances: [] }))) as { instances: InstanceResponse[] };
      for (const i of list.instances) await api(`/api/instances/${i.instance_id}`, { method: 'DELETE' }).catch(() => undefined);
    },
  };
  return t;
}

/** A new API token for `user` in the tokens file, made by the product's own add-token command (which prints it once). */
export function addApiToken(file: string, user: string): string {
  return execFileSync(process.execPath, [join(ROOT, 'services/gateway/dist/add-token.js'), '--user', user, '--file', file], {
    cwd: ROOT,
    encoding: 'utf8',
  }).trim();
}

/**
 * The real gateway, builder and provisioner with a tokens file holding two users' tokens
 * (made by the product's own add-token command): `victim` and `attacker`.
 */
export async function startHostileStack(name: string, env: NodeJS.ProcessEnv = {}, services?: ServiceName[]): Promise<HostileStack> {
  const tag = randomBytes(3).toString('hex');
  const file = join(mkdtempSync(join(tmpdir(), 'codebay-tokens-')), 'tokens.json');
  const addToken = (user: string) => addApiToken(file, user);
  const victimUser = `victim-${tag}`;
  const attackerUser = `attacker-${tag}`;
  const victimToken = addToken(victimUser);
  const attackerToken = addToken(attackerUser);
  const stack = await startStack({
    name,
    services,
    env: { CODEBAY_TOKENS_FILE: file, MAX_INSTANCES_PER_USER: '50', MAX_QUEUED_BUILDS_PER_USER: '20', ...env },
  });
  const victim = tenant(stack, victimUser, victimToken);
  const attacker = tenant(stack, attackerUser, attackerToken);
  return {
    stack,
    victim,
    attacker,
    async stop() {
      await victim.cleanUp().catch(() => undefined);
      await attacker.cleanUp().catch(() => undefined);
      await stack.stop();
      await forgetUsers(victimUser, attackerUser);
      const docker = testDocker();
      for (const u of [victimUser, attackerUser])
        await docker
          .getVolume(stack.names.sharedVolume(u))
          .remove()
          .catch(() => undefined);
    },
  };
}

/** What the victim has, to be checked unchanged after every attempt. */
export interface VictimSnapshot {
  instance: InstanceResponse;
  /** The workspace the victim uploaded (uploading it again asks for the identical build). */
  tarball: string;
  containerId: string;
  /** Baked into the victim's image by its Dockerfile (`/opt/victim/secret.txt`) from its workspace. */
  imageSecret: string;
  /** The victim's build arg (a secret of theirs). */
  buildArg: string;
  /** Written into the victim's /workspace and /shared after it started. */
  workspaceMarker: string;
  /** The digest recorded for the victim's build key. */
  recordedDigest: string;
}

/**
 * The victim's instance: a workspace whose Dockerfile copies a secret file of the upload
 * into the image and takes a secret build arg; Running; a marker written into its
 * /workspace and /shared.
 */
export async function startVictim(h: HostileStack): Promise<VictimSnapshot> {
  const imageSecret = `victim-file-${randomBytes(8).toString('hex')}`;
  const buildArg = `victim-arg-${randomBytes(8).toString('hex')}`;
  const workspaceMarker = `victim-ws-${randomBytes(8).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'codebay-victim-'));
  mkdirSync(join(dir, '.devcontainer'));
  writeFileSync(join(dir, 'secret.txt'), imageSecret);
  writeFileSync(
    join(dir, '.devcontainer/devcontainer.json'),
    JSON.stringify({ build: { dockerfile: 'Dockerfile', context: '..', args: { VICTIM_ARG: buildArg } }, remoteUser: 'root' }),
  );
  writeFileSync(
    join(dir, '.devcontainer/Dockerfile'),
    'FROM debian:bookworm\nARG VICTIM_ARG\nCOPY secret.txt /opt/victim/secret.txt\nRUN echo "arg length ${#VICTIM_ARG}" > /opt/victim/arg-length\n',
  );
  const tarball = await packWorkspace(dir);
  const res = await h.victim.createWorkspace(tarball);
  expect(res.status, await res.clone().text()).toBe(202);
  const created = (await res.json()) as InstanceResponse;
  await waitForStatus(h.stack, created.instance_id, ['Running'], 300_000);
  // The image's digest and the build cache's entry are recorded after the push, which may end
  // after the instance is Running: the snapshot is taken once the build's job has ended.
  expect(await buildLogEnd(h.stack, created.instance_id)).toMatchObject({ outcome: 'success' });
  const instance = await getInstance(h.stack, created.instance_id);
  expect(instance).toMatchObject({ status: 'Running', devcontainer_image: expect.stringMatching(/@sha256:[0-9a-f]{64}$/) });
  const docker = testDocker();
  const info = await docker.getContainer(h.stack.names.container(instance.instance_id)).inspect();
  const wrote = await execIn(docker, info.Id, [
    'sh',
    '-c',
    `echo ${workspaceMarker} > /workspace/victim-marker && echo ${workspaceMarker} > /shared/victim-marker`,
  ]);
  expect(wrote.code).toBe(0);
  const redis = createRedis(components().redisUrl, 'test-victim');
  try {
    const record = builtImageSchema.parse(JSON.parse((await redis.get(redisKeys.builtImage(instance.build!.key)))!));
    return { instance, tarball, containerId: info.Id, imageSecret, buildArg, workspaceMarker, recordedDigest: record.digest };
  } finally {
    await redis.quit();
  }
}

/**
 * Asserts the victim still has exactly what it had: its instance Running on the same
 * image and container, its files, its recorded build (digest still in the registry, the
 * build cache still answering it), and its editor still answering its own cookie.
 */
export async function expectVictimUnchanged(h: HostileStack, v: VictimSnapshot): Promise<void> {
  const res = await h.victim.api(`/api/instances/${v.instance.instance_id}`);
  expect(res.status).toBe(200);
  const now = (await res.json()) as InstanceResponse;
  expect(now.status).toBe('Running');
  expect(now.devcontainer_image).toBe(v.instance.devcontainer_image);
  const docker = testDocker();
  const info = await docker.getContainer(h.stack.names.container(v.instance.instance_id)).inspect();
  expect(info.Id).toBe(v.containerId);
  expect(info.State.Running).toBe(true);
  const files = await execIn(docker, v.containerId, ['sh', '-c', 'cat /workspace/victim-marker /shared/victim-marker /opt/victim/secret.txt']);
  expect(files.stdout.split('\n').filter(Boolean)).toEqual([v.workspaceMarker, v.workspaceMarker, v.imageSecret]);
  const c = components();
  const redis = createRedis(c.redisUrl, 'test-victim-check');
  try {
    const cache = new BuildCache(redis, new RegistryClient(`http://${c.registry}`, { auth: pullLogin(c) }), c.registry);
    expect((await cache.lookup(v.instance.build!.key))?.digest).toBe(v.recordedDigest);
  } finally {
    await redis.quit();
  }
  const opened = await editorRequest(`${v.instance.editor_url}?tkn=${v.instance.access_token}`);
  expect(opened.status).toBe(302);
  const cookie = String(opened.headers['set-cookie'] ?? '').split(';')[0]!;
  // The workbench itself (code-server's login page would mean the editor secret was not added).
  const page = await editorRequest(`${v.instance.editor_url}?folder=/workspace`, { headers: { cookie } });
  expect(page.status).toBe(200);
  expect(page.body).toContain('vscode-workbench-web-configuration');
}
