#!/usr/bin/env node
// codebay's stand-in for code-server's own parent process. Runs INSIDE an instance, as the
// editor's user, in place of `node …/code-server/out/node/entry.js ARGS`:
//
//   /opt/codebay/editor/bin/node /opt/codebay/launcher/code-server-parent.mjs …/entry.js ARGS
//
// code-server starts as two processes: a parent that loads nearly all of code-server to
// parse its arguments, then forks the real server, which loads it all again and asks the
// parent for the arguments over IPC (a "handshake"). The parent's own load (~0.3 s of CPU,
// in a container limited to 1 CPU) delays every editor's start. This parent loads
// code-server's argument module only (cli.js, ~0.06 s), works the arguments out the same way
// (parse, config file, setDefaults — which also takes $PASSWORD/$HASHED_PASSWORD out of the
// environment the server and its terminals inherit), forks the same server and answers its
// handshake the same way; it does not relaunch on updates (codebay disables them) nor keep
// code-server's rotating log files (the container log has everything).
//
// The moment the server says it listens, the parent asks it for its start page once: the
// server loads VS Code's server with the first page it serves (~0.3 s of CPU), which would
// otherwise come with the user's first page.
//
// If the bundle's code-server does not offer what this relies on, code-server starts as
// it always did. Dependency-free (node builtins only). What it relies on — out/node/cli.js
// exporting parse/readConfigFile/setDefaults and requiring only ./vscodeSocket and argon2
// beyond light modules, wrapper.js's handshake, the "HTTP server listening on" line — is the
// same in code-server 4.100.3 (Node 20) and 4.139.1 (Node 24); test/integration/
// editor-versions.test.ts checks that instances of both start through this parent.

import { fork } from 'node:child_process';
import http from 'node:http';
import Module, { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const TAG = '[codebay-launcher]';
/** code-server's entry point (`<bundle>/node_modules/code-server/out/node/entry.js`), then its arguments. */
const [entry, ...argv] = process.argv.slice(2);
const serverDir = path.dirname(entry);
const LISTENING = /HTTP server listening on (https?:\/\/\S+)/;

function log(msg) {
  process.stdout.write(`${TAG} ${new Date().toISOString()} ${msg}\n`);
}

/**
 * The server process: signals this parent gets go to it, and its exit code is this parent's
 * — 0 once it stopped because it was told to (as code-server's own parent exits).
 */
function supervise(child) {
  let stopping = false;
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
    process.on(sig, () => {
      stopping = true;
      try {
        child.kill(sig);
      } catch {
        /* gone already */
      }
    });
  }
  // 'close': its output is all relayed by then; exit once ours is written too.
  child.on('close', (code, signal) => {
    const rc = stopping ? 0 : typeof code === 'number' ? code : 128 + (os.constants.signals[signal] ?? 1);
    process.stdout.write('', () => process.stderr.write('', () => process.exit(rc)));
  });
}

/** code-server as it starts by itself (its own parent). */
function startPlain(why) {
  log(`starting code-server with its own parent process (${why})`);
  supervise(fork(entry, argv, { stdio: 'inherit' }));
}

/**
 * GET / the way a browser's first visit does — the redirect code-server answers with, then the
 * workbench page it points to (same server only) — so the first real visit finds that code
 * loaded. Only the side effect matters; errors are logged and ignored.
 */
function warmUp(url) {
  const target = new URL(url);
  if (target.hostname === '0.0.0.0') target.hostname = '127.0.0.1';
  if (target.hostname === '[::]') target.hostname = '[::1]';
  const started = Date.now();
  const statuses = [];
  const get = (where, hopsLeft) => {
    const req = http.get(where, { timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => {
        statuses.push(res.statusCode);
        const next = res.headers.location ? new URL(res.headers.location, where) : undefined;
        if (hopsLeft > 0 && res.statusCode >= 300 && res.statusCode < 400 && next?.host === target.host) get(next, hopsLeft - 1);
        else log(`editor warmed up (GET / answered ${statuses.join(' -> ')} in ${Date.now() - started} ms)`);
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => log(`editor warm-up failed: ${err.message} (ignored)`));
  };
  get(new URL('/', target), 1);
}

/** Copies a stream of the server's output to ours, calling `onLine` with each complete line. */
function relay(from, to, onLine) {
  let pending = '';
  from.on('data', (chunk) => {
    to.write(chunk);
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    if (pending.length > 65_536) pending = '';
    for (const line of lines) onLine(line);
  });
}

/**
 * code-server's argument module, loaded without two of its imports that parsing never uses:
 * the client of code-server's session socket (which pulls in express and the whole web app)
 * and argon2 (password hashing, a native module). Stand-ins go into this process's module
 * cache (`require.cache`); the server, a process of its own, loads the real ones.
 */
function loadArgumentParser() {
  const req = createRequire(path.join(serverDir, 'cli.js'));
  for (const unused of ['./vscodeSocket', 'argon2']) {
    const file = req.resolve(unused);
    const stub = new Module(file);
    stub.filename = file;
    stub.loaded = true;
    stub.exports = {};
    req.cache[file] = stub;
  }
  return req('./cli.js');
}

async function main() {
  let cli;
  try {
    cli = loadArgumentParser();
  } catch (err) {
    return startPlain(`cannot load its argument parser: ${err.message}`);
  }
  if (![cli.parse, cli.readConfigFile, cli.setDefaults].every((f) => typeof f === 'function')) return startPlain('its argument parser differs');
  const cliArgs = cli.parse(argv);
  const args = await cli.setDefaults(cliArgs, await cli.readConfigFile(cliArgs.config));
  const child = fork(entry, [], {
    env: { ...process.env, CODE_SERVER_PARENT_PID: String(process.pid), NODE_EXEC_PATH: process.execPath },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  supervise(child);
  child.on('message', (message) => {
    if (message && message.type === 'handshake') child.send({ type: 'handshake', args });
  });
  let warmed = false;
  const onLine = (line) => {
    const m = warmed ? null : LISTENING.exec(line);
    if (!m) return;
    warmed = true;
    warmUp(m[1]);
  };
  relay(child.stdout, process.stdout, onLine);
  relay(child.stderr, process.stderr, onLine);
}

main().catch((err) => {
  log(`code-server parent: ${err.stack || err.message}`);
  process.exit(1);
});
