// Requests per second and latency of the real gateway (real Redis) with autocannon:
// GET /api/instances/{id} and POST /api/instances/simple (enqueue only: no provisioner
// runs), at 50 and 500 connections, each next to its floor measured in the same run: a bare
// node:http server (bench/lib/gateway-floor.ts, a process of its own) doing the same bearer
// check, the same Redis reads and writes and answering the same bytes. Creates spread over
// many users (one per request), as real traffic is: a user's quota check reads that user's
// instances. Prints a table (gateway, floor, gateway/floor) and one JSON line. No assertions.
//
//   node_modules/.bin/tsx bench/gateway-load.ts [--seconds=10] [--route=get|post] [--cpu-prof=DIR]
//
// --cpu-prof=DIR writes the gateway's and the floor's V8 CPU profiles (.cpuprofile) into DIR;
// bench/lib/profile-top.ts summarises one.
import { redisKeys } from '@codebay/contracts';
import { createRedis } from '@codebay/platform';
import autocannon from 'autocannon';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import compile from '../test/support/build.ts';
import { freePort } from '../test/support/ports.ts';
import { startStack } from '../test/support/stack.ts';

const option = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const seconds = Number(option('seconds') ?? 10);
const only = option('route');
const cpuProf = option('cpu-prof');
// Node refuses --cpu-prof in NODE_OPTIONS; a module loaded with --import records the profile instead.
const profiling = cpuProf
  ? { NODE_OPTIONS: `--import ${fileURLToPath(new URL('lib/cpu-profile.mjs', import.meta.url))}`, CODEBAY_CPU_PROF_DIR: resolve(cpuProf) }
  : {};

// The stack runs the services from dist/: measure the current code, never a stale build.
compile();
const user = `load-${randomBytes(3).toString('hex')}`;
const stack = await startStack({
  name: 'load',
  services: ['gateway'],
  env: { LOG_LEVEL: 'warn', MAX_INSTANCES_PER_USER: '10000000', MAX_QUEUED_BUILDS_PER_USER: '10000000', ...profiling },
});
const auth = { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' };

/**
 * CPU time (user + system) a process has used so far, µs. Per request it hardly depends on
 * what else runs on the machine, unlike req/s.
 */
function cpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime (fields 14 and 15 of the line), in clock ticks of 10 ms.
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

interface Floor {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** The floor server, on the stack's Redis, queue prefix, admin token and platform key. */
async function startFloor(): Promise<Floor> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('lib/gateway-floor.ts', import.meta.url))], {
    env: { ...stack.env, ...profiling, FLOOR_PORT: String(port), FLOOR_PUBLIC_URL: stack.url },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const stop = () =>
    new Promise<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once('exit', () => done());
      child.kill('SIGTERM');
    });
  await new Promise<void>((ready, fail) => {
    const timer = setTimeout(() => {
      void stop();
      fail(new Error('the floor server did not start in 30 s'));
    }, 30_000);
    child.once('exit', (code) => fail(new Error(`the floor server exited with ${code}`)));
    child.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) {
        clearTimeout(timer);
        ready();
      }
    });
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid!, stop };
}

type Target = 'gateway' | 'floor';
interface Row {
  route: string;
  target: Target;
  connections: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
  non2xx: number;
  /** The server process's own CPU time per request (Redis and the load generator not included). */
  cpu_us_per_req: number;
}
/** gateway / floor: req/s (1 = as fast as the floor) and CPU per request (1 = as cheap). */
interface Ratio {
  route: string;
  connections: number;
  rps: number;
  cpu_per_req: number;
  p99_gateway_ms: number;
  p99_floor_ms: number;
}
const rows: Row[] = [];
const ratios: Ratio[] = [];
const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 100) / 100 : 0);
let floor: Floor | undefined;
try {
  floor = await startFloor();
  const first = await stack.api('/api/instances/simple', {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ user_id: user, base_image: 'debian:bookworm' }),
  });
  if (first.status !== 202) throw new Error(`create answered ${first.status}: ${await first.text()}`);
  const { instance_id: id } = (await first.json()) as { instance_id: string };
  // The floor must answer what the gateway answers, or the comparison means nothing.
  const bodies = await Promise.all([stack.url, floor.url].map(async (base) => (await fetch(`${base}/api/instances/${id}`, { headers: auth })).text()));
  if (bodies[0] !== bodies[1]) throw new Error(`the floor answers differently from the gateway:\n${bodies[0]}\n${bodies[1]}`);

  const targets: [Target, string, number][] = [
    ['gateway', stack.url, stack.processes.get('gateway')!.pid!],
    ['floor', floor.url, floor.pid],
  ];
  const get = { route: 'GET /api/instances/{id}', method: 'GET' as const, path: `/api/instances/${id}` };
  const post = { route: 'POST /api/instances/simple', method: 'POST' as const, path: '/api/instances/simple' };
  const cases = [get, post].filter((c) => !only || c.method.toLowerCase() === only);
  let n = 0;
  const createBody = () => JSON.stringify({ user_id: `${user}-${(n++).toString(36)}`, base_image: 'debian:bookworm' });
  const load = (base: string, c: typeof get | typeof post, connections: number, duration: number) =>
    autocannon({
      url: `${base}${c.path}`,
      method: c.method,
      headers: auth,
      connections,
      duration,
      // Each create for a user of its own.
      ...(c.method === 'POST' ? { requests: [{ method: 'POST' as const, setupRequest: (req: autocannon.Request) => ({ ...req, body: createBody() }) }] } : {}),
    });
  // A short unmeasured round on each, so neither is measured cold (JIT, connection pools).
  for (const [, base] of targets) await load(base, get, 50, 2);
  for (const c of cases) {
    for (const connections of [50, 500]) {
      const measured = new Map<Target, Row>();
      for (const [target, base, pid] of targets) {
        process.stderr.write(`[load] ${target}: ${c.route} with ${connections} connections for ${seconds} s\n`);
        const cpuBefore = cpuUs(pid);
        const r = await load(base, c, connections, seconds);
        const row: Row = {
          route: c.route,
          target,
          connections,
          rps: Math.round(r.requests.average),
          p50_ms: r.latency.p50,
          p99_ms: r.latency.p99,
          errors: r.errors,
          non2xx: r.non2xx,
          cpu_us_per_req: Math.round((cpuUs(pid) - cpuBefore) / Math.max(1, r.requests.total)),
        };
        rows.push(row);
        measured.set(target, row);
      }
      const gateway = measured.get('gateway')!;
      const bare = measured.get('floor')!;
      ratios.push({
        route: c.route,
        connections,
        rps: ratio(gateway.rps, bare.rps),
        cpu_per_req: ratio(gateway.cpu_us_per_req, bare.cpu_us_per_req),
        p99_gateway_ms: gateway.p99_ms,
        p99_floor_ms: bare.p99_ms,
      });
    }
  }
} finally {
  await floor?.stop();
  await stack.stop();
  // The bench users' records go with it (the floor's creates included).
  const redis = createRedis(stack.env.REDIS_URL!, 'load-cleanup');
  for (const set of await redis.keys(redisKeys.userInstances(`${user}*`))) {
    const ids = await redis.smembers(set);
    if (ids.length > 0) {
      await redis.srem(redisKeys.allInstances(), ...ids);
      await redis.del(...ids.map((x) => redisKeys.instance(x)));
    }
    await redis.del(set);
  }
  await redis.quit();
}
console.log('route                        target   conns     req/s   p50 ms   p99 ms  errors  non-2xx  CPU µs/req');
for (const r of rows) {
  console.log(
    `${r.route.padEnd(28)} ${r.target.padEnd(8)} ${String(r.connections).padStart(5)} ${String(r.rps).padStart(9)} ${String(r.p50_ms).padStart(8)} ${String(r.p99_ms).padStart(8)} ${String(r.errors).padStart(7)} ${String(r.non2xx).padStart(8)} ${String(r.cpu_us_per_req).padStart(11)}`,
  );
}
console.log('\ngateway / floor              conns   req/s   CPU/req   p99 gateway / floor ms');
for (const r of ratios) {
  console.log(
    `${r.route.padEnd(28)} ${String(r.connections).padStart(5)} ${r.rps.toFixed(2).padStart(7)} ${r.cpu_per_req.toFixed(2).padStart(9)}   ${String(r.p99_gateway_ms).padStart(11)} / ${r.p99_floor_ms}`,
  );
}
if (cpuProf) process.stderr.write(`[load] CPU profiles in ${resolve(cpuProf)}\n`);
console.log(JSON.stringify({ bench: 'gateway-load', at: new Date().toISOString(), seconds, rows, ratios }));
