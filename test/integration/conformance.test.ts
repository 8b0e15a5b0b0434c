// devcontainer.json as people write it, through the whole system on the Docker runtime (real
// gateway, builder, provisioner, Redis, dockerd, registry, Dev Containers CLI, code-server):
// properties codebay does not apply become warnings on the instance and in its build log, what
// an instance cannot run without is refused, and the lifecycle commands follow the spec
// (waitFor, failures recorded, later commands skipped, the instance's own log readable).
// The rows of docs/conformance.md name these tests.
import type { InstanceResponse } from '@codebay/contracts';
import { dockerFromHost } from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { execIn } from '../support/docker.ts';
import { createFromDevcontainer, getInstance, waitForStatus } from '../support/instances.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';

let stack: Stack;
const docker = () => dockerFromHost(components().dockerHost);
const user = `conf-${randomBytes(3).toString('hex')}`;

/** A devcontainer.json of its own for the test (a containerEnv entry of its own: a build nobody made before). */
async function config(body: Record<string, unknown>): Promise<string> {
  const file = join(await mkdtemp(join(tmpdir(), 'codebay-conf-')), 'devcontainer.json');
  await writeFile(file, JSON.stringify({ image: 'debian:bookworm', containerEnv: { CODEBAY_TEST_RUN: randomBytes(6).toString('hex') }, ...body }, null, 2));
  return file;
}

async function buildLog(id: string): Promise<string> {
  return ((await (await stack.api(`/api/instances/${id}/build-logs`)).json()) as { logs: string }).logs;
}

async function instanceLog(id: string): Promise<{ logs: string; finished: { outcome: string; reason: string | null } | null }> {
  const res = await stack.api(`/api/instances/${id}/logs`);
  expect(res.status).toBe(200);
  return (await res.json()) as { logs: string; finished: { outcome: string; reason: string | null } | null };
}

/** Waits until the instance's lifecycle satisfies `done` (read from the API). */
function lifecycleWhen(id: string, what: string, done: (l: NonNullable<InstanceResponse['lifecycle']>) => boolean, timeoutMs = 60_000) {
  return waitFor(
    what,
    async () => {
      const i = await getInstance(stack, id);
      return i.lifecycle && done(i.lifecycle) ? i : undefined;
    },
    timeoutMs,
    250,
  );
}

beforeAll(async () => {
  // A short readiness limit: the test of an editor that waits for a command that never ends fails in 45 s, not 180.
  stack = await startStack({ name: 'conformance', env: { READY_TIMEOUT_SECONDS: '45' } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('devcontainer.json conformance (Docker runtime)', () => {
  it('says on the instance and in its build log which properties it does not apply', async () => {
    const file = await config({
      runArgs: ['--cap-add=SYS_PTRACE'],
      mounts: ['source=cache,target=/cache,type=volume'],
      forwardPorts: [3000],
      appPort: 8000,
      capAdd: ['SYS_PTRACE'],
      securityOpt: ['seccomp=unconfined'],
      initializeCommand: 'echo on the host',
      workspaceFolder: '/src/app',
      workspaceMount: 'source=${localWorkspaceFolder},target=/src/app,type=bind',
      shutdownAction: 'none',
      hostRequirements: { cpus: 2 },
      customizations: { codespaces: { openFiles: ['README.md'] }, vscode: { extensions: ['-ms-python.python'] } },
    });
    const created = await createFromDevcontainer(stack, user, file);
    const expected = [
      'runArgs',
      'mounts',
      'forwardPorts',
      'appPort',
      'capAdd',
      'securityOpt',
      'initializeCommand',
      'workspaceFolder',
      'workspaceMount',
      'shutdownAction',
      'hostRequirements',
      'customizations.codespaces',
    ];
    // At once, while it is queued: the properties are named, each with what codebay does instead.
    expect(created.warnings.map((w) => w.property).sort()).toEqual([...expected].sort());
    expect(created.warnings.find((w) => w.property === 'runArgs')?.message).toMatch(/^runArgs: not passed/);
    const running = await waitForStatus(stack, created.instance_id, ['Running'], 180_000);
    expect(running.warnings.map((w) => w.property).sort()).toEqual([...expected].sort());
    const log = await buildLog(created.instance_id);
    for (const property of expected) expect(log).toContain(`codebay: warning: ${property}:`);
  }, 240_000);

  it('refuses privileged: true with a 422 naming it, and makes nothing', async () => {
    const before = ((await (await stack.api(`/api/instances?user_id=${user}`)).json()) as { instances: unknown[] }).instances.length;
    const form = new FormData();
    form.set('user_id', user);
    form.set('devcontainer_json', new Blob([JSON.stringify({ image: 'debian:bookworm', privileged: true })]), 'devcontainer.json');
    const res = await stack.api('/api/instances/devcontainer', { method: 'POST', body: form });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('unsupported_devcontainer');
    expect(body.error.message).toMatch(/privileged: instances never run privileged/);
    const after = ((await (await stack.api(`/api/instances?user_id=${user}`)).json()) as { instances: unknown[] }).instances.length;
    expect(after).toBe(before);
  });

  it('waitFor: Running while postCreateCommand still runs; its output and states readable through the API', async () => {
    const file = await config({
      onCreateCommand: 'echo on-create-ran',
      // Holds until the test lets it go: a long `npm install`, in effect.
      postCreateCommand: 'echo post-create-started; while [ ! -f /workspace/.go ]; do sleep 0.2; done; echo post-create-finished',
      postStartCommand: ['sh', '-c', 'echo post-start-ran'],
    });
    const created = await createFromDevcontainer(stack, user, file);
    const running = await waitForStatus(stack, created.instance_id, ['Running'], 180_000);
    const id = running.instance_id;
    // The editor answered before postCreate ended (the spec's default waitFor: updateContentCommand).
    const during = await lifecycleWhen(id, 'postCreate to be running', (l) => l.commands.postCreateCommand?.state === 'running');
    expect(during.status).toBe('Running');
    expect(during.lifecycle).toMatchObject({ wait_for: 'updateContentCommand', ended: false, ok: true });
    expect(during.lifecycle!.commands.onCreateCommand?.state).toBe('succeeded');
    expect(during.lifecycle!.commands.postStartCommand).toBeUndefined();

    const container = `${stack.names.container(id)}`;
    await execIn(docker(), container, ['touch', '/workspace/.go']);
    const ended = await lifecycleWhen(id, 'the lifecycle to end', (l) => l.ended);
    expect(ended.lifecycle).toMatchObject({ ended: true, ok: true });
    expect(ended.lifecycle!.commands.postCreateCommand).toMatchObject({ state: 'succeeded', exit_code: null });
    expect(ended.lifecycle!.commands.postStartCommand?.state).toBe('succeeded');
    expect(ended.warnings).toEqual([]);
    // The instance's own log: the commands' output, in order.
    const { logs } = await waitFor(
      'the log to hold post-start',
      async () => ((await instanceLog(id)).logs.includes('post-start-ran') ? instanceLog(id) : undefined),
      30_000,
    );
    const order = ['[onCreate] on-create-ran', '[postCreate] post-create-started', '[postCreate] post-create-finished', '[postStart] post-start-ran'].map((l) =>
      logs.indexOf(l),
    );
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  }, 240_000);

  it('a failing postCreateCommand: recorded on the instance with its exit code and last lines, postStartCommand skipped', async () => {
    const file = await config({
      postCreateCommand: 'echo "npm ERR! missing script: setup" >&2; exit 3',
      postStartCommand: 'echo this-must-not-run',
    });
    const created = await createFromDevcontainer(stack, user, file);
    const running = await waitForStatus(stack, created.instance_id, ['Running'], 180_000);
    const id = running.instance_id;
    const ended = await lifecycleWhen(id, 'the lifecycle to end', (l) => l.ended);
    expect(ended.status).toBe('Running');
    expect(ended.error).toBeNull();
    expect(ended.lifecycle).toMatchObject({ ended: true, ok: false });
    expect(ended.lifecycle!.commands.postCreateCommand).toMatchObject({ state: 'failed', exit_code: 3 });
    expect(ended.lifecycle!.commands.postStartCommand?.state).toBe('skipped');
    const warning = ended.warnings.find((w) => w.property === 'postCreateCommand');
    expect(warning?.message).toMatch(/^postCreateCommand failed with exit code 3 after [\d.]+ s .*the lifecycle commands after it were skipped/);
    expect(warning?.message).toContain('npm ERR! missing script: setup');
    expect(warning?.message).toContain(`GET /api/instances/${id}/logs`);
    const { logs } = await instanceLog(id);
    expect(logs).toContain('[postCreate] npm ERR! missing script: setup');
    expect(logs).not.toContain('[postStart] this-must-not-run');
  }, 240_000);

  it('an editor that waits for a postStartCommand that never ends fails naming it; its log stays readable', async () => {
    const file = await config({ waitFor: 'postStartCommand', postStartCommand: 'echo serving in the foreground; while true; do sleep 1; done' });
    const created = await createFromDevcontainer(stack, user, file);
    const failed = await waitForStatus(stack, created.instance_id, ['Failed'], 240_000);
    expect(failed.phase).toBe('provision');
    expect(failed.error).toMatch(
      /^the editor waits for postStartCommand \(waitFor\), and postStartCommand was still running: the editor did not answer within 45 s/,
    );
    const log = await instanceLog(created.instance_id);
    expect(log.logs).toContain('[postStart] serving in the foreground');
    expect(log.finished?.outcome).toBe('failure');
  }, 300_000);

  it('accepts the extension opt-out form -publisher.name', async () => {
    const file = await config({ customizations: { vscode: { extensions: ['-ms-python.python', 'dbaeumer.vscode-eslint'] } } });
    const created = await createFromDevcontainer(stack, user, file);
    expect(created.status).toMatch(/Queued|Cached/);
    await stack.api(`/api/instances/${created.instance_id}`, { method: 'DELETE' });
  });

  it('a remoteUser the image does not have fails the instance naming it', async () => {
    const file = await config({ remoteUser: 'devuser-that-is-not-there' });
    const created = await createFromDevcontainer(stack, user, file);
    const failed = await waitForStatus(stack, created.instance_id, ['Failed'], 240_000);
    expect(failed.error).toMatch(/remoteUser "devuser-that-is-not-there" does not exist in the image/);
  }, 300_000);
});
