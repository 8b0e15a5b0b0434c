import { schemaFromDocument } from '@codebay/api-client/generate';
import type { InstanceResponse } from '@codebay/contracts';
import { execFile, execFileSync, spawn } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn, testDocker } from '../support/docker.ts';
import { uniqueDevcontainer } from '../support/instances.ts';
import { freePort } from '../support/ports.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { buildStepsRunning, salt } from '../support/workspaces.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'packages/cli/bin/codebay.mjs');
const SIMPLE = join(ROOT, 'samples/simple-devcontainer.json');
const sh = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * The `codebay` command against the real running stack (gateway, builder, provisioner,
 * Redis, dockerd, registry), run as a user runs it: a child process, env for the settings.
 */
describe('the codebay CLI', () => {
  let stack: Stack;
  let home: string;
  const user = `cli-${salt()}`;
  const docker = testDocker();
  const made: string[] = [];

  const env = (extra: NodeJS.ProcessEnv = {}) => ({
    ...process.env,
    CODEBAY_URL: stack.url,
    CODEBAY_TOKEN: stack.adminToken,
    XDG_CONFIG_HOME: home,
    ...extra,
  });
  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}, input?: string): Promise<Result> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args], { env: env(extra), cwd: ROOT });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.end(input ?? '');
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  const json = <T>(r: Result): T => {
    expect(r.stderr, 'a stack trace leaked').not.toMatch(/\n\s+at /);
    return JSON.parse(r.stdout) as T;
  };
  const slowWorkspace = (lines: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'codebay-cli-ws-'));
    mkdirSync(join(dir, '.devcontainer'));
    writeFileSync(join(dir, '.devcontainer/devcontainer.json'), JSON.stringify({ build: { dockerfile: 'Dockerfile' } }));
    writeFileSync(join(dir, '.devcontainer/Dockerfile'), `FROM debian:bookworm\n${lines}\n`);
    return dir;
  };

  /** `create-workspace --no-wait` of a Dockerfile build with these steps, through the CLI; the instance is cleaned up after. */
  const queueBuild = async (steps: string, opts: { flags?: string[]; env?: NodeJS.ProcessEnv } = {}) => {
    const r = await cli(
      [...(opts.flags ?? []), '--json', 'create-workspace', '--user-id', user, '--no-wait', '--workspace-dir', slowWorkspace(steps)],
      opts.env,
    );
    const created = json<InstanceResponse>(r);
    made.push(created.instance_id);
    return created;
  };

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'codebay-cli-home-'));
    stack = await startStack({ name: 'cli' });
  });
  afterAll(async () => {
    for (const id of made) await stack.api(`/api/instances/${id}`, { method: 'DELETE' }).catch(() => undefined);
    for (const id of made)
      await waitFor(
        `${id} deleted`,
        async () => ((await (await stack.api(`/api/instances/${id}`)).json()) as InstanceResponse).status === 'Deleted' || undefined,
        60_000,
      ).catch(() => undefined);
    await stack?.stop();
    await docker
      .getVolume(stack.names.sharedVolume(user))
      .remove()
      .catch(() => undefined);
  });

  it('the typed client matches the OpenAPI document the running gateway serves', async () => {
    const served = await (await fetch(`${stack.url}/openapi.json`)).json();
    expect(await schemaFromDocument(served)).toBe(readFileSync(join(ROOT, 'packages/api-client/src/schema.ts'), 'utf8'));
  });

  it('editor-versions lists what --vscode-version may name, the default first', async () => {
    const plain = await cli(['editor-versions']);
    expect(plain.code, plain.stderr).toBe(0);
    const rows = plain.stdout.trim().split('\n');
    expect(rows[0]).toBe('VSCODE\tCODE-SERVER\tDEFAULT');
    expect(rows[1]).toBe('1.139.1\t4.139.1\tyes');
    expect(rows).toContain('1.100.3\t4.100.3\tno');
    const list = json<{ versions: Array<{ vscode_version: string; default: boolean }>; source: string }>(await cli(['--json', 'editor-versions']));
    expect(list.source).toBe('provisioner');
    expect(list.versions.filter((v) => v.default).map((v) => v.vscode_version)).toEqual(['1.139.1']);
  });

  it('create-simple waits until Running by default and prints the URL; --json gives the instance', async () => {
    const plain = await cli(['create-simple', '--user-id', user, '--base-image', 'debian:bookworm']);
    expect(plain.code, plain.stderr).toBe(0);
    const url = plain.stdout.trim();
    expect(url).toMatch(new RegExp(`^${stack.url}/instances/${user}-[a-z0-9]{8}\\?tkn=[A-Za-z0-9]+$`));
    made.push(/instances\/([^?]+)/.exec(url)![1]!);
    // Not a TTY: plain progress lines on stderr, the status steps among them.
    expect(plain.stderr).toMatch(/\] .*: (Queued|Provisioning)/);
    expect(plain.stderr).toMatch(/is Running/);

    const quick = json<InstanceResponse>(
      await cli(['--json', 'create-simple', '--user-id', user, '--base-image', 'debian:bookworm', '--no-wait', '--memory-limit', '1Gi']),
    );
    made.push(quick.instance_id);
    expect(quick.status).toBe('Queued');
    const got = json<InstanceResponse>(await cli(['--json', 'get', '--instance-id', quick.instance_id]));
    expect(got.instance_id).toBe(quick.instance_id);
    const list = json<{ instances: InstanceResponse[] }>(await cli(['--json', 'list', '--user-id', user]));
    expect(list.instances.map((i) => i.instance_id)).toEqual(expect.arrayContaining(made));
    const waited = await cli(['wait', '--instance-id', quick.instance_id, '--timeout', '120']);
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stdout.trim()).toBe(got.url);
    const opened = await cli(['open', '--instance-id', quick.instance_id]);
    expect(opened.stdout.trim()).toBe(got.url);
  });

  it('create-devcontainer builds with the log streaming on stderr and ends with the URL', async () => {
    const r = await cli(['--json', 'create-devcontainer', '--user-id', user, '--devcontainer-json', await uniqueDevcontainer(SIMPLE)]);
    expect(r.code, r.stderr).toBe(0);
    const inst = json<InstanceResponse>(r);
    made.push(inst.instance_id);
    expect(inst.status).toBe('Running');
    expect(inst.build).toMatchObject({ cache: 'miss' });
    expect(r.stderr).toContain('codebay: pushing');
    const status = json<{ status: string }>(await cli(['--json', 'build-status', '--instance-id', inst.instance_id]));
    expect(status.status).toBe('Running');
    const logs = await cli(['build-logs', '--instance-id', inst.instance_id]);
    expect(logs.stdout).toContain('codebay: pushed');
  });

  it('create-workspace packs the folder without what .gitignore/.dockerignore exclude, showing upload progress', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codebay-cli-ws-'));
    mkdirSync(join(dir, '.devcontainer'));
    writeFileSync(join(dir, '.devcontainer/devcontainer.json'), JSON.stringify({ image: 'debian:bookworm', containerEnv: { RUN: salt() } }));
    writeFileSync(join(dir, 'keep.txt'), 'kept\n');
    writeFileSync(join(dir, 'secret.env'), 'TOKEN=x\n');
    mkdirSync(join(dir, 'node_modules/pkg'), { recursive: true });
    writeFileSync(join(dir, 'node_modules/pkg/index.js'), '//\n');
    mkdirSync(join(dir, 'build'));
    writeFileSync(join(dir, 'build/out.bin'), 'x');
    writeFileSync(join(dir, '.gitignore'), 'node_modules/\n*.env\n');
    writeFileSync(join(dir, '.dockerignore'), 'build\n');
    const r = await cli(['create-workspace', '--user-id', user, '--workspace-dir', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/uploading .* \(100%\)/);
    expect(r.stderr).toMatch(/excluding what \.gitignore and \.dockerignore list/);
    const id = /instances\/([^?]+)/.exec(r.stdout)![1]!;
    made.push(id);
    const ls = await execIn(docker, stack.names.container(id), ['sh', '-c', 'cd /workspace && find . -path ./.codebay -prune -o -type f -print | sort']);
    const files = ls.stdout.split('\n').filter(Boolean);
    expect(files).toEqual(expect.arrayContaining(['./keep.txt', './.devcontainer/devcontainer.json', './.gitignore']));
    expect(files.filter((f) => /secret\.env|node_modules|build\//.test(f))).toEqual([]);
  });

  it('build-logs --follow prints lines while the build runs and ends with its outcome', async () => {
    const created = await queueBuild(`RUN echo first-${salt()} && sleep 4 && echo second`);
    const seen: { at: number; line: string }[] = [];
    const child = spawn(process.execPath, [BIN, 'build-logs', '--follow', '--instance-id', created.instance_id], { env: env() });
    child.stdout.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean)) seen.push({ at: Date.now(), line });
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
    const ended = Date.now();
    expect(code, stderr).toBe(0);
    expect(stderr).toContain('codebay: build success');
    const first = seen.find((s) => s.line.includes('first-'));
    expect(first).toBeDefined();
    // The line arrived while the build was still sleeping, not with the end.
    expect(ended - first!.at).toBeGreaterThan(2_000);
    // BuildKit's plain progress: a step's output line is `#<vertex> <seconds> <text>`.
    expect(seen.some((s) => /^#\d+ [\d.]+ second$/.test(s.line))).toBe(true);
  });

  it('wait says how it ended: 5 for a failed build, 6 for a timeout', async () => {
    const failing = await queueBuild(`RUN echo broken-${salt()} && exit 3`);
    const failed = await cli(['wait', '--instance-id', failing.instance_id, '--timeout', '120']);
    expect(failed.code).toBe(5);
    expect(failed.stderr).toMatch(/failed in build/);
    const slow = await queueBuild(`RUN echo slow-${salt()} && sleep 20`);
    const timedOut = await cli(['--json', 'wait', '--instance-id', slow.instance_id, '--timeout', '2']);
    expect(timedOut.code).toBe(6);
    expect(json<{ error: { code: string } }>(timedOut).error.code).toBe('timeout');
    const deleted = json<InstanceResponse>(await cli(['--json', 'delete', '--instance-id', slow.instance_id]));
    expect(['Deleting', 'Deleted']).toContain(deleted.status);
  });

  it('a build waiting behind another: the progress line says where it waits in the queue', async () => {
    const marker = `cli-block-${salt()}`;
    const blocker = await queueBuild(`RUN echo ${marker} && sleep 120`);
    await waitFor('the slow step to run', async () => (buildStepsRunning(marker).length > 0 ? true : undefined), 120_000, 200);
    const queued = await queueBuild(`RUN echo queued-${salt()}`);
    expect(queued.queue).toMatchObject({ position: 1, waiting: 1, builds_ahead: 0, running: 1 });
    // Not a TTY: the plain progress line, then the timeout.
    const waited = await cli(['wait', '--instance-id', queued.instance_id, '--timeout', '2']);
    expect(waited.code).toBe(6);
    expect(waited.stderr).toMatch(new RegExp(`\\] ${queued.instance_id}: Queued \\(position 1 of 1(, about \\d+ (s|min))?\\)\\n`));
    for (const id of [blocker.instance_id, queued.instance_id]) expect((await stack.api(`/api/instances/${id}`, { method: 'DELETE' })).status).toBe(202);
  });

  it('errors carry the server’s code and message and an exit code per class, never a stack trace', async () => {
    const badToken = await cli(['--json', 'list'], { CODEBAY_TOKEN: 'not-a-token-at-all' });
    expect(badToken.code).toBe(3);
    expect(json<{ error: { code: string; status: number } }>(badToken).error).toMatchObject({ code: 'unauthorized', status: 401 });
    const unknown = await cli(['get', '--instance-id', `${user}-nosuchid`]);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(/\[not_found\]/);
    const missing = await cli(['create-devcontainer', '--user-id', user, '--devcontainer-json', '/nonexistent/devcontainer.json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no such file');
    const usage = await cli(['get']);
    expect(usage.code).toBe(2);
    const down = await cli(['list'], { CODEBAY_URL: `http://127.0.0.1:${await freePort()}` });
    expect(down.code).toBe(7);
    expect(down.stderr).toMatch(/cannot reach/);
    const bad = await cli(['--json', 'create-simple', '--user-id', 'Not_A_User', '--no-wait']);
    expect(bad.code).toBe(1);
    expect(json<{ error: { code: string; status: number } }>(bad).error.status).toBe(400);
    for (const r of [badToken, unknown, missing, usage, down, bad]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('reads its settings from a 0600 config file and refuses one others can read', async () => {
    const own = mkdtempSync(join(tmpdir(), 'codebay-cli-home-'));
    const set = await cli(
      ['config', 'set', '--url', stack.url, '--token-stdin'],
      { XDG_CONFIG_HOME: own, CODEBAY_TOKEN: '', CODEBAY_URL: '' },
      `${stack.adminToken}\n`,
    );
    expect(set.code, set.stderr).toBe(0);
    const file = join(own, 'codebay/config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(set.stdout + set.stderr).not.toContain(stack.adminToken);
    const listed = await cli(['--json', 'list', '--user-id', user], { XDG_CONFIG_HOME: own, CODEBAY_TOKEN: '', CODEBAY_URL: '' });
    expect(listed.code, listed.stderr).toBe(0);
    chmodSync(file, 0o644);
    const refused = await cli(['list'], { XDG_CONFIG_HOME: own, CODEBAY_TOKEN: '', CODEBAY_URL: '' });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('chmod 600');
  });

  it('on a terminal: a spinner with the phase and elapsed time, log lines above it, the URL at the end', async () => {
    const session = `codebay-cli-${salt()}`;
    const file = await uniqueDevcontainer(SIMPLE);
    const done = join(mkdtempSync(join(tmpdir(), 'codebay-cli-tty-')), 'done');
    const vars = Object.entries({ CODEBAY_URL: stack.url, CODEBAY_TOKEN: stack.adminToken, XDG_CONFIG_HOME: home, TERM: 'xterm-256color' })
      .map(([k, v]) => `${k}='${v}'`)
      .join(' ');
    // As a person's terminal: no CI variable (the test runner's would make any CLI print plain lines).
    const command = `env -u CI ${vars} ${process.execPath} ${BIN} create-devcontainer --user-id ${user} --devcontainer-json ${file}; echo "exit=$?" > ${done}; sleep 600`;
    await sh('tmux', ['new-session', '-d', '-s', session, '-x', '160', '-y', '50', command]);
    const frames = new Set<string>();
    try {
      await waitFor(
        'the CLI to finish in the terminal',
        async () => {
          const { stdout } = await sh('tmux', ['capture-pane', '-p', '-t', session]);
          frames.add(stdout);
          try {
            return readFileSync(done, 'utf8');
          } catch {
            return undefined;
          }
        },
        240_000,
        100,
      );
      const { stdout: screen } = await sh('tmux', ['capture-pane', '-p', '-S', '-200', '-t', session]);
      const all = [...frames].join('\n');
      // A spinner frame with the current phase and the elapsed seconds was on screen at some point.
      expect(all).toMatch(/[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] .*: (Queued|Building|Built|Provisioning) \(\d+\.\ds\)/);
      // Build log lines, indented, above the spinner.
      expect(screen).toMatch(/\n {2}codebay: pushing /);
      // The end: a tick, Running, and the URL on stdout.
      expect(screen).toMatch(/✔ .* is Running \(\d+\.\ds\)/);
      expect(screen).toMatch(new RegExp(`${stack.url.replace(/[.:/]/g, '\\$&')}/instances/${user}-[a-z0-9]{8}\\?tkn=`));
      expect(readFileSync(done, 'utf8').trim()).toBe('exit=0');
      const id = new RegExp(`/instances/(${user}-[a-z0-9]{8})`).exec(screen)![1]!;
      made.push(id);
    } finally {
      await sh('tmux', ['kill-session', '-t', session]).catch(() => undefined);
    }
  });

  it('--insecure reaches codebay behind a self-signed certificate, and a dropped log stream resumes without losing or repeating lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codebay-cli-tls-'));
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'],
      {
        stdio: 'ignore',
      },
    );
    // A TLS front for the real gateway (as an ingress would be), which cuts the first log stream after a few events.
    const target = new URL(stack.url);
    let streams = 0;
    const front = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
      const upstream = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        const follow = (req.url ?? '').includes('follow=1');
        const cutAfter = follow && streams++ === 0 ? 4 : Infinity;
        let events = 0;
        up.on('data', (chunk: Buffer) => {
          res.write(chunk);
          events += (chunk.toString().match(/\n\n/g) ?? []).length;
          if (events >= cutAfter) {
            // Closed the way a proxy's read timeout closes it: what was sent arrives, then the stream ends early.
            up.destroy();
            res.end();
          }
        });
        up.on('end', () => res.end());
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    const url = `https://localhost:${(front.address() as { port: number }).port}`;
    try {
      const refused = await cli(['list'], { CODEBAY_URL: url });
      expect(refused.code).toBe(7);
      expect(refused.stderr).toMatch(/cannot reach .*(SELF_SIGNED|DEPTH_ZERO_SELF_SIGNED_CERT|certificate)/i);

      const created = await queueBuild(Array.from({ length: 6 }, (_, i) => `RUN echo step-${i}-${salt()}`).join('\n'), {
        flags: ['--insecure'],
        env: { CODEBAY_URL: url },
      });
      const followed = await cli(['--insecure', 'build-logs', '--follow', '--instance-id', created.instance_id], { CODEBAY_URL: url });
      expect(followed.code, followed.stderr).toBe(0);
      expect(followed.stderr).toMatch(/log stream dropped; resuming after \d+-\d+/);
      const full = json<{ lines: { text: string }[] }>(await cli(['--json', 'build-logs', '--instance-id', created.instance_id])).lines.map((l) => l.text);
      expect(followed.stdout.split('\n').filter(Boolean)).toEqual(full);
      expect(streams).toBeGreaterThanOrEqual(2);
    } finally {
      front.close();
      front.closeAllConnections();
    }
  });
});
