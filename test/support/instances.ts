import type { InstanceResponse } from '@codebay/contracts';
import { c as tarCreate } from 'tar';
import { parseDevcontainerJson } from '@codebay/devcontainer';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stack } from './stack.ts';

/** Whatever answers codebay's API: a local test stack or a deployment on the real node. */
export type ApiTarget = Pick<Stack, 'api'>;
import { waitFor } from './wait.ts';

/** Packs a folder the way the seed's docs say: `tar -czf ws.tgz -C DIR .` */
export async function packWorkspace(dir: string): Promise<string> {
  const out = join(await mkdtemp(join(tmpdir(), 'codebay-ws-')), 'workspace.tar.gz');
  await tarCreate({ gzip: true, file: out, cwd: dir, portable: true }, ['.']);
  return out;
}

/** The config text given one more containerEnv entry of its own: a build key and layer family no run has made. */
function withOwnEnvEntry(text: string, name: string): string {
  const config = parseDevcontainerJson(text);
  config.containerEnv = { ...(config.containerEnv as Record<string, string> | undefined), [name]: randomBytes(6).toString('hex') };
  return JSON.stringify(config, null, 2);
}

/**
 * A copy of a devcontainer.json whose build key no earlier run has made (one more
 * containerEnv entry): the build really runs instead of coming from the registry.
 */
export async function uniqueDevcontainer(file: string): Promise<string> {
  const out = join(await mkdtemp(join(tmpdir(), 'codebay-dc-')), 'devcontainer.json');
  await writeFile(out, withOwnEnvEntry(await readFile(file, 'utf8'), 'CODEBAY_TEST_RUN'));
  return out;
}

/**
 * A copy of a workspace folder whose `.devcontainer/devcontainer.json` has one more
 * containerEnv entry: a new build key and a new layer family (nothing to reuse from the registry).
 */
export function newConfigWorkspace(dir: string, name = 'CODEBAY_BENCH_RUN'): string {
  const out = mkdtempSync(join(tmpdir(), 'codebay-ws-'));
  cpSync(dir, out, { recursive: true });
  const file = join(out, '.devcontainer', 'devcontainer.json');
  writeFileSync(file, withOwnEnvEntry(readFileSync(file, 'utf8'), name));
  return out;
}

/**
 * A copy of a workspace folder whose build key no earlier run has made: a file of its
 * own at the root and in .devcontainer/, inside any build context. The config (and so its
 * layer-cache family) stays the same.
 */
export async function uniqueWorkspace(dir: string): Promise<string> {
  const out = await mkdtemp(join(tmpdir(), 'codebay-wscopy-'));
  await cp(dir, out, { recursive: true });
  const salt = randomBytes(6).toString('hex');
  await writeFile(join(out, '.codebay-test-run'), salt);
  await writeFile(join(out, '.devcontainer', '.codebay-test-run'), salt);
  return out;
}

export async function fileBlob(path: string, type = 'application/octet-stream'): Promise<Blob> {
  return new Blob([await readFile(path)], { type });
}

export async function createFromDevcontainer(stack: ApiTarget, userId: string, file: string): Promise<InstanceResponse> {
  const form = new FormData();
  form.set('user_id', userId);
  form.set('devcontainer_json', await fileBlob(file, 'application/json'), 'devcontainer.json');
  const res = await stack.api('/api/instances/devcontainer', { method: 'POST', body: form });
  if (res.status !== 202) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as InstanceResponse;
}

export async function createFromWorkspace(stack: ApiTarget, userId: string, tarball: string): Promise<InstanceResponse> {
  const form = new FormData();
  form.set('user_id', userId);
  form.set('workspace', await fileBlob(tarball, 'application/gzip'), 'workspace.tar.gz');
  const res = await stack.api('/api/instances/workspace', { method: 'POST', body: form });
  if (res.status !== 202) throw new Error(`create failed: ${res.status} ${await res.text()}`);
  return (await res.json()) as InstanceResponse;
}

export async function getInstance(stack: ApiTarget, id: string): Promise<InstanceResponse> {
  const res = await stack.api(`/api/instances/${id}`);
  if (res.status !== 200) throw new Error(`get ${id}: ${res.status} ${await res.text()}`);
  return (await res.json()) as InstanceResponse;
}

/** Waits for one of `statuses`; fails at once if the instance fails instead. */
export async function waitForStatus(stack: ApiTarget, id: string, statuses: string[], timeoutMs: number): Promise<InstanceResponse> {
  return waitFor(
    `${id} to be ${statuses.join('|')}`,
    async () => {
      const inst = await getInstance(stack, id);
      if (statuses.includes(inst.status)) return inst;
      if (inst.status === 'Failed' && !statuses.includes('Failed')) throw Object.assign(new Error(`${id} failed: ${inst.error}`), { fatal: true });
      return undefined;
    },
    timeoutMs,
    500,
  );
}

/**
 * Waits until the instance's lifecycle (as the API reports it) satisfies `done` — by default,
 * until every command of its start ran (`ended`): postCreate and postStart run with the editor up.
 */
export async function waitForLifecycle(
  stack: ApiTarget,
  id: string,
  timeoutMs: number,
  done: (l: NonNullable<InstanceResponse['lifecycle']>) => boolean = (l) => l.ended,
): Promise<InstanceResponse> {
  return waitFor(
    `${id}'s lifecycle commands`,
    async () => {
      const inst = await getInstance(stack, id);
      return inst.lifecycle && done(inst.lifecycle) ? inst : undefined;
    },
    timeoutMs,
    250,
  );
}
