// devcontainer.json as people write it, through the whole system on the Docker runtime (real
// gateway, builder, provisioner, Redis, dockerd, registry, Dev Containers CLI, code-server):
// properties codebay does not apply become warnings on the instance and in its build log, what
// an instance cannot run without is refused, hostRequirements become the instance's minimums
// (the container's real cgroup settings), and the lifecycle commands follow the spec
// (waitFor, failures recorded, later commands skipped, the instance's own log readable).
// The rows of docs/conformance.md name these tests.
import type { InstanceResponse } from '@codebay/contracts';
import { dockerFromHost } from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { execIn } from '../support/docker.ts';
import { createFromDevcontainer, createFromWorkspace, getInstance, waitForStatus } from '../support/instances.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { portAppCommand } from '../support/port-app.ts';
import { salt, uniqueConfigFile, workspaceTarball } from '../support/workspaces.ts';
import { editorRequest, editorUpgrade } from '../support/editor.ts';

let stack: Stack;
const docker = () => dockerFromHost(components().dockerHost);
const user = `conf-${randomBytes(3).toString('hex')}`;

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
  // The operator's maxima the hostRequirements tests name (the gateway's defaults, said here).
  // One user makes an instance per row here: more than the default per-user limit (10), which is not what this file tests.
  stack = await startStack({
    name: 'conformance',
    env: { READY_TIMEOUT_SECONDS: '45', MAX_CPU_LIMIT: '4000m', MAX_MEMORY_LIMIT: '8Gi', MAX_INSTANCES_PER_USER: '50' },
  });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

describe('devcontainer.json conformance (Docker runtime)', () => {
  it('says on the instance and in its build log which properties it does not apply', async () => {
    const file = uniqueConfigFile({
      runArgs: ['--cap-add=SYS_PTRACE'],
      mounts: ['source=cache,target=/cache,type=volume'],
      forwardPorts: ['db:5432'],
      appPort: 8000,
      capAdd: ['SYS_PTRACE'],
      securityOpt: ['seccomp=unconfined'],
      initializeCommand: 'echo on the host',
      shutdownAction: 'none',
      hostRequirements: { gpu: 'optional' },
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
      'shutdownAction',
      'hostRequirements.gpu',
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

  it('applies hostRequirements {cpus: 2, memory: "1gb"} as the instance’s minimums: the API shows the raised requests, the container has them', async () => {
    const file = uniqueConfigFile({ hostRequirements: { cpus: 2, memory: '1gb' } });
    const created = await createFromDevcontainer(stack, user, file);
    // cpus 2 → cpu_request 2 (the default limit 1000m raised with it); memory 1gb = 2^30 bytes (the
    // reference CLI's unit) → memory_request 1Gi, the default limit 2Gi already above it.
    const raised = { cpu_request: '2', cpu_limit: '2', memory_request: '1Gi', memory_limit: '2Gi', storage_size: '2Gi', shared_storage_size: '5Gi' };
    expect(created.resources).toEqual(raised);
    expect(created.warnings).toEqual([]);
    const running = await waitForStatus(stack, created.instance_id, ['Running'], 180_000);
    expect(running.resources).toEqual(raised);
    const { HostConfig } = await docker().getContainer(stack.names.container(running.instance_id)).inspect();
    expect(HostConfig.NanoCpus).toBe(2e9);
    expect(HostConfig.CpuShares).toBe(2048);
    expect(HostConfig.MemoryReservation).toBe(2 ** 30);
    expect(HostConfig.Memory).toBe(2 * 2 ** 30);
  }, 240_000);

  it.each([
    {
      what: 'cpus above MAX_CPU_LIMIT',
      hostRequirements: { cpus: 64 },
      code: 'unsupported_devcontainer',
      message: 'devcontainer.json: hostRequirements.cpus: asks for 64 cores, and this deployment gives an instance at most 4000m of cpu',
    },
    {
      what: 'memory above MAX_MEMORY_LIMIT',
      hostRequirements: { memory: '64gb' },
      code: 'unsupported_devcontainer',
      message: 'devcontainer.json: hostRequirements.memory: asks for 64Gi, and this deployment gives an instance at most 8Gi of memory',
    },
    {
      what: 'gpu: true',
      hostRequirements: { gpu: true },
      code: 'unsupported_devcontainer',
      message: /^devcontainer\.json: hostRequirements\.gpu: a GPU is required, and codebay offers none/,
    },
    {
      what: 'a cpu_request given below cpus',
      hostRequirements: { cpus: 2 },
      fields: { cpu_request: '500m' },
      code: 'below_host_requirements',
      message: 'devcontainer.json: cpu_request 500m is below hostRequirements.cpus (2 cores), the instance’s minimum',
    },
  ])('hostRequirements: $what → 422 naming it, and nothing made', async ({ hostRequirements, fields, code, message }) => {
    const count = async () => ((await (await stack.api(`/api/instances?user_id=${user}`)).json()) as { instances: unknown[] }).instances.length;
    const before = await count();
    const form = new FormData();
    form.set('user_id', user);
    for (const [k, v] of Object.entries(fields ?? {})) form.set(k, v);
    form.set('devcontainer_json', new Blob([JSON.stringify({ image: 'debian:bookworm', hostRequirements })]), 'devcontainer.json');
    const res = await stack.api('/api/instances/devcontainer', { method: 'POST', body: form });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe(code);
    if (typeof message === 'string') expect(body.error.message).toBe(message);
    else expect(body.error.message).toMatch(message);
    expect(await count()).toBe(before);
  });

  it('waitFor: Running while postCreateCommand still runs; its output and states readable through the API', async () => {
    const file = uniqueConfigFile({
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
    const file = uniqueConfigFile({
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
    const file = uniqueConfigFile({ waitFor: 'postStartCommand', postStartCommand: 'echo serving in the foreground; while true; do sleep 1; done' });
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

  it('gives each variable form one value in the container’s environment, the lifecycle commands and the editor’s environment', async () => {
    const file = uniqueConfigFile({
      containerEnv: {
        V_CWF: '${containerWorkspaceFolder}',
        V_CWFB: '${containerWorkspaceFolderBasename}',
        V_LWF: '${localWorkspaceFolder}',
        V_LWFB: '${localWorkspaceFolderBasename}',
        V_ID: '${devcontainerId}',
      },
      remoteEnv: { R_FROM_CONTAINER: '${containerEnv:V_CWF}/bin' },
      postCreateCommand:
        'env | grep -E "^(V|R)_" | sort > /workspace/.env-of-postcreate; echo "${containerWorkspaceFolder} ${devcontainerId}" > /workspace/.subst',
    });
    const created = await createFromDevcontainer(stack, user, file);
    const id = created.instance_id;
    await waitForStatus(stack, id, ['Running'], 180_000);
    await lifecycleWhen(id, 'the lifecycle to end', (l) => l.ended);
    const container = stack.names.container(id);
    const expected = {
      V_CWF: '/workspace',
      V_CWFB: 'workspace',
      V_LWF: '/workspace',
      V_LWFB: 'workspace',
      V_ID: id,
    };
    // The container's own environment (docker exec, as a user's tool sees it).
    const own = (await execIn(docker(), container, ['env'])).stdout;
    const vars = (text: string) =>
      Object.fromEntries(
        text
          .split('\n')
          .filter((l) => /^(V|R)_/.test(l))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
    expect(vars(own)).toEqual(expected);
    // The lifecycle commands' environment, and variables in the command itself.
    const ofPostCreate = (await execIn(docker(), container, ['cat', '/workspace/.env-of-postcreate'])).stdout;
    expect(vars(ofPostCreate)).toEqual({ ...expected, R_FROM_CONTAINER: '/workspace/bin' });
    expect((await execIn(docker(), container, ['cat', '/workspace/.subst'])).stdout.trim()).toBe(`/workspace ${id}`);
    // The editor's environment: code-server's process.
    const editorEnv = await execIn(docker(), container, [
      'sh',
      '-c',
      'for p in /proc/[0-9]*; do if grep -q code-server "$p/cmdline" 2>/dev/null; then tr "\\0" "\\n" < "$p/environ"; break; fi; done',
    ]);
    expect(vars(editorEnv.stdout)).toEqual({ ...expected, R_FROM_CONTAINER: '/workspace/bin' });
  }, 240_000);

  it('honours workspaceMount and workspaceFolder within the instance’s own volume', async () => {
    const tarball = await workspaceTarball({
      config: {
        image: 'debian:bookworm',
        containerEnv: { CODEBAY_TEST_RUN: randomBytes(6).toString('hex') },
        workspaceMount: 'source=${localWorkspaceFolder},target=/src/app,type=bind,consistency=cached',
        workspaceFolder: '/src/app/web',
        postCreateCommand: 'pwd > /src/app/.placed; echo "${containerWorkspaceFolder} ${localWorkspaceFolder} $V_CWF" >> /src/app/.placed',
        remoteEnv: { V_CWF: '${containerWorkspaceFolder}' },
      },
    });
    const created = await createFromWorkspace(stack, user, tarball);
    expect(created.workspace_folder).toBe('/src/app/web');
    expect(created.warnings).toEqual([]);
    const id = created.instance_id;
    await waitForStatus(stack, id, ['Running'], 180_000);
    await lifecycleWhen(id, 'the lifecycle to end', (l) => l.ended);
    const container = stack.names.container(id);
    const info = await docker().getContainer(container).inspect();
    // The instance's own volume at the target, nothing at /workspace; the container starts in the folder.
    const workspaceVolume = stack.names.workspaceVolume(id);
    expect(info.Mounts.find((m) => m.Name === workspaceVolume)?.Destination).toBe('/src/app');
    expect(info.Mounts.some((m) => m.Destination === '/workspace')).toBe(false);
    expect(info.Config.WorkingDir).toBe('/src/app/web');
    // The upload unpacked there; the lifecycle commands ran in the folder with its variables.
    expect((await execIn(docker(), container, ['cat', '/src/app/.devcontainer/devcontainer.json'])).stdout).toContain('/src/app/web');
    expect((await execIn(docker(), container, ['cat', '/src/app/.placed'])).stdout).toBe('/src/app/web\n/src/app/web /src/app /src/app/web\n');
    // The editor opens the folder.
    const editor = await execIn(docker(), container, [
      'sh',
      '-c',
      'for p in /proc/[0-9]*; do if grep -q code-server "$p/cmdline" 2>/dev/null; then tr "\\0" " " < "$p/cmdline"; echo; fi; done',
    ]);
    expect(editor.stdout).toMatch(/ \/src\/app\/web( |$)/m);
    const { logs } = await instanceLog(id);
    expect(logs).toContain('starting code-server');
    expect(logs).toMatch(/for \/src\/app\/web/);
  }, 240_000);

  it('refuses a workspaceMount target over what the instance needs (/etc) with a 422 naming it, and makes nothing', async () => {
    const list = async () => ((await (await stack.api(`/api/instances?user_id=${user}`)).json()) as { instances: unknown[] }).instances.length;
    const before = await list();
    const form = new FormData();
    form.set('user_id', user);
    form.set(
      'devcontainer_json',
      new Blob([JSON.stringify({ image: 'debian:bookworm', workspaceMount: 'source=${localWorkspaceFolder},target=/etc,type=bind' })]),
      'devcontainer.json',
    );
    const res = await stack.api('/api/instances/devcontainer', { method: 'POST', body: form });
    expect(res.status).toBe(422);
    const body = (await res.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('unsupported_devcontainer');
    expect(body.error.message).toMatch(/workspaceMount: the target \/etc: \/etc is the system's or codebay's own/);
    expect(await list()).toBe(before);
  });

  it('forwardPorts: each port at its own origin, guarded by the instance’s token, WebSockets too; any other port on request', async () => {
    // A web server in the foreground of postStartCommand (the editor does not wait for it), on 3000 and 4000.
    const file = uniqueConfigFile({
      forwardPorts: [3000],
      portsAttributes: { '3000': { label: 'Web app' } },
      postStartCommand: portAppCommand([3000, 4000]),
    });
    const created = await createFromDevcontainer(stack, user, file);
    const id = created.instance_id;
    expect(created.warnings).toEqual([]);
    expect(created.ports).toEqual([
      {
        port: 3000,
        label: 'Web app',
        origin: expect.stringMatching(new RegExp(`^http://${id}-3000\\.localhost:\\d+/$`)),
        url: `${created.ports[0]!.origin}?tkn=${encodeURIComponent(created.access_token)}`,
      },
    ]);
    await waitForStatus(stack, id, ['Running'], 180_000);
    const { origin, url } = created.ports[0]!;
    // The token, exchanged for a cookie of the port's own origin.
    const opened = await editorRequest(url);
    expect(opened.status).toBe(302);
    const cookie = (opened.headers['set-cookie'] ?? []).map((c) => c.split(';', 1)[0]!).find((c) => c.startsWith('codebay_tkn='));
    expect(cookie).toBe(`codebay_tkn=${created.access_token}`);
    const answer = await waitFor(
      'the application on port 3000 to answer through the gateway',
      async () => {
        const r = await editorRequest(`${origin}hello?x=1`, { headers: { cookie: cookie! } });
        return r.status === 200 ? r : undefined;
      },
      60_000,
      250,
    );
    expect(answer.body).toBe('app-3000 GET /hello?x=1');
    // Refused without the token, with another token, and across origins (the editor's pages cannot drive the port, nor the reverse).
    expect((await editorRequest(`${origin}hello`)).status).toBe(401);
    expect((await editorRequest(`${origin}hello`, { headers: { cookie: 'codebay_tkn=not-the-token' } })).status).toBe(401);
    const editorOriginUrl = created.editor_url.replace(/\/$/, '');
    expect((await editorRequest(`${origin}form`, { method: 'POST', headers: { cookie: cookie!, origin: editorOriginUrl } })).status).toBe(403);
    expect((await editorRequest(`${origin}form`, { method: 'POST', headers: { cookie: cookie!, origin: origin.replace(/\/$/, '') } })).body).toBe(
      'app-3000 POST /form',
    );
    // WebSockets: accepted from the port's own origin, refused from the editor's.
    expect(await editorUpgrade(`${origin}socket`, { cookie: cookie!, origin: origin.replace(/\/$/, '') })).toBe(101);
    expect(await editorUpgrade(`${origin}socket`, { cookie: cookie!, origin: editorOriginUrl })).toBe(403);
    // A port not in forwardPorts: reachable the same way, on request.
    const other = origin.replace(`${id}-3000.`, `${id}-4000.`);
    expect((await editorRequest(`${other}x`, { headers: { cookie: cookie! } })).body).toBe('app-4000 GET /x');
    expect((await editorRequest(`${other}x`)).status).toBe(401);
  }, 240_000);

  // Feature install order: two local features that each append their name to a file; left to
  // itself the reference CLI installs them as listed (a, b). Each property reverses that.
  const ordered = async (config: Record<string, unknown>, features: Record<string, Record<string, unknown>>) => {
    const run = salt();
    const tarball = await workspaceTarball({
      config: { image: 'debian:bookworm', containerEnv: { CODEBAY_TEST_RUN: run }, ...config },
      features: Object.fromEntries(
        Object.entries(features).map(([name, metadata]) => [name, { install: `echo ${name} >> /opt/feature-order-${run}`, metadata }]),
      ),
    });
    const created = await createFromWorkspace(stack, user, tarball);
    await waitForStatus(stack, created.instance_id, ['Running'], 240_000);
    return (await execIn(docker(), stack.names.container(created.instance_id), ['cat', `/opt/feature-order-${run}`])).stdout.trim().split('\n');
  };

  it('overrideFeatureInstallOrder: the features are installed in the order it gives', async () => {
    expect(await ordered({ features: { './a': {}, './b': {} } }, { a: {}, b: {} })).toEqual(['a', 'b']);
    expect(await ordered({ features: { './a': {}, './b': {} }, overrideFeatureInstallOrder: ['./b', './a'] }, { a: {}, b: {} })).toEqual(['b', 'a']);
  }, 480_000);

  it('installsAfter: a feature that names another is installed after it', async () => {
    expect(await ordered({ features: { './a': {}, './b': {} } }, { a: { installsAfter: ['./b'] }, b: {} })).toEqual(['b', 'a']);
  }, 240_000);

  it('dependsOn: a feature’s dependency is installed first, though the config does not list it', async () => {
    expect(await ordered({ features: { './a': {} } }, { a: { dependsOn: { './b': {} } }, b: {} })).toEqual(['b', 'a']);
  }, 240_000);

  it('accepts the extension opt-out form -publisher.name', async () => {
    const file = uniqueConfigFile({ customizations: { vscode: { extensions: ['-ms-python.python', 'dbaeumer.vscode-eslint'] } } });
    const created = await createFromDevcontainer(stack, user, file);
    expect(created.status).toMatch(/Queued|Cached/);
    await stack.api(`/api/instances/${created.instance_id}`, { method: 'DELETE' });
  });

  it('accepts a devcontainer.json saved with a byte-order mark, CRLF line endings and comments', async () => {
    const text = `\uFEFF// saved on Windows\r\n{\r\n  "image": "debian:bookworm", /* the base */\r\n  "containerEnv": { "RUN": "${randomBytes(4).toString('hex')}" },\r\n}\r\n`;
    const form = new FormData();
    form.set('user_id', user);
    form.set('devcontainer_json', new Blob([text]), 'devcontainer.json');
    const res = await stack.api('/api/instances/devcontainer', { method: 'POST', body: form });
    expect(res.status).toBe(202);
    const created = (await res.json()) as InstanceResponse;
    expect((await waitForStatus(stack, created.instance_id, ['Running'], 180_000)).status).toBe('Running');
  }, 240_000);

  it('build.target: only the stages the target needs are built (a failing stage after it, and one it does not use, are not)', async () => {
    const run = randomBytes(6).toString('hex');
    const tarball = await workspaceTarball({
      config: { build: { dockerfile: 'Dockerfile', target: 'dev', args: { GREETING: `hello-${run}` } }, features: { './marker': {} } },
      dockerfile: [
        'FROM debian:bookworm AS unused',
        'RUN echo unused-stage-ran && exit 9',
        'FROM debian:bookworm AS base',
        'ARG GREETING',
        'RUN echo "$GREETING" > /opt/greeting',
        'FROM base AS dev',
        `RUN echo dev-${run} > /opt/stage`,
        'FROM dev AS prod',
        'RUN echo prod-stage-ran && exit 8',
        '',
      ].join('\n'),
      features: { marker: 'echo feature > /opt/feature' },
    });
    const created = await createFromWorkspace(stack, user, tarball);
    expect(created.warnings).toEqual([]);
    await waitForStatus(stack, created.instance_id, ['Running'], 240_000);
    const container = stack.names.container(created.instance_id);
    const cat = async (path: string) => (await execIn(docker(), container, ['cat', path])).stdout;
    expect(await cat('/opt/stage')).toBe(`dev-${run}\n`);
    expect(await cat('/opt/greeting')).toBe(`hello-${run}\n`);
    expect(await cat('/opt/feature')).toBe('feature\n');
    const log = await buildLog(created.instance_id);
    expect(log).not.toContain('prod-stage-ran');
    expect(log).not.toContain('unused-stage-ran');
  }, 300_000);

  it('a Dockerfile that names BuildKit’s frontend (# syntax=docker/dockerfile:1) and uses its syntax (RUN --mount) builds', async () => {
    const run = randomBytes(6).toString('hex');
    const tarball = await workspaceTarball({
      config: { build: { dockerfile: 'Dockerfile' } },
      dockerfile: [
        '# syntax=docker/dockerfile:1',
        'FROM debian:bookworm',
        `RUN --mount=type=cache,target=/var/cache/codebay-test echo ${run} > /var/cache/codebay-test/x && cp /var/cache/codebay-test/x /opt/x`,
        '',
      ].join('\n'),
    });
    const created = await createFromWorkspace(stack, user, tarball);
    await waitForStatus(stack, created.instance_id, ['Running'], 240_000);
    expect((await execIn(docker(), stack.names.container(created.instance_id), ['cat', '/opt/x'])).stdout).toBe(`${run}\n`);
    // The cache mount's content is not part of the image (only its empty mount point).
    expect((await execIn(docker(), stack.names.container(created.instance_id), ['ls', '-A', '/var/cache/codebay-test'])).stdout).toBe('');
  }, 300_000);

  it('a failing step of a named stage fails the instance naming the step, its stage and its last lines', async () => {
    const run = randomBytes(6).toString('hex');
    const tarball = await workspaceTarball({
      config: { build: { dockerfile: 'Dockerfile', target: 'dev' } },
      dockerfile: `FROM debian:bookworm AS dev\nRUN echo broken-${run} && exit 5\n`,
    });
    const created = await createFromWorkspace(stack, user, tarball);
    const failed = await waitForStatus(stack, created.instance_id, ['Failed'], 240_000);
    expect(failed.error).toBe(
      `The Dockerfile step "RUN echo broken-${run} && exit 5" failed with exit code 5 (build step 2 of 2 of stage "dev"). The whole output is in the build log.\nLast lines:\n  broken-${run}`,
    );
  }, 300_000);

  it('a remoteUser the image does not have fails the instance naming it', async () => {
    const file = uniqueConfigFile({ remoteUser: 'devuser-that-is-not-there' });
    const created = await createFromDevcontainer(stack, user, file);
    const failed = await waitForStatus(stack, created.instance_id, ['Failed'], 240_000);
    expect(failed.error).toMatch(/remoteUser "devuser-that-is-not-there" does not exist in the image/);
  }, 300_000);
});
