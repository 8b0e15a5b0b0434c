import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { DockerNames } from '../../services/provisioner/src/runtime/docker-driver.ts';
import { launchChromium, openWorkbench, writeFromTerminal } from './browser.ts';
import { containerExists, execIn, testDocker, volumeExists } from './docker.ts';
import { editorRequest } from './editor.ts';
import {
  createFromDevcontainer,
  createFromWorkspace,
  getInstance,
  packWorkspace,
  uniqueDevcontainer,
  uniqueWorkspace,
  waitForLifecycle,
  waitForStatus,
  type ApiTarget,
} from './instances.ts';
import { readSse } from './sse.ts';
import { LOG_DIR } from './stack.ts';

const SAMPLES = fileURLToPath(new URL('../../samples', import.meta.url));

/**
 * A codebay deployment whose instances run on the suites' Docker daemon (`testDocker()`): the
 * local test stack (`startStack`) or the compose deployment (test/compose).
 */
export interface EditorTarget extends ApiTarget {
  /** The API's base URL as the gateway reports it (`PUBLIC_URL`), e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Names of this deployment's Docker objects (`CODEBAY_DEPLOYMENT`). */
  names: DockerNames;
  /** Where instances pull their images (`REGISTRY`, e.g. `localhost:32000`). */
  registry: string;
}

/**
 * Registers the end-to-end tests — from an upload to VS Code in a browser and back to nothing —
 * in the calling `describe`, against `target()` (called once its `beforeAll` has run): build
 * samples/simple-devcontainer.json with its log followed over SSE, Running with the merged
 * config applied, the editor refused without its token, the workbench in headless Chromium
 * through the gateway with a terminal writing to /workspace and /shared, and delete (container,
 * network and workspace volume gone, the shared volume kept). With `workspace`, also
 * samples/python as a workspace upload and the tokens of two instances kept apart.
 *
 * Its own `afterAll` deletes what is left of its instances (waiting up to 60 s each for
 * `Deleted`) and the test user's shared volume (the product never deletes one); the caller
 * stops the deployment after that (vitest runs `afterAll` hooks in reverse order).
 */
export function editorEndToEnd(target: () => EditorTarget, opts: { workspace: boolean }): void {
  const docker = testDocker();
  const user = `e2e-${randomBytes(3).toString('hex')}`;
  const container = (id: string) => target().names.container(id);
  const cat = async (id: string, path: string) => {
    const r = await execIn(docker, container(id), ['cat', path]);
    return r.code === 0 ? r.stdout : undefined;
  };
  let browser: Browser;
  let simple: InstanceResponse;
  let python: InstanceResponse;

  beforeAll(async () => {
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    const t = target();
    for (const inst of [simple, python]) if (inst) await t.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' }).catch(() => undefined);
    for (const inst of [simple, python]) if (inst) await waitForStatus(t, inst.instance_id, ['Deleted'], 60_000).catch(() => undefined);
    // The product never deletes a user's shared volume; the test removes its own test user's.
    await docker
      .getVolume(t.names.sharedVolume(user))
      .remove()
      .catch(() => undefined);
  });

  it('builds samples/simple-devcontainer.json, streaming its log over SSE to the end marker', async () => {
    const t = target();
    simple = await createFromDevcontainer(t, user, await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`));
    expect(simple.status).toBe('Queued');
    expect(simple.build).toMatchObject({ key: expect.stringMatching(/^[0-9a-f]{64}$/), cache: 'miss' });
    expect(simple.instance_id).toMatch(new RegExp(`^${user}-[a-z0-9]{8}$`));
    expect(simple.access_token).toMatch(/^[A-Za-z0-9]+$/);
    expect(simple.url).toBe(`${t.url}/instances/${simple.instance_id}?tkn=${simple.access_token}`);
    // Every editor has an origin of its own.
    expect(simple.editor_url).toBe(`http://${simple.instance_id}.localhost:${new URL(t.url).port}/`);
    expect(simple.base_image).toBe('debian:bookworm');

    const res = await t.api(`/api/instances/${simple.instance_id}/build-logs?follow=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = await readSse(res, (e) => e.event === 'end', 240_000);
    const end = events.at(-1)!;
    expect(end.event).toBe('end');
    expect(JSON.parse(end.data)).toMatchObject({ outcome: 'success' });
    const lines = events.filter((e) => e.event === 'line').map((e) => (JSON.parse(e.data) as { text: string }).text);
    expect(lines.some((l) => l.includes('pushed'))).toBe(true);
    // ANSI escape codes never reach users.
    expect(lines.join('\n')).not.toMatch(/\x1b\[/);
    // The same log as one text, the seed's shape.
    const logs = (await (await t.api(`/api/instances/${simple.instance_id}/build-logs`)).json()) as { logs: string; status: string };
    expect(logs.logs).toContain('pushed');
  });

  it('runs it: Running only once the editor answers, with the merged config applied', async () => {
    const t = target();
    const running = await waitForStatus(t, simple.instance_id, ['Running'], 180_000);
    // postCreateCommand runs with the editor up (waitFor: updateContentCommand, the spec's default).
    const settled = await waitForLifecycle(t, simple.instance_id, 60_000);
    expect(settled.lifecycle).toMatchObject({ wait_for: 'updateContentCommand', ok: true });
    expect(settled.lifecycle?.commands.postCreateCommand?.state).toBe('succeeded');
    // The image the builder recorded at push, pulled by digest.
    expect(running.devcontainer_image).toMatch(new RegExp(`^${t.registry}/codebay-devcontainer@sha256:[0-9a-f]{64}$`));
    // The default editor: the one the deployment lists as default, code-server 4.139.1 (VS Code 1.139.1) as set up.
    const editors = (await (await t.api('/api/editor-versions')).json()) as { versions: Array<{ vscode_version: string; default: boolean }> };
    expect(running.vscode_version).toBe(editors.versions.find((v) => v.default)?.vscode_version);
    expect(running.vscode_version).toBe('1.139.1');
    expect(await cat(simple.instance_id, '/workspace/.sample-post-create')).toMatch(/^created .* as root/);
    const env = await execIn(docker, container(simple.instance_id), ['printenv', 'CODEBAY_SAMPLE']);
    expect(env.stdout.trim()).toBe('simple');
    // Limits from the seed's defaults.
    const info = await docker.getContainer(container(simple.instance_id)).inspect();
    expect(info.HostConfig.Memory).toBe(2 * 1024 ** 3);
    expect(info.HostConfig.NanoCpus).toBe(1e9);
    const bindings = info.NetworkSettings.Ports['8080/tcp'] ?? [];
    expect(bindings.every((b) => b.HostIp === '127.0.0.1')).toBe(true);
  });

  it('refuses the editor without the instance token', async () => {
    const base = simple.editor_url;
    expect((await editorRequest(base)).status).toBe(401);
    expect((await editorRequest(`${base}?tkn=wrong${simple.access_token}`)).status).toBe(401);
    expect((await editorRequest(`${base}static/x`, { headers: { cookie: 'codebay_tkn=nope' } })).status).toBe(401);
    // The path form of the API origin leads to the instance's own origin, never to the editor itself.
    const old = await fetch(`${target().url}/instances/${simple.instance_id}/static/x`, { redirect: 'manual' });
    expect(old.status).toBe(302);
    expect(old.headers.get('location')).toBe(`${simple.editor_url}static/x`);
  });

  it('opens VS Code in Chromium and a terminal there writes to /workspace and /shared', async () => {
    const page = await browser.newPage();
    try {
      // The seed's URL form redirects to the instance's own origin, which swaps the token for a cookie.
      await openWorkbench(page, simple.url, join(LOG_DIR, `e2e-no-workbench-${simple.instance_id}.png`), 90_000);
      // The token has left the address bar (code-server may add its own ?folder=).
      expect(page.url().startsWith(simple.editor_url)).toBe(true);
      expect(page.url()).not.toContain('tkn=');
      const cookies = await page.context().cookies();
      const session = cookies.find((c) => c.name === 'codebay_tkn');
      // Host-only (no Domain attribute: the browser records the exact host), HttpOnly, SameSite=Lax.
      expect(session).toMatchObject({ domain: new URL(simple.editor_url).hostname, path: '/', httpOnly: true, sameSite: 'Lax' });

      // The explorer lists the workspace once the remote connection is up: then the workbench takes commands.
      const marker = await writeFromTerminal(page, (path) => cat(simple.instance_id, path), join(LOG_DIR, `e2e-no-terminal-${simple.instance_id}.png`), 60_000);
      expect((await cat(simple.instance_id, '/shared/from-first.txt'))?.trim()).toBe(`shared-${marker}`);
      // The window attached to VS Code's server: postAttachCommand ran, and the API says so.
      const attached = await waitForLifecycle(target(), simple.instance_id, 60_000, (l) => l.commands.postAttachCommand?.state === 'succeeded');
      expect(attached.lifecycle?.ok).toBe(true);
      expect(await cat(simple.instance_id, '/workspace/.sample-post-attach')).toMatch(/^attached /);
    } finally {
      await page.close();
    }
  });

  if (opts.workspace) {
    it('builds samples/python as a workspace: Dockerfile, local feature, files and lifecycle all take effect', async () => {
      const t = target();
      const tarball = await packWorkspace(await uniqueWorkspace(`${SAMPLES}/python`));
      python = await createFromWorkspace(t, user, tarball);
      await waitForStatus(t, python.instance_id, ['Running'], 400_000);
      expect((await waitForLifecycle(t, python.instance_id, 120_000)).lifecycle?.ok).toBe(true);
      const id = python.instance_id;
      // The workspace's files are in /workspace.
      expect(await cat(id, '/workspace/hello.py')).toContain('python');
      // The Dockerfile ran, with the uploaded folder as its build context.
      expect(await cat(id, '/opt/sample/requirements.txt')).toContain('No third-party packages');
      // The postCreateCommand ran once, as the remoteUser, with the Dockerfile's python.
      expect(await cat(id, '/workspace/.sample-post-create')).toMatch(/^python 3\.\d+\.\d+ ok/);
      const owner = await execIn(docker, container(id), ['stat', '-c', '%U', '/workspace/.sample-post-create']);
      expect(owner.stdout.trim()).toBe('dev');
      // The local feature's command exists and the postStartCommand ran it.
      expect(await cat(id, '/workspace/.sample-post-start')).toContain('Hello from the local feature');
      // The editor runs as the unprivileged remoteUser.
      const ps = await execIn(docker, container(id), [
        'sh',
        '-c',
        'for p in /proc/[0-9]*; do if grep -q code-server "$p/cmdline" 2>/dev/null; then stat -c %U "$p"; fi; done',
      ]);
      expect(ps.stdout.split('\n').filter(Boolean)).toContain('dev');
      // Same user, second instance: /shared carries what the first instance wrote, and the
      // unprivileged remoteUser can write there too.
      expect((await cat(id, '/shared/from-first.txt'))?.trim()).toMatch(/^shared-[0-9a-f]{8}$/);
      expect((await execIn(docker, container(id), ['sh', '-c', 'echo from-dev > /shared/from-dev.txt'], 'dev')).code).toBe(0);
    });

    it("refuses one instance's token on another instance", async () => {
      const res = await editorRequest(`${python.editor_url}?tkn=${simple.access_token}`);
      expect(res.status).toBe(401);
      const ok = await editorRequest(`${python.editor_url}?tkn=${python.access_token}`);
      expect(ok.status).toBe(302);
    });
  }

  it('delete removes the container, its network and the workspace volume and keeps the shared volume', async () => {
    const t = target();
    const id = simple.instance_id;
    const network = (await docker.getContainer(container(id)).inspect()).Config.Labels['codebay.network']!;
    expect(t.names.isNetwork(network!)).toBe(true);
    const res = await t.api(`/api/instances/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(202);
    expect(['Deleting', 'Deleted']).toContain(((await res.json()) as InstanceResponse).status);
    await waitForStatus(t, id, ['Deleted'], 60_000);
    expect(await containerExists(docker, container(id))).toBe(false);
    expect(await volumeExists(docker, t.names.workspaceVolume(id))).toBe(false);
    expect(
      await docker
        .getNetwork(network)
        .inspect()
        .then(
          () => true,
          () => false,
        ),
    ).toBe(false);
    expect(await volumeExists(docker, t.names.sharedVolume(user))).toBe(true);
    // The editor route is closed for a deleted instance.
    expect((await editorRequest(`${simple.editor_url}?tkn=${simple.access_token}`)).status).toBe(401);
    expect((await getInstance(t, id)).status).toBe('Deleted');
  });
}
