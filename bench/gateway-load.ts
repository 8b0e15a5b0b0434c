// Requests per second and latency of the real gateway (real Redis) with autocannon:
// GET /api/instances/{id} and POST /api/instances/simple (enqueue only: no provisioner
// runs), at 50 and 500 connections. Creates spread over many users (one per request), as
// real traffic is: a user's quota check reads that user's instances. Prints a table and
// one JSON line. No assertions.
//
//   node_modules/.bin/tsx bench/gateway-load.ts [--seconds=10]
import { createRedis } from '@codebay/platform';
import autocannon from 'autocannon';
import { randomBytes } from 'node:crypto';
import { startStack } from '../test/support/stack.ts';

const seconds = Number(process.argv.find((a) => a.startsWith('--seconds='))?.split('=')[1] ?? 10);
const user = `load-${randomBytes(3).toString('hex')}`;
const stack = await startStack({
  name: 'load',
  services: ['gateway'],
  env: { LOG_LEVEL: 'warn', MAX_INSTANCES_PER_USER: '10000000', MAX_QUEUED_BUILDS_PER_USER: '10000000' },
});
const auth = { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' };

type Row = { route: string; connections: number; rps: number; p50_ms: number; p99_ms: number; errors: number; non2xx: number };
const rows: Row[] = [];
try {
  const first = await stack.api('/api/instances/simple', {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ user_id: user, base_image: 'debian:bookworm' }),
  });
  const { instance_id: id } = (await first.json()) as { instance_id: string };
  const cases = [
    { route: 'GET /api/instances/{id}', method: 'GET' as const, path: `/api/instances/${id}` },
    { route: 'POST /api/instances/simple', method: 'POST' as const, path: '/api/instances/simple' },
  ];
  let n = 0;
  const createBody = () => JSON.stringify({ user_id: `${user}-${(n++).toString(36)}`, base_image: 'debian:bookworm' });
  for (const c of cases) {
    for (const connections of [50, 500]) {
      process.stderr.write(`[load] ${c.route} with ${connections} connections for ${seconds} s\n`);
      const r = await autocannon({
        url: `${stack.url}${c.path}`,
        method: c.method,
        headers: auth,
        connections,
        duration: seconds,
        // Each create for a user of its own.
        ...(c.method === 'POST'
          ? { requests: [{ method: 'POST' as const, setupRequest: (req: autocannon.Request) => ({ ...req, body: createBody() }) }] }
          : {}),
      });
      rows.push({
        route: c.route,
        connections,
        rps: Math.round(r.requests.average),
        p50_ms: r.latency.p50,
        p99_ms: r.latency.p99,
        errors: r.errors,
        non2xx: r.non2xx,
      });
    }
  }
} finally {
  await stack.stop();
  // The bench user's records go with it.
  const redis = createRedis(stack.env.REDIS_URL!, 'load-cleanup');
  for (const set of await redis.keys(`codebay:user:${user}*:instances`)) {
    const ids = await redis.smembers(set);
    if (ids.length > 0) {
      await redis.srem('codebay:instances', ...ids);
      await redis.del(...ids.map((x) => `codebay:instance:${x}`));
    }
    await redis.del(set);
  }
  await redis.quit();
}
console.log('route                          conns     req/s   p50 ms   p99 ms  errors  non-2xx');
for (const r of rows) {
  console.log(
    `${r.route.padEnd(30)} ${String(r.connections).padStart(5)} ${String(r.rps).padStart(9)} ${String(r.p50_ms).padStart(8)} ${String(r.p99_ms).padStart(8)} ${String(r.errors).padStart(7)} ${String(r.non2xx).padStart(8)}`,
  );
}
console.log(JSON.stringify({ bench: 'gateway-load', at: new Date().toISOString(), seconds, rows }));
