import type { InstanceResponse } from '@codebay/contracts';
import { dockerFromHost } from '@codebay/platform';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { editorRequest } from '../support/editor.ts';
import { createFromDevcontainer, getInstance, waitForStatus } from '../support/instances.ts';
import { forgetUsers } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { makeVsix } from '../support/vsix.ts';
import { salt } from '../support/workspaces.ts';

/**
 * The editor versions on the Docker runtime, with the real gateway, builder and provisioner, the editor
 * bundles deploy/local/components.sh builds (code-server 4.139.1, the default, and 4.100.3) and
 * the real dockerd: the provisioner publishes what its bundles provide, the API lists it, and an
 * instance runs the code-server its `vscode_version` asks for.
 */
const run = promisify(execFile);
const CURRENT = { vscode_version: '1.139.1', code_server_version: '4.139.1' };
const OLDER = { vscode_version: '1.100.3', code_server_version: '4.100.3' };

describe('editor versions (Docker runtime, real bundles)', () => {
  const c = components();
  const user = `editors-${salt()}`;
  const docker = dockerFromHost(c.dockerHost);
  let stack: Stack;

  beforeAll(async () => {
    const missing = [CURRENT, OLDER].map((v) => join(c.editorRoot, `code-server-${v.code_server_version}`, 'bundle.json')).filter((f) => !existsSync(f));
    if (missing.length > 0) throw new Error(`editor bundles missing (deploy/local/components.sh up builds them): ${missing.join(', ')}`);
    stack = await startStack({ name: 'editors' });
  }, 120_000);

  afterAll(async () => {
    await stack?.stop();
    await forgetUsers(user);
  });

  const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  /** The instance's container log (the launcher's lines and code-server's). */
  const containerLog = async (id: string): Promise<string> => {
    const [ct] = await docker.listContainers({ all: true, filters: { label: [`codebay.instance=${id}`, 'codebay.kind=instance'] } });
    expect(ct, `container of ${id}`).toBeDefined();
    const raw = await docker.getContainer(ct!.Id).logs({ stdout: true, stderr: true, follow: false });
    return raw.toString('utf8');
  };

  /** The bundle folder mounted into the instance's container. */
  const mountedBundle = async (id: string): Promise<string | undefined> => {
    const [ct] = await docker.listContainers({ filters: { label: [`codebay.instance=${id}`, 'codebay.kind=instance'] } });
    const info = await docker.getContainer(ct!.Id).inspect();
    return info.Mounts.find((m) => m.Destination === '/opt/codebay/editor')?.Source;
  };

  const secondsBetween = (from: string | null | undefined, to: string | null | undefined) =>
    from && to ? ((Date.parse(to) - Date.parse(from)) / 1000).toFixed(2) : 'n/a';

  it('lists the bundles the provisioner published, the current code-server as the default', async () => {
    const res = await stack.api('/api/editor-versions');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { versions: Array<typeof CURRENT & { default: boolean }>; source: string; published_at: string };
    expect(body.source).toBe('provisioner');
    expect(Date.parse(body.published_at)).not.toBeNaN();
    expect(body.versions[0]).toEqual({ ...CURRENT, default: true });
    expect(body.versions).toContainEqual({ ...OLDER, default: false });
    expect(body.versions.filter((v) => v.default)).toHaveLength(1);
    // Also at the seed's bare path, and never without a token.
    expect((await stack.api('/editor-versions')).status).toBe(200);
    expect((await stack.api('/api/editor-versions', { token: null })).status).toBe(401);
  });

  it('refuses a vscode_version no bundle provides, naming the available ones, and creates nothing', async () => {
    const res = await stack.api('/api/instances/simple', json({ user_id: user, base_image: 'debian:bookworm', vscode_version: '1.99' }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; message: string; details: { available: string[] } } };
    expect(body.error.code).toBe('unsupported_vscode_version');
    expect(body.error.message).toContain(`available: ${CURRENT.vscode_version}`);
    expect(body.error.message).toContain(OLDER.vscode_version);
    expect(body.error.details.available).toEqual(expect.arrayContaining([CURRENT.vscode_version, OLDER.vscode_version]));
    const list = (await (await stack.api(`/api/instances?user_id=${user}`)).json()) as { instances: unknown[] };
    expect(list.instances).toEqual([]);
  });

  it('runs code-server 4.139.1 by default and 4.100.3 for vscode_version 1.100, each answering /healthz', async () => {
    // One after the other, so each start is timed on its own (2 cores).
    for (const [vscode, want] of [
      [undefined, CURRENT],
      ['1.100', OLDER],
    ] as const) {
      const res = await stack.api('/api/instances/simple', json({ user_id: user, base_image: 'debian:bookworm', vscode_version: vscode }));
      expect(res.status).toBe(202);
      const inst = (await res.json()) as InstanceResponse;
      expect(inst.vscode_version).toBe(want.vscode_version);
      const running = await waitForStatus(stack, inst.instance_id, ['Running'], 240_000);
      expect(running.error).toBeNull();
      // The editor answers through the gateway, on the instance's own origin.
      const health = await editorRequest(`${running.editor_url}healthz`, { headers: { cookie: `codebay_tkn=${running.access_token}` }, timeoutMs: 5_000 });
      expect(health.status).toBe(200);
      expect(await mountedBundle(inst.instance_id)).toBe(join(c.editorRoot, `code-server-${want.code_server_version}`));
      // Started through codebay's own parent process (code-server-parent.mjs), not code-server's
      // fallback: that parent warms the editor up once it listens (a line of its own, soon after).
      const log = await waitFor(
        `the warm-up line of ${want.code_server_version}`,
        async () => {
          const text = await containerLog(inst.instance_id);
          return /editor warmed up \(GET \/ answered 302 -> 200/.test(text) ? text : undefined;
        },
        30_000,
      );
      expect(log).not.toContain('with its own parent process');
      // code-server itself says which release runs, and the launcher which bundle it found.
      expect(log).toMatch(new RegExp(`code-server ${want.code_server_version.replace(/\./g, '\\.')} [0-9a-f]{7,}`));
      expect(log).toContain(`editor bundle: code-server ${want.code_server_version}, VS Code ${want.vscode_version}`);
      const t = (await getInstance(stack, inst.instance_id)).timings;
      const at = (re: RegExp) => log.match(re)?.[1];
      console.log(
        `code-server ${want.code_server_version}: create -> Running ${secondsBetween(t.queued_at, t.running_at)} s; ` +
          `in the container, launcher start -> /healthz 200 ${secondsBetween(at(/\[codebay-launcher\] (\S+) starting \(node/), at(/\[codebay-launcher\] (\S+) editor is healthy/))} s, ` +
          `code-server start -> /healthz 200 ${secondsBetween(at(/\[codebay-launcher\] (\S+) starting code-server on/), at(/\[codebay-launcher\] (\S+) editor is healthy/))} s, ` +
          `-> warmed up ${secondsBetween(at(/\[codebay-launcher\] (\S+) starting code-server on/), at(/\[codebay-launcher\] (\S+) editor warmed up/))} s`,
      );
    }
  }, 600_000);

  it('code-server 4.139.1 ignores a CODE_SERVER_COOKIE_SUFFIX in the container environment (it would rename the cookie the gateway adds)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codebay-editors-'));
    try {
      const file = join(dir, 'devcontainer.json');
      writeFileSync(file, JSON.stringify({ image: 'debian:bookworm', containerEnv: { CODE_SERVER_COOKIE_SUFFIX: 'mine', CODEBAY_RUN: salt() } }));
      const inst = await createFromDevcontainer(stack, user, file);
      const running = await waitForStatus(stack, inst.instance_id, ['Running'], 240_000);
      expect(running.vscode_version).toBe(CURRENT.vscode_version);
      // Through the gateway with the instance's cookie: the editor's own start redirect, not its login page.
      const page = await editorRequest(running.editor_url, { headers: { cookie: `codebay_tkn=${running.access_token}` }, timeoutMs: 10_000 });
      expect(page.status).toBe(302);
      expect(String(page.headers.location)).not.toMatch(/login/);
      const workbench = await editorRequest(new URL(String(page.headers.location), running.editor_url).href, {
        headers: { cookie: `codebay_tkn=${running.access_token}` },
        timeoutMs: 30_000,
      });
      expect(workbench.status).toBe(200);
      expect(workbench.body).toMatch(/workbench/);
      expect(await containerLog(inst.instance_id)).toContain('not passed to code-server (codebay sets what they would change): CODE_SERVER_COOKIE_SUFFIX');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('an extension that needs VS Code ^1.120 installs with the default editor and is refused by 1.100 (why 4.139.1 is the default)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codebay-editors-vsix-'));
    try {
      const vsix = join(dir, 'codebay-test.modern-0.0.1.vsix');
      makeVsix(vsix, { publisher: 'codebay-test', name: 'modern', version: '0.0.1' }, '^1.120.0');
      // As the launcher installs extensions: the bundle's node running code-server's CLI.
      const install = async (v: typeof CURRENT) => {
        const bundle = join(c.editorRoot, `code-server-${v.code_server_version}`);
        const home = join(dir, v.code_server_version);
        const r = await run(
          join(bundle, 'bin/node'),
          [
            join(bundle, 'node_modules/code-server/out/node/entry.js'),
            '--install-extension',
            vsix,
            '--extensions-dir',
            join(home, 'extensions'),
            '--user-data-dir',
            join(home, 'data'),
          ],
          { env: { PATH: process.env.PATH, HOME: home }, timeout: 120_000 },
        ).then(
          ({ stdout, stderr }) => ({ code: 0, out: stdout + stderr }),
          (err: { code?: number; stdout?: string; stderr?: string }) => ({ code: err.code ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` }),
        );
        return { ...r, installed: existsSync(join(home, 'extensions', 'codebay-test.modern-0.0.1', 'package.json')) };
      };
      const current = await install(CURRENT);
      expect(current.installed, current.out).toBe(true);
      const older = await install(OLDER);
      expect(older.installed).toBe(false);
      expect(older.out).toMatch(/not compatible with VS Code '1\.100\.3'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);

  it('the bundle metadata matches what the API lists', () => {
    for (const v of [CURRENT, OLDER]) {
      const meta = JSON.parse(readFileSync(join(c.editorRoot, `code-server-${v.code_server_version}`, 'bundle.json'), 'utf8')) as Record<string, string>;
      expect({ vscode_version: meta.vscode, code_server_version: meta.codeServer }).toEqual(v);
    }
  });
});
