/**
 * End-to-end timing: from POST to an editor that answers through the gateway,
 * split by phase, cold and warm, next to the same config built and started by
 * hand with the plain Dev Containers CLI and `docker run`.
 *
 *   cd /work/main && node_modules/.bin/tsx bench/e2e-timing.ts [python] [simple] [--warm=N] [--no-plain] [--no-codebay] [--no-warmup]
 *
 * Runs on the real components (Redis, dockerd, registry, editor bundle; see
 * /var/lib/codebay/local.env) and starts the real gateway, builder and
 * provisioner through test/support/stack.ts. Prints a table and, last, one JSON line.
 * No assertions: numbers only. Makes the daemon's build cache cold before each
 * cold run (removes codebay-devcontainer:*, vsc-* and dev_container_* images and
 * dangling layers; keeps debian:bookworm and images containers use), so do not
 * run it while the test suites use the same daemon. Each invocation builds its own
 * copy of a sample (one more containerEnv entry): the cold run builds a configuration
 * the registry has never seen; the warm runs request exactly that again, which codebay
 * answers from the registry (build key cache hit) while the plain CLI builds again.
 */
import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI_JS, DOCKER_BIN, makeCold, run, type ColdReport } from './lib/daemon.ts';
import { components } from '../test/support/components.ts';
import { fetchWorkbench } from '../test/support/editor.ts';
import { testDocker } from '../test/support/docker.ts';
import { createFromDevcontainer, createFromWorkspace, getInstance, newConfigWorkspace, packWorkspace, uniqueDevcontainer } from '../test/support/instances.ts';
import { startStack, type Stack } from '../test/support/stack.ts';
import { waitFor } from '../test/support/wait.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SAMPLES = join(ROOT, 'samples');

const DEADLINE = { build: 15 * 60_000, running: 5 * 60_000, editor: 2 * 60_000, deleted: 60_000, plainBuild: 15 * 60_000, plainEditor: 2 * 60_000 };
const POLL_MS = 100;

type ConfigName = 'python' | 'simple' | 'warmup';
/** `change`: the config with one line changed since the last run (a new build key; the earlier layers reusable). */
type Cache = 'cold' | 'warm' | 'change';

interface BenchConfig {
  name: ConfigName;
  describe: string;
  /** Folder the plain CLI builds (copied to a temp dir first). */
  plainWorkspace: () => string;
  create: (stack: Stack, user: string) => Promise<InstanceResponse>;
  prepare: () => Promise<void>;
  /** Changes one line of the config (each call a new value), for a `change` run. */
  change: () => Promise<void>;
}

let changes = 0;

let pythonTarball: string | undefined;
let pythonDir: string | undefined;
let simpleFile: string | undefined;

/**
 * Not measured: one instance from POST /api/instances/simple (base image, no build), so the
 * fresh provisioner and gateway processes have served an instance before the cold run (a
 * long-running deployment has). Leaves the build cache alone.
 */
const WARMUP: BenchConfig = {
  name: 'warmup',
  describe: 'POST /api/instances/simple with base_image debian:bookworm (no build), before the measured runs',
  plainWorkspace: () => {
    throw new Error('no plain run for the warm-up');
  },
  prepare: async () => undefined,
  change: async () => undefined,
  create: async (stack, user) => {
    const res = await stack.api('/api/instances/simple', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: user, base_image: 'debian:bookworm' }),
    });
    if (res.status !== 202) throw new Error(`create failed: ${res.status} ${await res.text()}`);
    return (await res.json()) as InstanceResponse;
  },
};

const CONFIGS: Record<Exclude<ConfigName, 'warmup'>, BenchConfig> = {
  python: {
    name: 'python',
    describe: 'samples/python as a workspace tarball (Dockerfile + local feature), POST /api/instances/workspace',
    plainWorkspace: () => {
      const dir = mkdtempSync(join(tmpdir(), 'codebay-bench-ws-'));
      cpSync(pythonDir!, dir, { recursive: true });
      return dir;
    },
    prepare: async () => {
      // This invocation's own copy: the cold run builds a configuration the registry has never seen;
      // the warm runs request exactly that again (codebay: a build-key hit).
      pythonDir ??= newConfigWorkspace(join(SAMPLES, 'python'));
      pythonTarball ??= await packWorkspace(pythonDir);
    },
    // One more line at the end of the Dockerfile: a new last layer, everything before it reusable.
    change: async () => {
      const dockerfile = join(pythonDir!, '.devcontainer', 'Dockerfile');
      writeFileSync(
        dockerfile,
        `${readFileSync(dockerfile, 'utf8').replace(/\nRUN echo change-\d+ > \/opt\/sample\/change\n$/, '\n')}RUN echo change-${++changes} > /opt/sample/change\n`,
      );
      pythonTarball = await packWorkspace(pythonDir!);
    },
    create: (stack, user) => createFromWorkspace(stack, user, pythonTarball!),
  },
  simple: {
    name: 'simple',
    describe: 'samples/simple-devcontainer.json (image: debian:bookworm), POST /api/instances/devcontainer',
    plainWorkspace: () => {
      const dir = mkdtempSync(join(tmpdir(), 'codebay-bench-ws-'));
      mkdirSync(join(dir, '.devcontainer'));
      cpSync(simpleFile!, join(dir, '.devcontainer', 'devcontainer.json'));
      return dir;
    },
    prepare: async () => {
      simpleFile ??= await uniqueDevcontainer(join(SAMPLES, 'simple-devcontainer.json'));
    },
    // The value of the containerEnv entry this run added: one line of the devcontainer.json.
    change: async () => {
      writeFileSync(
        simpleFile!,
        readFileSync(simpleFile!, 'utf8').replace(/("CODEBAY_TEST_RUN":\s*")[^"]*"/, `$1change-${++changes}-${randomBytes(3).toString('hex')}"`),
      );
    },
    create: (stack, user) => createFromDevcontainer(stack, user, simpleFile!),
  },
};

// ---------------------------------------------------------------------------------------------
// small helpers

const now = () => performance.now();
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);

const until = <T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, intervalMs = POLL_MS): Promise<T> =>
  waitFor(what, check, timeoutMs, intervalMs);

/**
 * Status of a GET with node:http, as the launcher probes. Not fetch(): in a Node 20 process whose
 * first fetch() meets a connection reset (a just-started container whose editor does not listen
 * yet), that fetch never settles and holds no handle (seen here; see bench/README.md).
 */
function httpStatus(url: string, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const req = httpGet(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
  });
}

const ms = (a: string | null | undefined, b: string | null | undefined) => (a && b ? Date.parse(b) - Date.parse(a) : null);

async function waitWorkbench(url: string, timeoutMs: number): Promise<{ polls: number; finalUrl: string }> {
  const jar = new Map<string, string>();
  let polls = 0;
  let lastStatus = 0;
  const finalUrl = await until(`the workbench at ${url.replace(/tkn=[^&]+/, 'tkn=…')} (last HTTP ${lastStatus})`, timeoutMs, async () => {
    polls++;
    const r = await fetchWorkbench(url, jar);
    lastStatus = r.status;
    return r.ok ? r.finalUrl : undefined;
  });
  return { polls, finalUrl };
}

// ---------------------------------------------------------------------------------------------
// the daemon: make the build cache cold, clean up

const docker = testDocker();
async function removeContainer(id: string): Promise<void> {
  await docker
    .getContainer(id)
    .remove({ force: true, v: true })
    .catch(() => undefined);
}

async function removeImage(ref: string): Promise<void> {
  await docker
    .getImage(ref)
    .remove({ force: true })
    .catch(() => undefined);
}

// ---------------------------------------------------------------------------------------------
// codebay: POST → Running → workbench through the gateway

interface Row {
  config: ConfigName;
  path: 'codebay' | 'plain';
  cache: Cache;
  /** Phase durations in ms (null when the phase does not apply). */
  phases: Record<string, number | null>;
  total_ms: number;
  note?: string;
}

const created: { stack: Stack; id: string }[] = [];
const plainContainers = new Set<string>();
const plainImages = new Set<string>();
const benchImages = new Set<string>();

async function deleteInstance(stack: Stack, id: string): Promise<void> {
  await stack.api(`/api/instances/${id}`, { method: 'DELETE' }).catch(() => undefined);
  await until(
    `${id} to be Deleted`,
    DEADLINE.deleted,
    async () => {
      const res = await stack.api(`/api/instances/${id}`);
      if (res.status === 404) return true;
      const inst = (await res.json()) as InstanceResponse;
      return inst.status === 'Deleted' ? true : undefined;
    },
    250,
  ).catch((err: Error) => log(`warning: ${err.message}`));
  const i = created.findIndex((c) => c.id === id);
  if (i !== -1) created.splice(i, 1);
}

/** Timestamps from the launcher's log (`[codebay-launcher] ISO message`): when it started, spawned code-server, saw /healthz 200. */
async function launcherMarks(container: string): Promise<{ started?: string; editorSpawned?: string; healthy?: string; notes: string[] }> {
  const raw = (await docker
    .getContainer(container)
    .logs({ stdout: true, stderr: true, follow: false })
    .catch(() => Buffer.alloc(0))) as unknown as Buffer;
  const out: { started?: string; editorSpawned?: string; healthy?: string; notes: string[] } = { notes: [] };
  for (const m of raw.toString('utf8').matchAll(/\[codebay-launcher\] (\d{4}-\d\d-\d\dT[\d:.]+Z) ([^\n]*)/g)) {
    const [, at, msg] = m as unknown as [string, string, string];
    if (msg.startsWith('starting (node')) out.started ??= at;
    else if (msg.startsWith('starting code-server')) out.editorSpawned ??= at;
    else if (msg.startsWith('editor is healthy')) out.healthy ??= at;
    else if (/done in \d+ ms|FAILED|^extension |installing \d+ extension|warmed up|warm-up/.test(msg)) out.notes.push(msg.slice(0, 160));
  }
  return out;
}

/** The instance once its image's push has ended (or it says why it will not): the push may outlast Running. */
async function waitPushed(stack: Stack, id: string): Promise<InstanceResponse> {
  return until(`the push of ${id}'s image to end`, DEADLINE.build, async () => {
    const cur = await getInstance(stack, id);
    return cur.timings.push_ended_at || cur.warning || cur.status === 'Failed' ? cur : undefined;
  });
}

async function codebayRun(stack: Stack, cfg: BenchConfig, user: string, cache: Cache): Promise<Row> {
  const t0 = now();
  const post0 = Date.now();
  const inst = await cfg.create(stack, user);
  const postMs = now() - t0;
  created.push({ stack, id: inst.instance_id });
  log(`${cfg.name}/codebay/${cache}: ${inst.instance_id} queued (POST ${Math.round(postMs)} ms)`);

  let lastStatus = '';
  const running = await until(`${inst.instance_id} to be Running`, DEADLINE.build + DEADLINE.running, async () => {
    const cur = await getInstance(stack, inst.instance_id);
    if (cur.status !== lastStatus) {
      lastStatus = cur.status;
      log(`${cfg.name}/codebay/${cache}: ${cur.status} after ${((now() - t0) / 1000).toFixed(1)} s`);
    }
    if (cur.status === 'Failed') throw Object.assign(new Error(`${inst.instance_id} failed in ${cur.phase}: ${cur.error}`), { fatal: true });
    return cur.status === 'Running' ? cur : undefined;
  });
  const runningSeenMs = now() - t0;
  if (running.devcontainer_image) benchImages.add(running.devcontainer_image);
  await waitWorkbench(inst.url, DEADLINE.editor);
  const totalMs = now() - t0;
  const readyAt = new Date(post0 + totalMs).toISOString();
  log(`${cfg.name}/codebay/${cache}: editor answers through the gateway after ${(totalMs / 1000).toFixed(2)} s`);

  const launcher = await launcherMarks(stack.names.container(inst.instance_id));

  // The push may end after the instance runs (it starts from the image on the builder's daemon):
  // wait for it, so the row has it (not part of TOTAL).
  const pushed = running.timings.build_started_at ? await waitPushed(stack, inst.instance_id) : running;
  const t = pushed.timings;
  const built = Boolean(t.build_ended_at);
  // Provisioning starts at the hand-off: when the image was built if the instance started from
  // it before its push ended, else when the push ended (or, with nothing built, when queued).
  const early = built && Boolean(t.provision_started_at) && (!t.push_ended_at || Date.parse(t.provision_started_at!) < Date.parse(t.push_ended_at));
  const provisionFrom = built ? (early ? t.build_ended_at : t.push_ended_at) : t.queued_at;
  return {
    config: cfg.name,
    path: 'codebay',
    cache,
    phases: {
      accept: Math.round(postMs),
      queued: built ? ms(t.queued_at, t.build_started_at) : null,
      build: built ? ms(t.build_started_at, t.build_ended_at) : null,
      push: built ? ms(t.build_ended_at, t.push_ended_at) : null,
      // > 0: the push ended this long after the instance was Running (it did not wait for it).
      push_after_running: built ? ms(t.running_at, t.push_ended_at) : null,
      handoff: ms(provisionFrom, t.provision_started_at),
      provision: ms(provisionFrom, t.container_started_at),
      editor_start: ms(t.container_started_at, t.running_at),
      gateway_ready: ms(t.running_at, readyAt),
      running_seen: Math.round(runningSeenMs),
      // editor_start split by the launcher's own log lines
      container_boot: ms(t.container_started_at, launcher.started),
      launcher_setup: ms(launcher.started, launcher.editorSpawned),
      code_server: ms(launcher.editorSpawned, launcher.healthy),
      ready_noticed: ms(launcher.healthy, t.running_at),
    },
    ...(launcher.notes.length ? { note: launcher.notes.join('; ') } : {}),
    total_ms: Math.round(totalMs),
  };
}

// ---------------------------------------------------------------------------------------------
// plain: devcontainer build + docker run code-server by hand

function editorBundle(): string {
  const c = components();
  const fromEnv = process.env.CODEBAY_EDITOR_BUNDLE;
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const dir = readdirSync(c.editorRoot)
    .filter((d) => d.startsWith('code-server-'))
    .sort()
    .at(-1);
  if (!dir) throw new Error(`no editor bundle under ${c.editorRoot}`);
  return join(c.editorRoot, dir);
}

async function plainRun(cfg: BenchConfig, cache: Cache): Promise<Row> {
  const c = components();
  const env = { ...process.env, DOCKER_HOST: c.dockerHost };
  const workspace = cfg.plainWorkspace();
  const cliTmp = mkdtempSync(join(tmpdir(), 'codebay-bench-cli-'));
  const image = `codebay-bench-plain-${cfg.name}-${randomBytes(3).toString('hex')}:latest`;
  plainImages.add(image);
  try {
    const t0 = now();
    const build = await run(
      process.execPath,
      [CLI_JS, 'build', '--workspace-folder', workspace, '--image-name', image, '--no-lockfile', '--buildkit', 'auto', '--docker-path', DOCKER_BIN],
      { env: { ...env, TMPDIR: cliTmp }, cwd: workspace, timeoutMs: DEADLINE.plainBuild },
    );
    const buildMs = now() - t0;
    if (build.code !== 0)
      throw new Error(
        `plain devcontainer build failed (${build.code}): ${build.stdout.trim().split('\n').at(-1)}\n${build.stderr.split('\n').slice(-15).join('\n')}`,
      );
    log(`${cfg.name}/plain/${cache}: devcontainer build ${(buildMs / 1000).toFixed(2)} s`);

    const t1 = now();
    const started = await run(
      DOCKER_BIN,
      [
        'run',
        '-d',
        '--label',
        'codebay.bench=plain',
        '-p',
        '127.0.0.1::8080',
        '-e',
        'HOME=/tmp',
        '-v',
        `${editorBundle()}:/opt/codebay/editor:ro`,
        image,
        '/opt/codebay/editor/bin/node',
        '/opt/codebay/editor/node_modules/code-server/out/node/entry.js',
        '--auth',
        'none',
        '--bind-addr',
        '0.0.0.0:8080',
        '/tmp',
      ],
      { env },
    );
    if (started.code !== 0) throw new Error(`docker run failed: ${started.stderr}`);
    const containerId = started.stdout.trim();
    plainContainers.add(containerId);
    const runMs = now() - t1;
    const port = await run(DOCKER_BIN, ['port', containerId, '8080/tcp'], { env });
    const hostPort = /:(\d+)\s*$/m.exec(port.stdout)?.[1];
    if (!hostPort) throw new Error(`no published port: ${port.stdout} ${port.stderr}`);
    const base = `http://127.0.0.1:${hostPort}`;
    await until(`${base}/healthz`, DEADLINE.plainEditor, async () => {
      return (await httpStatus(`${base}/healthz`, 2_000)) === 200 ? true : undefined;
    });
    const healthzMs = now() - t0;
    const editorStartMs = now() - t1;
    await waitWorkbench(`${base}/`, DEADLINE.plainEditor);
    const totalMs = now() - t0;
    log(`${cfg.name}/plain/${cache}: /healthz 200 after ${(healthzMs / 1000).toFixed(2)} s, workbench after ${(totalMs / 1000).toFixed(2)} s`);
    await removeContainer(containerId);
    plainContainers.delete(containerId);
    return {
      config: cfg.name,
      path: 'plain',
      cache,
      phases: {
        build: Math.round(buildMs),
        docker_run: Math.round(runMs),
        editor_start: Math.round(editorStartMs),
        healthz_total: Math.round(healthzMs),
        workbench_after_healthz: Math.round(totalMs - healthzMs),
      },
      total_ms: Math.round(totalMs),
    };
  } finally {
    rmSync(workspace, { recursive: true, force: true });
    rmSync(cliTmp, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// output

const s = (v: number | null | undefined) => (v === null || v === undefined ? '-' : (v / 1000).toFixed(2));

function table(rows: Row[]): string {
  const out: string[] = [];
  const codebay = rows.filter((r) => r.path === 'codebay');
  const plain = rows.filter((r) => r.path === 'plain');
  const pad = (cols: string[], widths: number[]) => cols.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  if (codebay.length) {
    const head = ['config', 'cache', 'accept', 'queued', 'build', 'push', 'provision', '(handoff)', 'editor', 'gw-ready', 'TOTAL', 'push>run'];
    const w = [7, 5, 7, 7, 7, 7, 9, 9, 7, 8, 7, 8];
    out.push('codebay (seconds; server timings, accept/gw-ready/TOTAL measured by the client)');
    out.push(pad(head, w));
    for (const r of codebay) {
      const p = r.phases;
      out.push(
        pad(
          [
            r.config,
            r.cache,
            s(p.accept),
            s(p.queued),
            s(p.build),
            s(p.push),
            s(p.provision),
            s(p.handoff),
            s(p.editor_start),
            s(p.gateway_ready),
            s(r.total_ms),
            s(p.push_after_running),
          ],
          w,
        ),
      );
    }
    out.push('');
    const dh = ['config', 'cache', 'boot', 'launcher', 'code-server', 'noticed'];
    const dw = [7, 5, 7, 8, 11, 7];
    out.push('codebay editor phase split (container started → launcher → code-server spawned → /healthz 200 → Running)');
    out.push(pad(dh, dw));
    for (const r of codebay) {
      const p = r.phases;
      out.push(pad([r.config, r.cache, s(p.container_boot), s(p.launcher_setup), s(p.code_server), s(p.ready_noticed)], dw));
    }
    out.push('');
  }
  if (plain.length) {
    const head = ['config', 'cache', 'build', 'docker-run', 'editor', 'healthz', '+workbench', 'TOTAL'];
    const w = [7, 5, 7, 10, 7, 7, 10, 7];
    out.push('plain Dev Containers CLI + docker run (seconds; editor = docker run → /healthz 200)');
    out.push(pad(head, w));
    for (const r of plain) {
      const p = r.phases;
      out.push(pad([r.config, r.cache, s(p.build), s(p.docker_run), s(p.editor_start), s(p.healthz_total), s(p.workbench_after_healthz), s(r.total_ms)], w));
    }
    out.push('');
  }
  const ratios = ratiosOf(rows);
  if (Object.keys(ratios).length) {
    out.push('codebay TOTAL / plain TOTAL (median of the warm runs)');
    for (const [k, v] of Object.entries(ratios)) out.push(`  ${k.padEnd(12)} ${v.toFixed(2)}x`);
  }
  return out.join('\n');
}

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
}

/** codebay TOTAL / plain TOTAL per config and cache state (medians when there are several warm runs). */
function ratiosOf(rows: Row[]): Record<string, number> {
  const r: Record<string, number> = {};
  for (const config of new Set(rows.map((x) => x.config))) {
    for (const cache of ['cold', 'warm', 'change'] as const) {
      const of = (path: Row['path']) => rows.filter((x) => x.config === config && x.cache === cache && x.path === path).map((x) => x.total_ms);
      const cb = of('codebay');
      const pl = of('plain');
      if (cb.length && pl.length) r[`${config}/${cache}`] = Math.round((median(cb) / median(pl)) * 100) / 100;
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------

async function cleanup(): Promise<void> {
  for (const { stack, id } of [...created]) await deleteInstance(stack, id);
  for (const id of plainContainers) await removeContainer(id);
  for (const img of [...plainImages, ...benchImages]) await removeImage(img);
  if (pythonTarball) rmSync(dirname(pythonTarball), { recursive: true, force: true });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const names = args.filter((a) => !a.startsWith('--')) as (keyof typeof CONFIGS)[];
  const unknown = args.filter((a) => a.startsWith('--') && !/^--(no-plain|no-codebay|no-warmup|warm=\d+)$/.test(a));
  if (unknown.length) throw new Error(`unknown option ${unknown.join(' ')}; options: --warm=N --no-plain --no-codebay --no-warmup`);
  for (const n of names) if (!(n in CONFIGS)) throw new Error(`unknown config ${n}; choose from ${Object.keys(CONFIGS).join(', ')}`);
  const selected = (names.length ? names : (['python', 'simple'] as const)).map((n) => CONFIGS[n]);
  const doPlain = !args.includes('--no-plain');
  const doCodebay = !args.includes('--no-codebay');
  const warmRuns = Number(/^--warm=(\d+)$/.exec(args.find((a) => a.startsWith('--warm=')) ?? '')?.[1] ?? 1);
  const runs: Cache[] = ['cold', ...Array.from({ length: Math.max(1, warmRuns) }, () => 'warm' as const), 'change'];

  const c = components();
  const dockerVersion = await docker.version();
  log(`daemon ${c.dockerHost} (Docker ${dockerVersion.Version}), registry ${c.registry}, editor ${editorBundle()}, CLI ${CLI_JS}`);

  const rows: Row[] = [];
  const colds: Record<string, ColdReport> = {};
  let stack: Stack | undefined;
  let warmup: Row | undefined;
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log('interrupted: cleaning up (again to force)');
    void cleanup()
      .then(() => stack?.stop())
      .finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // Keeps the event loop alive while a fetch() is stuck (see httpStatus); its timeout then still fires.
  const keepAlive = setInterval(() => undefined, 60_000);
  const started = Date.now();
  const user = `bench-${randomBytes(3).toString('hex')}`;
  try {
    if (doCodebay) {
      stack = await startStack({ name: 'bench', env: { DOCKER_PATH: DOCKER_BIN, LOG_LEVEL: 'info' } });
      log(`stack up at ${stack.url} (logs in .tmp/test-logs)`);
      if (!args.includes('--no-warmup')) {
        warmup = await codebayRun(stack, WARMUP, user, 'cold');
        await deleteInstance(stack, created.at(-1)!.id);
      }
    }
    for (const cfg of selected) {
      await cfg.prepare();
      if (stack) {
        const cold = await makeCold(docker);
        colds[`${cfg.name}/codebay`] = cold;
        log(
          `cold: removed ${cold.removedTags} tags, pruned ${cold.prunedImages} images, ${cold.remaining} images left${cold.keptInUse.length ? `, kept (in use) ${cold.keptInUse.join(' ')}` : ''}`,
        );
        for (const cache of runs) {
          if (cache === 'change') await cfg.change();
          const row = await codebayRun(stack, cfg, user, cache);
          rows.push(row);
          await deleteInstance(stack, created.at(-1)!.id);
        }
      }
      if (doPlain) {
        const cold = await makeCold(docker);
        colds[`${cfg.name}/plain`] = cold;
        log(
          `cold: removed ${cold.removedTags} tags, pruned ${cold.prunedImages} images, ${cold.remaining} images left${cold.keptInUse.length ? `, kept (in use) ${cold.keptInUse.join(' ')}` : ''}`,
        );
        for (const cache of runs) {
          if (cache === 'change') await cfg.change();
          rows.push(await plainRun(cfg, cache));
        }
      }
    }
  } finally {
    await cleanup();
    if (stack) {
      await stack.stop();
      rmSync(dirname(stack.artifactDir), { recursive: true, force: true }); // the stack's artifacts and build folders
      // The per-user shared volume outlives instances by design; this user was the bench's own.
      await docker
        .getVolume(stack.names.sharedVolume(user))
        .remove()
        .catch(() => undefined);
    }
    clearInterval(keepAlive);
  }

  const output = table(rows);
  process.stdout.write(`\n${selected.map((c2) => `${c2.name}: ${c2.describe}`).join('\n')}\n\n${output}\n\n`);
  process.stdout.write(
    `${JSON.stringify({
      bench: 'e2e-timing',
      at: new Date(started).toISOString(),
      docker: dockerVersion.Version,
      editor: editorBundle().split('/').at(-1),
      rows,
      ratios: ratiosOf(rows),
      warmup: warmup ?? null,
      cold: colds,
    })}\n`,
  );
}

main().catch((err: Error) => {
  log(`failed: ${err.stack ?? err.message}`);
  void cleanup().finally(() => process.exit(1));
});
