#!/usr/bin/env node
// codebay editor launcher: runs INSIDE an instance container as
//
//   /opt/codebay/editor/bin/node /opt/codebay/launcher/launcher.mjs
//
// with the editor bundle (code-server + its Node) mounted read-only at
// $CODEBAY_EDITOR_DIR (default /opt/codebay/editor) and the launch config in
// $CODEBAY_LAUNCH (JSON, see helpers.mjs parseLaunchConfig). It resolves the
// user, unpacks the workspace upload on first start when $CODEBAY_SEED_URL is
// set (Kubernetes), runs the devcontainer lifecycle commands (onCreate/updateContent/
// postCreate once per workspace, postStart on every start), merges VS Code
// settings, starts code-server as the user, forwards SIGTERM/SIGINT to it and
// exits with its code, and installs extensions in the background.
//
// Dependency-free (node builtins only). Never logs env values, only key names.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

import {
  CREATE_PHASES,
  buildEnv,
  createPhasesDone,
  donePhases,
  editorArgs,
  editorEnv,
  envKeys,
  exitCodeOf,
  findUser,
  BAKED_EXTENSIONS_DIR,
  EXTENSIONS_PROPERTY,
  extensionInstallPlan,
  extensionsWarning,
  installFailureReason,
  mergeSettings,
  normalizeCommand,
  parseBakedIndex,
  parseJsonc,
  parseLaunchConfig,
  parsePasswd,
  startPlan,
  substituteDeep,
} from './helpers.mjs';

const TAG = '[codebay-launcher]';
/** Starts code-server in place of its own parent process (see there). */
const CODE_SERVER_PARENT = fileURLToPath(new URL('./code-server-parent.mjs', import.meta.url));
// The instance's token for fetching its workspace upload: taken out of the environment
// at once, so no lifecycle command, terminal or extension ever sees it.
const SEED_TOKEN = process.env.CODEBAY_SEED_TOKEN ?? '';
delete process.env.CODEBAY_SEED_TOKEN;
// The editor's own secret (the gateway adds it to every request it lets through): only
// code-server gets it, as $HASHED_PASSWORD, which code-server itself removes from the
// environment its terminals and extensions inherit.
const EDITOR_SECRET = process.env.CODEBAY_EDITOR_SECRET ?? '';
delete process.env.CODEBAY_EDITOR_SECRET;
const SEED_ATTEMPTS = 5;
const EXTENSION_TIMEOUT_MS = 60_000;
const HEALTH_WAIT_MS = 60_000;
/** /healthz is probed this often while code-server starts (a refused loopback connection costs nothing). */
const HEALTH_POLL_MS = 50;
/** Extension installs run at this niceness: a second code-server process must not slow the first page (the container has 1 CPU by default). */
const EXTENSION_NICENESS = 10;
/** Lines of an extension install's output kept to find why it failed (code-server prints its error above a stack trace). */
const EXTENSION_OUTPUT_LINES = 40;
const SIGNALS = os.constants.signals;

function log(msg) {
  process.stdout.write(`${TAG} ${new Date().toISOString()} ${msg}\n`);
}

function truncate(s, n = 200) {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

// ---------------------------------------------------------------------------
// process bookkeeping and signals

/** Child processes the launcher may have to stop (lifecycle commands, extension installs). */
const tracked = new Set();
let editor = null;
let stopSignal = null;

function killGroup(child, signal) {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, signal); // detached → own process group
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

function onSignal(signal) {
  if (editor) {
    log(`received ${signal}, forwarding to the editor (pid ${editor.pid})`);
    try {
      editor.kill(signal);
    } catch {
      /* exited meanwhile */
    }
    for (const child of tracked) killGroup(child, 'SIGTERM');
    return;
  }
  if (stopSignal) {
    log(`received ${signal} again, killing remaining commands`);
    for (const child of tracked) killGroup(child, 'SIGKILL');
    process.exit(128 + (SIGNALS[signal] ?? 15));
  }
  stopSignal = signal;
  log(`received ${signal} before the editor started, stopping ${tracked.size} running command(s)`);
  for (const child of tracked) killGroup(child, 'SIGTERM');
  if (tracked.size === 0) process.exit(128 + (SIGNALS[signal] ?? 15));
}

for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => onSignal(sig));

function exitIfStopping() {
  if (stopSignal) {
    log(`stopped by ${stopSignal}`);
    process.exit(128 + (SIGNALS[stopSignal] ?? 15));
  }
}

// ---------------------------------------------------------------------------
// users

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function readPasswd() {
  try {
    return parsePasswd(fs.readFileSync('/etc/passwd', 'utf8'));
  } catch {
    return [];
  }
}

function currentUser() {
  const uid = process.getuid();
  const gid = process.getgid();
  const found = readPasswd().find((u) => u.uid === uid);
  if (found) return { ...found, gid: found.gid ?? gid };
  let info = {};
  try {
    info = os.userInfo();
  } catch {
    /* uid without passwd entry */
  }
  return {
    name: process.env.USER || info.username || `uid${uid}`,
    uid,
    gid,
    home: process.env.HOME || info.homedir || '/',
    shell: process.env.SHELL || undefined,
  };
}

function resolveUser(cfg) {
  const r = resolveUserFromPasswd(cfg);
  // Running as that user already (no switch): keep the HOME we were given.
  if (r.user.uid === process.getuid() && process.env.HOME && process.env.HOME !== r.user.home) {
    log(`using HOME from the environment (${process.env.HOME}) instead of ${r.user.home}`);
    r.user = { ...r.user, home: process.env.HOME };
  }
  return r;
}

/**
 * Says on the instance (through the provisioner, which reads this line) that a property was
 * not applied as written: `lifecycle {"warning":{"property","message"}}`.
 */
function warnProperty(property, message) {
  log(`${property}: ${message}`);
  log(`lifecycle ${JSON.stringify({ warning: { property, message: `${property}: ${message}` } })}`);
}

/**
 * The user the editor and the lifecycle commands run as: remoteUser, else containerUser, else
 * the container's own. A user the image does not have is an error naming the property (the
 * reference tools fail the same way: `docker exec -u <user>` finds no such user); a numeric
 * UID without a passwd entry runs as that UID. Throws Error with the message for the log.
 */
function resolveUserFromPasswd(cfg) {
  const me = currentUser();
  const wanted = cfg.remoteUser ?? cfg.containerUser;
  const source = cfg.remoteUser ? 'remoteUser' : cfg.containerUser ? 'containerUser' : 'current user';
  if (!wanted) return { user: me, source };
  let user = findUser(readPasswd(), wanted);
  if (!user && /^\d+$/.test(wanted)) user = { name: wanted, uid: Number(wanted), gid: Number(wanted), home: '/' };
  if (!user) {
    const err = new Error(
      `${source} "${wanted}" does not exist in the image (no such user in /etc/passwd); create it in the Dockerfile or with a feature (e.g. ghcr.io/devcontainers/features/common-utils), or remove ${source}`,
    );
    err.userError = true;
    throw err;
  }
  if (!isRoot && user.uid !== me.uid) {
    warnProperty(
      source,
      `cannot switch to ${user.name} (uid ${user.uid}): the container runs as ${me.name} (uid ${me.uid}), not root; everything runs as ${me.name}`,
    );
    return { user: me, source: 'current user' };
  }
  return { user, source };
}

// When root switches to another user: prefer `setpriv --init-groups` (keeps
// the user's supplementary groups, e.g. docker), else spawn with uid/gid
// (libuv then drops all supplementary groups).
let switchUser = null; // { uid, gid, setpriv?: string }

function findExecutable(name) {
  for (const dir of (process.env.PATH || '/usr/bin:/bin').split(':').concat(['/usr/bin', '/bin'])) {
    const p = path.join(dir || '.', name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

function spawnAsUser(argv, options) {
  const opts = { ...options };
  let finalArgv = argv;
  if (switchUser) {
    if (switchUser.setpriv) {
      finalArgv = [switchUser.setpriv, `--reuid=${switchUser.uid}`, `--regid=${switchUser.gid}`, '--init-groups', '--', ...argv];
    } else {
      opts.uid = switchUser.uid;
      opts.gid = switchUser.gid;
    }
  }
  return spawn(finalArgv[0], finalArgv.slice(1), opts);
}

// ---------------------------------------------------------------------------
// files

function chownQuiet(p, user) {
  if (!isRoot) return;
  try {
    fs.lchownSync(p, user.uid, user.gid);
  } catch {
    /* best effort */
  }
}

/** chown -R without following symlinks; returns [changed, failed]. */
function chownRecursive(root, uid, gid) {
  let changed = 0;
  let failed = 0;
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    try {
      fs.lchownSync(p, uid, gid);
      changed++;
    } catch {
      failed++;
    }
    let entries = [];
    try {
      if (fs.lstatSync(p).isDirectory()) entries = fs.readdirSync(p);
    } catch {
      /* vanished or unreadable */
    }
    for (const e of entries) stack.push(path.join(p, e));
  }
  return [changed, failed];
}

/** mkdir -p, chowning every directory it creates to the user. */
function mkdirOwned(dir, user) {
  const missing = [];
  let p = path.resolve(dir);
  while (!fs.existsSync(p)) {
    missing.unshift(p);
    const parent = path.dirname(p);
    if (parent === p) break;
    p = parent;
  }
  fs.mkdirSync(dir, { recursive: true });
  for (const m of missing) chownQuiet(m, user);
}

function writeFileAtomic(file, content, user) {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, content);
  chownQuiet(tmp, user);
  fs.renameSync(tmp, file);
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if (err.code !== 'ENOENT') log(`ignoring unreadable ${file}: ${err.message}`);
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// lifecycle commands

/** Lines of a failed command's output said again in its failure (the whole output is in the log above it). */
const FAILURE_TAIL_LINES = 5;

/** Relays a child's output line by line with `prefix`; `tail` (an array) keeps the last `keep` lines. */
function pipeLines(stream, prefix, tail, keep = FAILURE_TAIL_LINES) {
  if (!stream) return;
  const rl = readline.createInterface({ input: stream, crlfDelay: Infinity });
  rl.on('line', (line) => {
    process.stdout.write(`${prefix} ${line}\n`);
    if (tail) {
      tail.push(truncate(line, 300));
      if (tail.length > keep) tail.shift();
    }
  });
}

/** Run one process of a lifecycle command; resolves { exitCode, durationMs }. */
function runProcess(entry, label, ctx) {
  const started = Date.now();
  return new Promise((resolve) => {
    let child;
    try {
      child = spawnAsUser(entry.argv, {
        cwd: ctx.cwd,
        env: ctx.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      });
    } catch (err) {
      log(`${label}: cannot start: ${err.message}`);
      resolve({ exitCode: 127, durationMs: 0, error: err.message });
      return;
    }
    tracked.add(child);
    const prefix = `[${label}]`;
    const tail = [];
    pipeLines(child.stdout, prefix, tail);
    pipeLines(child.stderr, prefix, tail);
    let settled = false;
    const finish = (result) => {
      if (settled) return;
      settled = true;
      tracked.delete(child);
      resolve({ ...result, durationMs: Date.now() - started, ...(result.exitCode !== 0 ? { tail: [...tail] } : {}) });
    };
    child.on('error', (err) => {
      log(`${label}: cannot start ${entry.argv[0]}: ${err.code || err.message}`);
      finish({ exitCode: 127, error: err.code || err.message });
    });
    child.on('exit', (code, signal) => {
      const exitCode = exitCodeOf(code, signal, SIGNALS);
      // Wait for the output pipes to drain, but not for background processes
      // that keep them open (e.g. `daemon &` in postStartCommand).
      const timer = setTimeout(() => finish({ exitCode, signal: signal ?? undefined }), 1000);
      timer.unref();
      child.on('close', () => {
        clearTimeout(timer);
        finish({ exitCode, signal: signal ?? undefined });
      });
    });
  });
}

/** Run a phase: its commands in order; the processes of an object command in parallel. */
async function runPhase(phase, commands, ctx) {
  const startedAt = new Date().toISOString();
  const results = [];
  let ok = true;
  const total = commands.length;
  for (let i = 0; i < total; i++) {
    const entries = normalizeCommand(commands[i], `${phase}Commands[${i}]`);
    if (entries.length === 0) continue;
    const where = total > 1 ? ` (${i + 1}/${total})` : '';
    if (entries.length > 1) {
      log(`${phase}${where}: running ${entries.length} commands in parallel: ${entries.map((e) => e.name).join(', ')}`);
    }
    const outcomes = await Promise.all(
      entries.map((entry) => {
        const label = entry.name ? `${phase}:${entry.name}` : phase;
        log(`${label}${entries.length > 1 ? '' : where}: ${truncate(entry.display)}`);
        return runProcess(entry, label, ctx).then((r) => {
          const label2 = entry.name ? `${phase}:${entry.name}` : phase;
          if (r.exitCode === 0) log(`${label2}: done in ${r.durationMs} ms`);
          else log(`${label2}: FAILED with exit code ${r.exitCode} after ${r.durationMs} ms`);
          return {
            index: i,
            name: entry.name ?? null,
            command: truncate(entry.display, 500),
            ...r,
          };
        });
      }),
    );
    results.push(...outcomes);
    if (stopSignal)
      return {
        ok: false,
        startedAt,
        finishedAt: new Date().toISOString(),
        results,
        stoppedBy: stopSignal,
      };
    if (outcomes.some((r) => r.exitCode !== 0)) {
      ok = false;
      break;
    }
  }
  return { ok, startedAt, finishedAt: new Date().toISOString(), results };
}

/** VS Code's server says this when an editor window connects to it (a session attaches). */
const EDITOR_ATTACHED = /\[ManagementConnection\] New connection established/;

/**
 * The lifecycle of one container start, as the spec orders it (containers.dev/implementors/json_reference,
 * "Lifecycle scripts"): onCreate, updateContent, postCreate (once per workspace), postStart (every
 * start), postAttach (each time an editor session attaches). A failed command stops the ones after
 * it, as the reference CLI does. Each phase's state is one `lifecycle {json}` line in the container
 * log — `{"phase":"postCreateCommand","state":"running|succeeded|failed|skipped",…}`, then
 * `{"event":"started","ok":…}` once postStart ended — which the provisioner reads into the instance.
 */
class Lifecycle {
  constructor(cfg, ctx, state, save) {
    this.cfg = cfg;
    this.ctx = ctx;
    this.state = state;
    this.save = save;
    this.ok = true;
    this.startEnded_ = false;
    this.attachPending = false;
    this.attaching = false;
  }

  status(phase, state, extra = {}) {
    log(`lifecycle ${JSON.stringify({ phase: `${phase}Command`, state, ...extra })}`);
  }

  record(phase, result) {
    if (CREATE_PHASES.includes(phase)) {
      this.state.phases ??= {};
      this.state.phases[phase] = result;
      if (CREATE_PHASES.every((p) => this.state.phases[p])) {
        this.state.createCompleted = true;
        this.state.ok = CREATE_PHASES.every((p) => this.state.phases[p].ok !== false);
      }
    } else if (phase === 'postStart') {
      this.state.postStart = { ...result, runs: (this.state.postStart?.runs ?? 0) + (result.skipped ? 0 : 1) };
    }
    this.save();
  }

  /** Runs `phases` (names) in order; after a failure the rest are skipped. */
  async run(phases) {
    for (const phase of phases) {
      const cmds = this.cfg.commands[phase];
      if (!this.ok) {
        const reason = 'an earlier lifecycle command failed';
        if (cmds.length) {
          log(`${phase}: skipped (${reason})`);
          this.status(phase, 'skipped', { reason });
        }
        this.record(phase, { skipped: true, reason, at: new Date().toISOString(), results: [] });
        continue;
      }
      if (cmds.length === 0) {
        this.record(phase, { ok: true, results: [] });
        continue;
      }
      log(`${phase}: ${cmds.length} command(s)`);
      this.status(phase, 'running', { commands: cmds.length });
      const r = await runPhase(phase, cmds, this.ctx);
      this.record(phase, r);
      if (stopSignal) return;
      if (!r.ok) {
        this.ok = false;
        const failed = r.results.find((x) => x.exitCode !== 0) ?? {};
        this.status(phase, 'failed', {
          exitCode: failed.exitCode ?? null,
          command: failed.command ?? null,
          durationMs: Date.parse(r.finishedAt) - Date.parse(r.startedAt),
          tail: failed.tail ?? [],
        });
      } else this.status(phase, 'succeeded', { durationMs: Date.parse(r.finishedAt) - Date.parse(r.startedAt) });
    }
  }

  /** postStart has ended (or was skipped): the start's lifecycle is over; an attach that came meanwhile runs postAttach now. */
  startEnded() {
    this.startEnded_ = true;
    if (!this.ok) log('lifecycle commands failed (see above and .codebay/lifecycle.json)');
    log(`lifecycle ${JSON.stringify({ event: 'started', ok: this.ok })}`);
    if (this.attachPending) this.attached();
  }

  /** An editor session attached: postAttachCommand runs (after postStart; one run at a time, once more if others attached meanwhile). */
  attached() {
    if (!this.startEnded_ || this.attaching) {
      this.attachPending = true;
      return;
    }
    this.attachPending = false;
    const cmds = this.cfg.commands.postAttach;
    if (cmds.length === 0) return;
    if (!this.ok) {
      this.status('postAttach', 'skipped', { reason: 'an earlier lifecycle command failed' });
      return;
    }
    this.attaching = true;
    this.status('postAttach', 'running', { commands: cmds.length });
    runPhase('postAttach', cmds, this.ctx)
      .then((r) => {
        const failed = r.results.find((x) => x.exitCode !== 0);
        const durationMs = Date.parse(r.finishedAt) - Date.parse(r.startedAt);
        if (r.ok) this.status('postAttach', 'succeeded', { durationMs });
        else
          this.status('postAttach', 'failed', { exitCode: failed?.exitCode ?? null, command: failed?.command ?? null, durationMs, tail: failed?.tail ?? [] });
      })
      .finally(() => {
        this.attaching = false;
        if (this.attachPending) this.attached();
      });
  }
}

// ---------------------------------------------------------------------------
// editor helpers

function waitForHealth({ host, port, socket }, deadlineMs) {
  const target = socket
    ? { socketPath: socket }
    : {
        host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host,
        port,
      };
  const deadline = Date.now() + deadlineMs;
  return new Promise((resolve) => {
    const attempt = () => {
      if (!editor || editor.exitCode !== null || editor.signalCode !== null) return resolve(false);
      const req = http.get({ ...target, path: '/healthz', timeout: 2000 }, (res) => {
        res.resume();
        if (res.statusCode === 200) resolve(true);
        else retry();
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', retry);
    };
    const retry = () => {
      if (Date.now() > deadline) return resolve(false);
      setTimeout(attempt, HEALTH_POLL_MS).unref();
    };
    attempt();
  });
}

/** Lowers a child's CPU priority (best effort: it may have exited already). */
function deprioritise(child, niceness) {
  try {
    if (child.pid) os.setPriority(child.pid, niceness);
  } catch {
    /* gone, or not allowed */
  }
}

/**
 * Resolves once the editor has answered GET / (or failed to): code-server loads VS Code's
 * server with its first page, and that request waits for the same load.
 */
function editorLoaded({ host, port, socket }) {
  const target = socket ? { socketPath: socket } : { host: host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host, port };
  return new Promise((resolve) => {
    const req = http.get({ ...target, path: '/', timeout: HEALTH_WAIT_MS }, (res) => {
      res.resume();
      res.on('end', resolve);
      res.on('error', resolve);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', resolve);
  });
}

/**
 * The extensions baked into this image by its build (BAKED_EXTENSIONS_DIR/index.json, see
 * parseBakedIndex), or null when the image has none (its build had no extension source).
 */
function readBakedIndex() {
  const file = path.join(BAKED_EXTENSIONS_DIR, 'index.json');
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const index = parseBakedIndex(text);
  if (!index) log(`${file} is not an extension index; extensions are installed from the gallery`);
  return index;
}

/**
 * Installs the configuration's extensions in the background, one at a time, once the editor has
 * served its first page: from the image when its build baked them (no network), else by id from
 * the gallery code-server reaches; .vsix paths from the workspace. Never fatal: the ones not
 * installed become one warning on the instance (`customizations.vscode.extensions`).
 */
async function installExtensions(list, ctx) {
  const index = readBakedIndex();
  const { installs, notInImage } = extensionInstallPlan(list, index);
  if (installs.length === 0 && notInImage.length === 0) return;
  for (const ext of notInImage) log(`extension ${ext}: not in this image (not in the deployment's extension source when it was built); not installed`);
  const failed = [];
  // The build's warning names the ones not in the image; one that failed here replaces it (one per property), so it names them too.
  const warnAtEnd = () => {
    if (failed.length > 0) warnProperty(EXTENSIONS_PROPERTY, extensionsWarning(failed, notInImage));
  };
  if (installs.length === 0) return;
  const healthy = await ctx.healthy;
  if (!editor || editor.exitCode !== null) return;
  if (!healthy) log('editor not healthy yet; installing extensions anyway');
  // Not while the editor prepares its first page (a second code-server process would slow it).
  else await editorLoaded(ctx.bind);
  log(`installing ${installs.length} extension(s) in the background${index ? ` (${installs.filter((i) => i.from === 'image').length} from the image)` : ''}`);
  for (const { ext, target: written, from } of installs) {
    if (!editor || editor.exitCode !== null || editor.signalCode !== null) return;
    const target = from === 'file' ? path.resolve(ctx.cwd, written) : written;
    const label = `extension ${ext}`;
    if (from === 'image') log(`${label}: from ${target}`);
    const argv = [
      ctx.nodeBin,
      ctx.entry,
      '--install-extension',
      target,
      '--extensions-dir',
      ctx.extensionsDir,
      '--user-data-dir',
      ctx.userDataDir,
      '--config',
      ctx.configFile,
    ];
    const started = Date.now();
    const tail = [];
    const result = await new Promise((resolve) => {
      let child;
      try {
        child = spawnAsUser(argv, {
          cwd: ctx.cwd,
          env: ctx.env,
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        });
      } catch (err) {
        resolve({ exitCode: 127, error: err.message, tail });
        return;
      }
      tracked.add(child);
      deprioritise(child, EXTENSION_NICENESS);
      pipeLines(child.stdout, `[${label}]`, tail, EXTENSION_OUTPUT_LINES);
      pipeLines(child.stderr, `[${label}]`, tail, EXTENSION_OUTPUT_LINES);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        killGroup(child, 'SIGKILL');
      }, EXTENSION_TIMEOUT_MS);
      timer.unref();
      child.on('error', (err) => {
        clearTimeout(timer);
        tracked.delete(child);
        resolve({ exitCode: 127, error: err.code || err.message, tail });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        tracked.delete(child);
        resolve({ exitCode: exitCodeOf(code, signal, SIGNALS), timedOut, tail });
      });
    });
    const ms = Date.now() - started;
    if (result.timedOut) log(`${label}: timed out after ${ms} ms (ignored)`);
    else if (result.exitCode === 0) log(`${label}: installed in ${ms} ms`);
    else log(`${label}: failed with exit code ${result.exitCode}${result.error ? ` (${result.error})` : ''} (ignored)`);
    if (result.timedOut) failed.push({ ext, reason: `timed out after ${Math.round(ms / 1000)} s` });
    else if (result.exitCode !== 0) failed.push({ ext, reason: installFailureReason(result.tail, result.exitCode) });
  }
  log('extension installation finished');
  warnAtEnd();
}

// ---------------------------------------------------------------------------
// workspace seeding (Kubernetes: the upload comes from the gateway)

function httpGet(url, token) {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.get(url, { headers: { authorization: `Bearer ${token}` }, timeout: 30_000 }, resolve);
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', reject);
  });
}

/** Streams the archive at `url` into `tar -x` in `ws`, gunzipping when it is gzip. */
async function fetchAndExtract(url, token, ws, tar) {
  const res = await httpGet(url, token);
  if (res.statusCode !== 200) {
    res.resume();
    const err = new Error(`the gateway answered ${res.statusCode}`);
    err.permanent = res.statusCode === 401 || res.statusCode === 404 || res.statusCode === 410;
    throw err;
  }
  const chunks = res[Symbol.asyncIterator]();
  const head = await chunks.next();
  const gzip = !head.done && head.value[0] === 0x1f && head.value[1] === 0x8b;
  const body = Readable.from(
    (async function* () {
      if (!head.done) yield head.value;
      for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
    })(),
  );
  const child = spawn(tar, ['-x', '-f', '-', '-C', ws, '--no-same-owner'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = truncate(stderr + d, 2000)));
  const exited = new Promise((resolve) => child.on('close', (code) => resolve(code)));
  // tar's own message says more than the broken pipe it leaves behind.
  const [pipeError, code] = await Promise.all([pipeline(body, ...(gzip ? [zlib.createGunzip()] : []), child.stdin).catch((err) => err), exited]);
  if (code !== 0) throw new Error(`tar exited with ${code}: ${stderr.trim()}`);
  if (pipeError) throw pipeError;
}

/**
 * First start of a workspace instance on Kubernetes: unpack the upload from
 * $CODEBAY_SEED_URL into the workspace once (marker `.codebay/seeded`). Retries
 * transient failures; exits non-zero (the pod restarts, the provisioner sees it)
 * when it cannot.
 */
async function seedWorkspace(ws, stateDir) {
  const url = process.env.CODEBAY_SEED_URL;
  if (!url) return;
  const done = path.join(stateDir, 'seeded');
  if (fs.existsSync(done)) {
    log('workspace upload: already unpacked');
    return;
  }
  const tar = findExecutable('tar');
  if (!tar) throw new Error('workspace upload: this image has no `tar` to unpack it with; add tar to the image');
  const t0 = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      await fetchAndExtract(url, SEED_TOKEN, ws, tar);
      break;
    } catch (err) {
      if (err.permanent || attempt >= SEED_ATTEMPTS) throw new Error(`workspace upload: cannot unpack it: ${err.message}`);
      log(`workspace upload: attempt ${attempt} failed (${err.message}); retrying`);
      await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** (attempt - 1)));
    }
  }
  fs.mkdirSync(stateDir, { recursive: true });
  fs.writeFileSync(done, `${new Date().toISOString()}\n`);
  log(`workspace upload: unpacked into ${ws} (${Date.now() - t0} ms)`);
}

// ---------------------------------------------------------------------------

async function main() {
  const launcherFile = fileURLToPath(import.meta.url);
  log(`starting (node ${process.version}, pid ${process.pid}, uid ${process.getuid()}, ${launcherFile})`);

  let cfg;
  try {
    cfg = parseLaunchConfig(process.env.CODEBAY_LAUNCH);
  } catch (err) {
    log(`invalid configuration: ${err.message}`);
    process.exit(2);
  }

  const bundleDir = process.env.CODEBAY_EDITOR_DIR || '/opt/codebay/editor';
  const nodeBin = path.join(bundleDir, 'bin', 'node');
  const entry = path.join(bundleDir, 'node_modules', 'code-server', 'out', 'node', 'entry.js');
  for (const f of [nodeBin, entry]) {
    if (!fs.existsSync(f)) {
      log(`editor bundle incomplete: ${f} not found (CODEBAY_EDITOR_DIR=${bundleDir})`);
      process.exit(3);
    }
  }
  const bundleInfo = readJson(path.join(bundleDir, 'bundle.json'));
  if (bundleInfo) log(`editor bundle: code-server ${bundleInfo.codeServer}, VS Code ${bundleInfo.vscode}, node ${bundleInfo.node}`);

  // 1. user
  let resolved;
  try {
    resolved = resolveUser(cfg);
  } catch (err) {
    if (!err.userError) throw err;
    log(err.message);
    process.exit(2);
  }
  const { user, source } = resolved;
  const me = process.getuid();
  if (isRoot && user.uid !== me) {
    const setpriv = findExecutable('setpriv');
    switchUser = { uid: user.uid, gid: user.gid, setpriv };
    log(`user: ${user.name} (uid ${user.uid}, gid ${user.gid}, home ${user.home}; from ${source}; switching via ${setpriv ? 'setpriv' : 'uid/gid'})`);
  } else {
    log(`user: ${user.name} (uid ${user.uid}, gid ${user.gid}, home ${user.home}; from ${source})`);
  }

  // 2. environment
  const env = buildEnv({
    base: process.env,
    containerEnv: cfg.containerEnv,
    remoteEnv: cfg.remoteEnv,
    user,
    workspaceFolder: cfg.workspaceFolder,
    workspaceVolume: cfg.workspaceVolume,
    devcontainerId: cfg.devcontainerId,
  });
  // The spec's variables in the lifecycle commands and the settings, with the values the
  // container's environment got (${containerEnv:…} from it).
  const vars = { workspaceFolder: cfg.workspaceFolder, workspaceVolume: cfg.workspaceVolume, devcontainerId: cfg.devcontainerId };
  cfg.commands = substituteDeep(cfg.commands, env, vars);
  cfg.settings = substituteDeep(cfg.settings, env, vars);
  log(`env: containerEnv keys [${envKeys(cfg.containerEnv).join(', ')}], remoteEnv keys [${envKeys(cfg.remoteEnv).join(', ')}]`);

  // 3. workspace: the volume (the upload unpacked, the launcher's state) and the folder the
  // editor opens and the lifecycle commands run in (workspaceFolder: in the volume, or elsewhere).
  const volume = cfg.workspaceVolume;
  const ws = cfg.workspaceFolder;
  const stateDir = path.join(volume, '.codebay');
  const markerFile = path.join(stateDir, 'lifecycle.json');
  const marker = readJson(markerFile);
  fs.mkdirSync(volume, { recursive: true });
  await seedWorkspace(volume, stateDir);
  if (!marker && isRoot && user.uid !== 0) {
    const t0 = Date.now();
    const [changed, failed] = chownRecursive(volume, user.uid, user.gid);
    log(`workspace ${volume}: first start, chown -R ${user.uid}:${user.gid} (${changed} entries${failed ? `, ${failed} failed` : ''}, ${Date.now() - t0} ms)`);
  } else {
    log(`workspace ${volume}: ${marker ? 'existing (marker found)' : 'first start'}`);
  }
  if (ws !== volume && !fs.existsSync(ws)) {
    // A workspaceFolder the image does not have (in the volume or not): made, and the user's.
    mkdirOwned(ws, user);
    log(`workspace folder ${ws}: made (not in the image)`);
  }
  if (ws !== volume) log(`workspace folder ${ws} (the editor opens it; the volume is ${volume})`);
  // The user's /shared (a volume the runtime made, owned by root; the user's alone) is handed to
  // the user an instance runs as, so a non-root remoteUser can write there too.
  const shared = '/shared';
  try {
    if (isRoot && user.uid !== 0 && fs.statSync(shared).uid === 0) {
      fs.chownSync(shared, user.uid, user.gid);
      log(`shared ${shared}: handed to ${user.name} (${user.uid}:${user.gid})`);
    }
  } catch {
    /* no /shared here */
  }
  mkdirOwned(stateDir, user);
  const gitignore = path.join(stateDir, '.gitignore');
  if (!fs.existsSync(gitignore)) {
    fs.writeFileSync(gitignore, '# codebay launcher state\n*\n');
    chownQuiet(gitignore, user);
  }

  // 4. lifecycle: the phases the editor waits for (`waitFor`, default updateContentCommand) run
  // now; the rest run once the editor is up (step 8).
  const ctx = { cwd: ws, env };
  const state = marker && typeof marker === 'object' ? marker : { version: 1, workspaceFolder: ws };
  const saveMarker = () => {
    try {
      writeFileAtomic(markerFile, `${JSON.stringify(state, null, 2)}\n`, user);
    } catch (err) {
      log(`cannot write ${markerFile}: ${err.message}`);
    }
  };
  const lifecycle = new Lifecycle(cfg, ctx, state, saveMarker);
  const plan = startPlan(cfg.waitFor, createPhasesDone(marker) ? new Set(CREATE_PHASES) : donePhases(marker));
  if (createPhasesDone(marker)) log(`onCreate/updateContent/postCreate already ran on ${marker.createdAt ?? 'an earlier start'}; skipping`);
  else {
    state.createdAt ??= new Date().toISOString();
    state.user = user.name;
    state.phases ??= {};
  }
  log(`lifecycle: the editor waits for ${cfg.waitFor}`);
  await lifecycle.run(plan.filter((p) => p.beforeEditor).map((p) => p.phase));
  exitIfStopping();

  // 5. settings
  const userDataDir = path.join(user.home, '.local', 'share', 'code-server');
  const extensionsDir = path.join(userDataDir, 'extensions');
  const settingsFile = path.join(userDataDir, 'User', 'settings.json');
  const configFile = path.join(userDataDir, 'codebay-code-server.yaml');
  try {
    mkdirOwned(path.join(userDataDir, 'User'), user);
    mkdirOwned(extensionsDir, user);
    // An empty config file of our own: code-server then neither writes
    // ~/.config/code-server/config.yaml (with a generated password) nor picks
    // up an image's config.yaml that could change auth or the bind address.
    if (!fs.existsSync(configFile)) {
      fs.writeFileSync(configFile, '');
      chownQuiet(configFile, user);
    }
    let existing = {};
    if (fs.existsSync(settingsFile)) {
      try {
        existing = parseJsonc(fs.readFileSync(settingsFile, 'utf8')) ?? {};
      } catch (err) {
        const backup = `${settingsFile}.codebay-backup-${Date.now()}`;
        fs.copyFileSync(settingsFile, backup);
        chownQuiet(backup, user);
        log(`settings.json is not valid JSON (${err.message}); saved it as ${path.basename(backup)}`);
        existing = {};
      }
    }
    const keys = Object.keys(cfg.settings);
    if (keys.length || !fs.existsSync(settingsFile)) {
      const merged = mergeSettings(existing, cfg.settings);
      writeFileAtomic(settingsFile, `${JSON.stringify(merged, null, 2)}\n`, user);
      log(`settings: merged ${keys.length} key(s) into ${settingsFile}`);
    }
  } catch (err) {
    log(`settings: failed (${err.message}); continuing`);
  }

  // 6. editor
  exitIfStopping();
  const bind = { host: cfg.host, port: cfg.port, socket: cfg.socket };
  const args = editorArgs({
    ...bind,
    userDataDir,
    extensionsDir,
    configFile,
    workspaceFolder: ws,
    env,
    guarded: EDITOR_SECRET !== '',
  });
  log(`starting code-server on ${cfg.socket ? `socket ${cfg.socket}` : `${cfg.host}:${cfg.port}`} for ${ws}`);
  // Through codebay's parent process for code-server (code-server-parent.mjs): a faster start, and
  // the editor's first page is prepared as soon as it listens.
  const editorStart = editorEnv(env, EDITOR_SECRET);
  if (editorStart.dropped.length > 0) log(`not passed to code-server (codebay sets what they would change): ${editorStart.dropped.join(', ')}`);
  editor = spawnAsUser([nodeBin, CODE_SERVER_PARENT, entry, ...args], {
    cwd: ws,
    env: editorStart.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The editor's output is the container's (relayed as it comes); a session attaching is
  // VS Code's server saying so ("[ManagementConnection] New connection established.").
  for (const stream of [editor.stdout, editor.stderr]) {
    stream.pipe(stream === editor.stdout ? process.stdout : process.stderr, { end: false });
    readline.createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      if (EDITOR_ATTACHED.test(line)) lifecycle.attached();
    });
  }
  editor.on('error', (err) => {
    log(`cannot start the editor: ${err.message}`);
    process.exit(127);
  });
  editor.on('exit', (code, signal) => {
    const rc = exitCodeOf(code, signal, SIGNALS);
    log(`editor exited (${signal ? `signal ${signal}` : `code ${code}`}); exiting with ${rc}`);
    for (const child of tracked) killGroup(child, 'SIGKILL');
    process.exit(rc);
  });
  log(`editor pid ${editor.pid}`);

  const healthy = waitForHealth(bind, HEALTH_WAIT_MS).then((ok) => {
    if (ok) log('editor is healthy (/healthz 200)');
    else if (editor && editor.exitCode === null) log(`editor not healthy after ${HEALTH_WAIT_MS / 1000} s`);
    return ok;
  });

  // 7. extensions (background, never fatal)
  // 8. the lifecycle phases after `waitFor`, with the editor up
  const after = plan.filter((p) => !p.beforeEditor).map((p) => p.phase);
  lifecycle
    .run(after)
    .then(() => lifecycle.startEnded())
    .catch((err) => log(`lifecycle failed: ${err.message}`));

  installExtensions(cfg.extensions, {
    ...ctx,
    bind,
    nodeBin,
    entry,
    extensionsDir,
    userDataDir,
    configFile,
    healthy,
  }).catch((err) => log(`extension installation failed: ${err.message} (ignored)`));
}

main().catch((err) => {
  log(`fatal: ${err.stack || err.message}`);
  if (editor) {
    try {
      editor.kill('SIGTERM');
    } catch {
      /* ignore */
    }
  }
  process.exit(1);
});
