import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlatformKey, instanceSecrets } from '@codebay/platform';
import { components } from '../support/components.ts';
import { execIn, testDocker } from '../support/docker.ts';
import { createFromDevcontainer, createFromWorkspace, packWorkspace } from '../support/instances.ts';
import { freePort } from '../support/ports.ts';
import { forgetUsers } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const EDITOR_DIR = '/opt/codebay/editor';

/**
 * A workspace upload reaching `/workspace` the way it does on Kubernetes: the launcher,
 * in a real container running as a non-root user, fetches it from the real gateway with
 * the instance's own seeding token (what its Kubernetes Secret holds: derived from the
 * platform key, never the access token) and unpacks it once, before the lifecycle commands.
 */
describe('workspace seeding from the gateway', () => {
  let stack: Stack;
  let instance: InstanceResponse;
  let other: InstanceResponse;
  const user = `seed-${randomBytes(3).toString('hex')}`;
  const tarball = () => packWorkspace(join(ROOT, 'samples/python'));
  const docker = testDocker();
  const container = `codebay-seed-test-${randomBytes(3).toString('hex')}`;
  const workspace = mkdtempSync(join(tmpdir(), 'codebay-seed-ws-'));
  const seedToken = (id: string) => instanceSecrets.seed(new PlatformKey(stack.env.CODEBAY_SECRET_KEY!), id);

  beforeAll(async () => {
    stack = await startStack({ name: 'seed', services: ['gateway'] });
    instance = await createFromWorkspace(stack, user, await tarball());
    other = await createFromDevcontainer(stack, user, join(ROOT, 'samples/simple-devcontainer.json'));
  });
  afterAll(async () => {
    await docker
      .getContainer(container)
      .remove({ force: true })
      .catch(() => undefined);
    rmSync(workspace, { recursive: true, force: true });
    await stack?.stop();
    await forgetUsers(user);
  });

  /**
   * A container as the Kubernetes Deployment makes it, on the local daemon: the image's user 1000,
   * the editor bundle and launcher mounted, the seed URL and a token in the environment. It
   * stands in for a pod reaching the gateway's Service, so it shares the host's network (and,
   * which the daemon then requires, the host's user namespace): a test-only exception to the
   * isolation every instance container gets.
   */
  const launcherContainer = (name: string, ws: string, launch: object, token: string) =>
    docker.createContainer({
      name,
      Image: 'debian:bookworm',
      User: '1000:1000',
      Entrypoint: [`${EDITOR_DIR}/bin/node`, '/opt/codebay/launcher/launcher.mjs'],
      Env: [
        `CODEBAY_LAUNCH=${JSON.stringify(launch)}`,
        `CODEBAY_EDITOR_DIR=${EDITOR_DIR}`,
        'HOME=/workspace/.codebay/home',
        `CODEBAY_SEED_URL=${stack.url}/seed/instances/${instance.instance_id}`,
        `CODEBAY_SEED_TOKEN=${token}`,
      ],
      WorkingDir: '/workspace',
      HostConfig: {
        NetworkMode: 'host',
        UsernsMode: 'host',
        Mounts: [
          { Type: 'bind', Source: ws, Target: '/workspace' },
          { Type: 'bind', Source: join(components().editorRoot, 'code-server-4.139.1'), Target: EDITOR_DIR, ReadOnly: true },
          { Type: 'bind', Source: join(ROOT, 'packages/editor/launcher'), Target: '/opt/codebay/launcher', ReadOnly: true },
        ],
        SecurityOpt: ['no-new-privileges'],
      },
    });

  const seed = (id: string, token?: string) => fetch(`${stack.url}/seed/instances/${id}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  it('serves the upload only to the instance’s own seeding token', async () => {
    const res = await seed(instance.instance_id, seedToken(instance.instance_id));
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(body[0]).toBe(0x1f); // the gzip the user sent, byte for byte
    expect(body.equals(readFileSync(await tarball()))).toBe(true);
    for (const [id, token] of [
      [instance.instance_id, undefined],
      [instance.instance_id, 'x'.repeat(43)],
      [instance.instance_id, seedToken(other.instance_id)],
      [instance.instance_id, instance.access_token], // the access token opens the editor, not the upload
      [instance.instance_id, stack.adminToken], // an API token is not an instance token
      [`nope-${randomBytes(3).toString('hex')}`, seedToken(instance.instance_id)],
    ] as const) {
      const denied = await seed(id, token);
      expect(denied.status, `${id} with ${token?.slice(0, 4)}`).toBe(401);
      expect(((await denied.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
    const none = await seed(other.instance_id, seedToken(other.instance_id));
    expect(none.status).toBe(404);
  });

  it('is unpacked by the launcher as a non-root user before the lifecycle commands, once, with the token kept from them', async () => {
    chownSync(workspace, 1000, 1000);
    const port = await freePort();
    const launch = {
      workspaceFolder: '/workspace',
      port,
      host: '127.0.0.1',
      postCreateCommands: ['ls /workspace > /workspace/.seen-by-postcreate; env > /workspace/.env-of-postcreate'],
    };
    const c = await launcherContainer(container, workspace, launch, seedToken(instance.instance_id));
    await c.start();
    const healthy = async () =>
      fetch(`http://127.0.0.1:${port}/healthz`)
        .then((r) => r.ok || undefined)
        .catch(() => undefined);
    await waitFor('the editor to answer after seeding', healthy, 60_000);

    expect(readFileSync(join(workspace, 'hello.py'), 'utf8')).toBe(readFileSync(join(ROOT, 'samples/python/hello.py'), 'utf8'));
    expect(existsSync(join(workspace, '.devcontainer/devcontainer.json'))).toBe(true);
    expect(readFileSync(join(workspace, '.seen-by-postcreate'), 'utf8')).toContain('hello.py');
    const env = readFileSync(join(workspace, '.env-of-postcreate'), 'utf8');
    expect(env).not.toContain('CODEBAY_SEED_TOKEN');
    expect(env).not.toContain(seedToken(instance.instance_id));
    expect((await execIn(docker, container, ['stat', '-c', '%u', '/workspace/hello.py'])).stdout.trim()).toBe('1000');

    // A restart keeps the user's edits: the upload is unpacked only on the first start.
    writeFileSync(join(workspace, 'hello.py'), 'print("edited")\n');
    await c.restart({ t: 10 });
    await waitFor('the editor to answer after the restart', healthy, 60_000);
    expect(readFileSync(join(workspace, 'hello.py'), 'utf8')).toBe('print("edited")\n');
    const logs = (await c.logs({ stdout: true, stderr: true })).toString('utf8');
    expect(logs).toContain('workspace upload: unpacked into /workspace');
    expect(logs).toContain('workspace upload: already unpacked');
    expect(logs).not.toContain(seedToken(instance.instance_id));
  });

  it('stops the start with a clear message when the gateway refuses the token', async () => {
    const port = await freePort();
    const empty = mkdtempSync(join(tmpdir(), 'codebay-seed-ws-'));
    chownSync(empty, 1000, 1000);
    const name = `${container}-denied`;
    const c = await launcherContainer(name, empty, { workspaceFolder: '/workspace', host: '127.0.0.1', port }, seedToken(other.instance_id));
    try {
      await c.start();
      const { StatusCode } = (await c.wait()) as { StatusCode: number };
      expect(StatusCode).not.toBe(0);
      const logs = (await c.logs({ stdout: true, stderr: true })).toString('utf8');
      expect(logs).toContain('workspace upload: cannot unpack it: the gateway answered 401');
      expect(existsSync(join(empty, '.codebay/seeded'))).toBe(false);
    } finally {
      await c.remove({ force: true });
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
