// Integration test of the codebay editor launcher against the REAL editor
// bundle (code-server + its Node) built by packages/editor/scripts/build-bundle.sh.
//
// The launcher runs on the host here, exactly as in an instance container:
//   <bundle>/bin/node packages/editor/launcher/launcher.mjs
// with CODEBAY_LAUNCH / CODEBAY_EDITOR_DIR, a temp workspace, a temp HOME and a
// free port on 127.0.0.1. remoteUser is unset, so it runs as the current user.
//
// Bundle location: $CODEBAY_EDITOR_BUNDLE, else
// ${CODEBAY_CACHE:-/var/cache/codebay}/editor/code-server-4.100.3. The suite
// fails (does not skip) when it is missing.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';

import { freePort } from '../support/ports.ts';
import { pidAlive, waitFor } from '../support/wait.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const LAUNCHER = path.join(REPO, 'packages', 'editor', 'launcher', 'launcher.mjs');
const BUNDLE = process.env.CODEBAY_EDITOR_BUNDLE ?? path.join(process.env.CODEBAY_CACHE ?? '/var/cache/codebay', 'editor', 'code-server-4.100.3');
const NODE = path.join(BUNDLE, 'bin', 'node');
const ENTRY = path.join(BUNDLE, 'node_modules', 'code-server', 'out', 'node', 'entry.js');

const START_TIMEOUT_MS = 45_000;
const STOP_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------------------
// helpers

/** Wait (with a deadline) until `check` is true. */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  await waitFor(what, async () => ((await check()) ? true : undefined), timeoutMs, 100);
}

async function healthz(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, {
    signal: AbortSignal.timeout(2000),
  });
  await res.arrayBuffer();
  return res.status;
}

async function portClosed(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.once('connect', () => {
      sock.destroy();
      resolve(false);
    });
    sock.once('error', () => resolve(true));
  });
}

function readLines(file: string): string[] {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
}

/** A minimal .vsix (a zip, stored entries) with one extension/package.json. */
function makeVsix(file: string, pkg: { publisher: string; name: string; version: string }): void {
  const manifest = JSON.stringify({
    ...pkg,
    displayName: pkg.name,
    description: 'codebay launcher test extension',
    engines: { vscode: '^1.80.0' },
    contributes: {},
  });
  const vsixManifest = `<?xml version="1.0" encoding="utf-8"?>
<PackageManifest Version="2.0.0" xmlns="http://schemas.microsoft.com/developer/vsx-schema/2011">
  <Metadata>
    <Identity Language="en-US" Id="${pkg.name}" Version="${pkg.version}" Publisher="${pkg.publisher}" />
    <DisplayName>${pkg.name}</DisplayName>
    <Description xml:space="preserve">codebay launcher test extension</Description>
    <Properties><Property Id="Microsoft.VisualStudio.Code.Engine" Value="^1.80.0" /></Properties>
  </Metadata>
  <Installation><InstallationTarget Id="Microsoft.VisualStudio.Code"/></Installation>
  <Dependencies/>
  <Assets><Asset Type="Microsoft.VisualStudio.Code.Manifest" Path="extension/package.json" Addressable="true" /></Assets>
</PackageManifest>`;
  const entries: Array<[string, Buffer]> = [
    ['extension.vsixmanifest', Buffer.from(vsixManifest)],
    ['extension/package.json', Buffer.from(manifest)],
  ];
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const nameBuf = Buffer.from(name);
    const crc = zlib.crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0, 6); // flags
    local.writeUInt16LE(0, 8); // stored
    local.writeUInt32LE(0, 10); // time/date
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0, 8);
    central.writeUInt16LE(0, 10);
    central.writeUInt32LE(0, 12);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(data.length, 24);
    central.writeUInt16LE(nameBuf.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, nameBuf, data);
    centrals.push(central, nameBuf);
    offset += local.length + nameBuf.length + data.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  fs.writeFileSync(file, Buffer.concat([...locals, cd, end]));
}

interface Launch {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop: () => Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<Launch>();
const tempDirs: string[] = [];
let currentOutput: (() => string) | undefined;

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `codebay-launcher-${prefix}-`));
  tempDirs.push(d);
  return d;
}

function launch(config: Record<string, unknown>, opts: { home: string; env?: Record<string, string> }): Launch {
  let out = '';
  const proc = spawn(NODE, [LAUNCHER], {
    env: {
      ...process.env,
      HOME: opts.home,
      CODEBAY_EDITOR_DIR: BUNDLE,
      CODEBAY_LAUNCH: JSON.stringify(config),
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: cleanup can take the editor down with it
  });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
  }>((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const l: Launch = {
    proc,
    output: () => out,
    exited,
    stop: async () => {
      proc.kill('SIGTERM');
      return Promise.race([
        exited,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`launcher did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`)), STOP_TIMEOUT_MS).unref(),
        ),
      ]);
    },
  };
  running.add(l);
  void exited.then(() => running.delete(l));
  currentOutput = () => out;
  return l;
}

async function waitHealthy(l: Launch, port: number): Promise<void> {
  await until(
    `/healthz 200 on port ${port}`,
    async () => {
      if (l.proc.exitCode !== null || l.proc.signalCode !== null) {
        // fatal: ends the wait at once instead of polling until the deadline
        throw Object.assign(new Error(`launcher exited early (${l.proc.exitCode ?? l.proc.signalCode})`), { fatal: true });
      }
      return (await healthz(port)) === 200;
    },
    START_TIMEOUT_MS,
  );
}

interface CommandResult {
  name: string | null;
  command: string;
  exitCode: number;
}
interface PhaseRecord {
  ok?: boolean;
  skipped?: boolean;
  results: CommandResult[];
  runs?: number;
}
interface LifecycleMarker {
  createdAt: string;
  createCompleted: boolean;
  ok: boolean;
  phases: Record<'onCreate' | 'updateContent' | 'postCreate', PhaseRecord>;
  postStart: PhaseRecord;
}

/** The launcher's `lifecycle {json}` lines, parsed (what the provisioner reads into the instance). */
function lifecycleLines(output: string): Record<string, unknown>[] {
  return [...output.matchAll(/^\[codebay-launcher\] \S+ lifecycle (\{.*\})$/gm)].map((m) => JSON.parse(m[1]!) as Record<string, unknown>);
}

function lifecycleMarker(ws: string): LifecycleMarker {
  return JSON.parse(fs.readFileSync(path.join(ws, '.codebay', 'lifecycle.json'), 'utf8'));
}

// ---------------------------------------------------------------------------

beforeAll(() => {
  const missing = [NODE, ENTRY, path.join(BUNDLE, 'bundle.json')].filter((f) => !fs.existsSync(f));
  if (missing.length) {
    throw new Error(
      `editor bundle not found: ${missing.join(', ')} missing.\n` +
        `Build it with \`bash packages/editor/scripts/build-bundle.sh\` (needs the npm and Debian mirrors) ` +
        `or point CODEBAY_EDITOR_BUNDLE at an existing bundle.`,
    );
  }
});

afterEach(async () => {
  for (const l of [...running]) {
    try {
      process.kill(-l.proc.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
    await l.exited;
  }
  currentOutput = undefined;
});

afterAll(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

function dumpOutputOnFailure(): void {
  onTestFailed(() => {
    if (currentOutput) console.error(`--- launcher output ---\n${currentOutput()}\n--- end ---`);
  });
}

describe('editor launcher (real code-server bundle)', () => {
  it('runs lifecycle commands once per workspace, postStart on every start, merges settings, serves /healthz and stops on SIGTERM', async () => {
    dumpOutputOnFailure();
    const root = tempDir('main');
    const home = path.join(root, 'home');
    const ws = path.join(root, 'ws');
    const marks = path.join(root, 'marks');
    fs.mkdirSync(marks, { recursive: true });
    fs.mkdirSync(home, { recursive: true });

    // pre-existing user settings (JSONC): kept unless the config overrides them
    const settingsFile = path.join(home, '.local', 'share', 'code-server', 'User', 'settings.json');
    fs.mkdirSync(path.dirname(settingsFile), { recursive: true });
    fs.writeFileSync(settingsFile, '{\n  // mine\n  "keep.me": true,\n  "editor.fontSize": 10,\n}\n');

    const vsix = path.join(root, 'codebay-test.hello-0.0.1.vsix');
    makeVsix(vsix, {
      publisher: 'codebay-test',
      name: 'hello',
      version: '0.0.1',
    });

    // Parallel proof: each of a/b waits (bounded) for the other to have started.
    const waitOther = (me: string, other: string) =>
      `touch "${marks}/${me}.started"; i=0; while [ ! -e "${marks}/${other}.started" ]; do i=$((i+1)); ` +
      `[ $i -gt 200 ] && exit 9; sleep 0.05; done; echo "${me}" >> "${marks}/postCreate"`;

    const secret = 's3cr3t-value-never-logged';
    const port = await freePort();
    const config = {
      workspaceFolder: ws,
      host: '127.0.0.1',
      port,
      containerEnv: { CB_SECRET: secret, CB_PATHX: '${containerEnv:PATH}' },
      remoteEnv: {
        CB_REMOTE: '${containerEnv:CB_SECRET}+${localEnv:NOPE:dflt}',
      },
      onCreateCommands: [`echo once >> "${marks}/onCreate"; pwd > "${marks}/cwd"; printf %s "$CB_REMOTE" > "${marks}/env"`],
      updateContentCommands: [['/bin/sh', '-c', `echo once >> "${marks}/updateContent"`]],
      postCreateCommands: [{ a: waitOther('a', 'b'), b: waitOther('b', 'a') }],
      postStartCommands: [
        `echo start >> "${marks}/postStart"`,
        // array form: exec'd directly, no shell → "$HOME" stays literal
        ['touch', `${marks}/array $HOME`],
      ],
      settings: {
        'editor.fontSize': 17,
        'workbench.colorTheme': 'Default Dark Modern',
      },
      extensions: ['codebay-test.offline-only', vsix],
    };

    // --- first start ---
    const first = launch(config, { home });
    await waitHealthy(first, port);
    expect(await healthz(port)).toBe(200);
    // postCreate and postStart run with the editor up (waitFor: updateContentCommand by default).
    await until("the start's lifecycle to end", () => first.output().includes('lifecycle {"event":"started","ok":true}'), 30_000);

    expect(readLines(path.join(marks, 'onCreate'))).toEqual(['once']);
    expect(readLines(path.join(marks, 'updateContent'))).toEqual(['once']);
    expect(readLines(path.join(marks, 'postCreate')).sort()).toEqual(['a', 'b']);
    expect(readLines(path.join(marks, 'postStart'))).toEqual(['start']);
    expect(fs.existsSync(path.join(marks, 'array $HOME'))).toBe(true);
    expect(fs.readFileSync(path.join(marks, 'cwd'), 'utf8').trim()).toBe(ws);
    expect(fs.readFileSync(path.join(marks, 'env'), 'utf8')).toBe(`${secret}+dflt`);

    const marker1 = lifecycleMarker(ws);
    expect(marker1.createCompleted).toBe(true);
    expect(marker1.phases.onCreate.results.map((r) => r.exitCode)).toEqual([0]);
    expect(marker1.phases.postCreate.results.map((r) => [r.name, r.exitCode]).sort()).toEqual([
      ['a', 0],
      ['b', 0],
    ]);
    expect(marker1.postStart.runs).toBe(1);

    const settings = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
    expect(settings).toEqual({
      'keep.me': true,
      'editor.fontSize': 17,
      'workbench.colorTheme': 'Default Dark Modern',
    });

    // extensions: the .vsix is installed from disk, the ID fails offline and is ignored
    const extDir = path.join(home, '.local', 'share', 'code-server', 'extensions');
    await until('extension installation to finish', () => first.output().includes('extension installation finished'), 90_000);
    expect(fs.readdirSync(extDir)).toContain('codebay-test.hello-0.0.1');
    expect(first.output()).toMatch(/extension codebay-test\.offline-only: (failed|timed out)/);
    expect(await healthz(port)).toBe(200);

    // env values are never printed, only key names
    expect(first.output()).toContain('CB_SECRET');
    expect(first.output()).not.toContain(secret);
    expect(first.output()).toMatch(/^\[codebay-launcher\] \d{4}-\d\d-\d\dT[\d:.]+Z /m);

    // --- SIGTERM stops launcher and editor ---
    const editorPid = Number(/editor pid (\d+)/.exec(first.output())?.[1]);
    expect(editorPid).toBeGreaterThan(0);
    const exit1 = await first.stop();
    expect(exit1.code === 143 || exit1.code === 0 || exit1.signal === 'SIGTERM').toBe(true);
    await until('editor process to be gone', () => !pidAlive(editorPid), STOP_TIMEOUT_MS);
    await until(`port ${port} to be closed`, () => portClosed(port), STOP_TIMEOUT_MS);

    // --- second start of the same workspace ---
    const port2 = await freePort();
    const second = launch({ ...config, port: port2 }, { home });
    await waitHealthy(second, port2);
    await until("the start's lifecycle to end", () => second.output().includes('lifecycle {"event":"started","ok":true}'), 30_000);
    expect(readLines(path.join(marks, 'onCreate'))).toEqual(['once']);
    expect(readLines(path.join(marks, 'updateContent'))).toEqual(['once']);
    expect(readLines(path.join(marks, 'postCreate')).sort()).toEqual(['a', 'b']);
    expect(readLines(path.join(marks, 'postStart'))).toEqual(['start', 'start']);
    expect(second.output()).toMatch(/already ran/);
    const marker2 = lifecycleMarker(ws);
    expect(marker2.createdAt).toBe(marker1.createdAt);
    expect(marker2.postStart.runs).toBe(2);
    const exit2 = await second.stop();
    expect(exit2.code === 143 || exit2.code === 0 || exit2.signal === 'SIGTERM').toBe(true);
    await until(`port ${port2} to be closed`, () => portClosed(port2), STOP_TIMEOUT_MS);
  }, 240_000);

  it('records a failing postCreate in the marker and still starts the editor', async () => {
    dumpOutputOnFailure();
    const root = tempDir('fail');
    const home = path.join(root, 'home');
    const ws = path.join(root, 'ws');
    fs.mkdirSync(home, { recursive: true });
    const port = await freePort();
    const l = launch(
      {
        workspaceFolder: ws,
        host: '127.0.0.1',
        port,
        onCreateCommands: ['echo fine'],
        postCreateCommands: ['echo about to fail; exit 7'],
        postStartCommands: [`touch "${root}/postStart-ran"`],
      },
      { home },
    );
    await waitHealthy(l, port);
    // postCreate runs with the editor up (waitFor's default is updateContentCommand): its end is the 'started' line.
    await until("the start's lifecycle to end", () => l.output().includes('lifecycle {"event":"started","ok":false}'), 30_000);
    expect(l.output()).toMatch(/postCreate: FAILED with exit code 7/);
    expect(l.output()).toContain('[postCreate] about to fail');
    const failed = lifecycleLines(l.output()).find((x) => x.phase === 'postCreateCommand' && x.state === 'failed');
    expect(failed).toMatchObject({ exitCode: 7, tail: ['about to fail'] });
    expect(lifecycleLines(l.output())).toContainEqual({ phase: 'postStartCommand', state: 'skipped', reason: 'an earlier lifecycle command failed' });

    const marker = lifecycleMarker(ws);
    expect(marker.ok).toBe(false);
    expect(marker.phases.onCreate.results[0]?.exitCode).toBe(0);
    expect(marker.phases.postCreate.ok).toBe(false);
    expect(marker.phases.postCreate.results[0]?.exitCode).toBe(7);
    // devcontainer semantics: later lifecycle commands are skipped after a failure
    expect(marker.postStart.skipped).toBe(true);
    expect(fs.existsSync(path.join(root, 'postStart-ran'))).toBe(false);

    const exit = await l.stop();
    expect(exit.code === 143 || exit.code === 0 || exit.signal === 'SIGTERM').toBe(true);
  }, 120_000);

  it('waitFor: the editor answers while postCreateCommand still runs, then postCreate and postStart finish with it up', async () => {
    dumpOutputOnFailure();
    const root = tempDir('waitfor');
    const home = path.join(root, 'home');
    const ws = path.join(root, 'ws');
    fs.mkdirSync(home, { recursive: true });
    const port = await freePort();
    const gate = path.join(root, 'release-postcreate');
    const l = launch(
      {
        workspaceFolder: ws,
        host: '127.0.0.1',
        port,
        onCreateCommands: [`echo on-create > "${root}/on-create"`],
        // Holds until the test lets it go: a long npm install, in effect.
        postCreateCommands: [`while [ ! -f "${gate}" ]; do sleep 0.1; done; echo post-create-done`],
        postStartCommands: [`echo post-start > "${root}/post-start"`],
      },
      { home },
    );
    await waitHealthy(l, port);
    // The editor answers: onCreate ran before it, postCreate runs now, postStart waits for it.
    expect(fs.existsSync(path.join(root, 'on-create'))).toBe(true);
    expect(lifecycleLines(l.output())).toContainEqual({ phase: 'postCreateCommand', state: 'running', commands: 1 });
    expect(fs.existsSync(path.join(root, 'post-start'))).toBe(false);
    expect(l.output()).toContain('lifecycle: the editor waits for updateContentCommand');

    fs.writeFileSync(gate, '');
    await until("the start's lifecycle to end", () => l.output().includes('lifecycle {"event":"started","ok":true}'), 30_000);
    expect(l.output()).toContain('[postCreate] post-create-done');
    expect(fs.readFileSync(path.join(root, 'post-start'), 'utf8').trim()).toBe('post-start');
    expect(
      lifecycleLines(l.output())
        .filter((x) => x.state === 'succeeded')
        .map((x) => x.phase),
    ).toEqual(['onCreateCommand', 'postCreateCommand', 'postStartCommand']);
    await l.stop();
  }, 120_000);

  it('waitFor postCreateCommand: the editor starts only once postCreate ended', async () => {
    dumpOutputOnFailure();
    const root = tempDir('waitfor-pc');
    const home = path.join(root, 'home');
    const ws = path.join(root, 'ws');
    fs.mkdirSync(home, { recursive: true });
    const port = await freePort();
    const gate = path.join(root, 'release-postcreate');
    const l = launch(
      {
        workspaceFolder: ws,
        host: '127.0.0.1',
        port,
        waitFor: 'postCreateCommand',
        postCreateCommands: [`while [ ! -f "${gate}" ]; do sleep 0.1; done`],
      },
      { home },
    );
    await until('postCreate to run', () => lifecycleLines(l.output()).some((x) => x.phase === 'postCreateCommand' && x.state === 'running'), 30_000);
    // Nothing listens while the editor waits for postCreate.
    expect(await portClosed(port)).toBe(true);
    expect(l.output()).not.toContain('starting code-server');
    fs.writeFileSync(gate, '');
    await waitHealthy(l, port);
    const lines = l.output();
    expect(lines.indexOf('"phase":"postCreateCommand","state":"succeeded"')).toBeLessThan(lines.indexOf('starting code-server'));
    await l.stop();
  }, 120_000);

  it('refuses a remoteUser the image does not have, naming it', async () => {
    dumpOutputOnFailure();
    const home = tempDir('nouser');
    const l = launch({ workspaceFolder: path.join(home, 'ws'), remoteUser: 'no-such-user-here' }, { home });
    const exit = await l.exited;
    expect(exit.code).toBe(2);
    expect(l.output()).toMatch(/remoteUser "no-such-user-here" does not exist in the image/);
  }, 30_000);

  it('exits with a clear message on an invalid configuration', async () => {
    dumpOutputOnFailure();
    const home = tempDir('invalid');
    const l = launch({ workspaceFolder: 'relative/path' }, { home });
    const exit = await l.exited;
    expect(exit.code).toBe(2);
    expect(l.output()).toMatch(/invalid configuration: workspaceFolder must be an absolute path/);
  }, 30_000);
});
