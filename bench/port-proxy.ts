/**
 * What a forwarded port costs: request latency to an application on port 3000 of an instance
 * through its own origin (`<id>-3000.localhost`: the gateway's token check, then code-server's
 * path proxy in the instance), against the same application reached directly at the container's
 * address from this machine (the floor), measured in the same run, sequentially.
 *
 *   node_modules/.bin/tsx bench/port-proxy.ts [--requests=300]
 *
 * Real gateway, builder, provisioner, Redis, registry, dockerd, CLI, code-server. Prints a table
 * (p50, p95, mean in ms) and one JSON line. No assertions.
 */
import { dockerFromHost } from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { components } from '../test/support/components.ts';
import { editorRequest } from '../test/support/editor.ts';
import { createFromDevcontainer, waitForStatus } from '../test/support/instances.ts';
import { portAppCommand } from '../test/support/port-app.ts';
import { startStack } from '../test/support/stack.ts';
import { waitFor } from '../test/support/wait.ts';

const args = process.argv.slice(2);
const requests = Number(args.find((a) => a.startsWith('--requests='))?.split('=')[1] ?? 300);
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
const user = `bench-port-${randomBytes(3).toString('hex')}`;

function stats(ms: number[]): { p50: number; p95: number; mean: number } {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p95: at(0.95), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

async function measure(url: string, headers: Record<string, string>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    const r = await editorRequest(`${url}r${i}`, { headers, timeoutMs: 5_000 });
    if (r.status !== 200) throw new Error(`${url}: ${r.status} ${r.body.slice(0, 200)}`);
    out.push(performance.now() - t0);
  }
  return out;
}

const stack = await startStack({ name: 'bench-ports', env: { LOG_LEVEL: 'warn' } });
try {
  const file = join(await mkdtemp(join(tmpdir(), 'codebay-bench-port-')), 'devcontainer.json');
  await writeFile(
    file,
    JSON.stringify({
      image: 'debian:bookworm',
      containerEnv: { BENCH: randomBytes(4).toString('hex') },
      forwardPorts: [3000],
      postStartCommand: portAppCommand([3000]),
    }),
  );
  const created = await createFromDevcontainer(stack, user, file);
  await waitForStatus(stack, created.instance_id, ['Running'], 300_000);
  const port = created.ports[0]!;
  const opened = await editorRequest(port.url);
  const cookie = String(opened.headers['set-cookie'] ?? '').split(';')[0]!;
  await waitFor(
    'the application',
    async () => ((await editorRequest(`${port.origin}up`, { headers: { cookie } })).status === 200 ? true : undefined),
    60_000,
    200,
  );
  const info = await dockerFromHost(components().dockerHost).getContainer(stack.names.container(created.instance_id)).inspect();
  const ip = Object.values(info.NetworkSettings.Networks)[0]!.IPAddress;
  log(`instance ${created.instance_id}, container address ${ip}; ${requests} sequential requests each`);
  // Warm both paths (connections, JIT) before measuring.
  await measure(port.origin, { cookie });
  await measure(`http://${ip}:3000/`, {});
  const viaGateway = stats(await measure(port.origin, { cookie }));
  const direct = stats(await measure(`http://${ip}:3000/`, {}));
  const row = (name: string, s: ReturnType<typeof stats>) =>
    `${name.padEnd(52)} ${s.p50.toFixed(2).padStart(7)} ${s.p95.toFixed(2).padStart(7)} ${s.mean.toFixed(2).padStart(7)}`;
  console.log(`${'path'.padEnd(52)} ${'p50 ms'.padStart(7)} ${'p95 ms'.padStart(7)} ${'mean'.padStart(7)}`);
  console.log(row('direct to the container (floor)', direct));
  console.log(row('its own origin: gateway + code-server path proxy', viaGateway));
  console.log(`ratio p50 ${(viaGateway.p50 / direct.p50).toFixed(1)}×, added p50 ${(viaGateway.p50 - direct.p50).toFixed(2)} ms`);
  console.log(JSON.stringify({ bench: 'port-proxy', requests, direct, viaGateway, ratioP50: viaGateway.p50 / direct.p50 }));
  await stack.api(`/api/instances/${created.instance_id}`, { method: 'DELETE' });
} finally {
  await stack.stop();
}
