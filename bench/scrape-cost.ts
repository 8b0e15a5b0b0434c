/**
 * What a Prometheus scrape costs each service: the real gateway, builder and provisioner
 * (test/support/stack.ts) with `--instances` Running instances of the simple sample (the
 * gateway's gauges read every instance record and the queues at scrape time), then
 * `--scrapes` sequential GETs of /metrics per service, against the same process's /healthz
 * on the same port as the floor (an HTTP round trip that computes nothing).
 *
 *   node_modules/.bin/tsx bench/scrape-cost.ts [--instances=10] [--scrapes=200]
 *
 * Prints ms per scrape (median, p90), the floor, the difference, the body size, and one JSON line.
 */
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createFromDevcontainer, uniqueDevcontainer, waitForStatus } from '../test/support/instances.ts';
import { forgetUsers } from '../test/support/records.ts';
import { startStack } from '../test/support/stack.ts';

const SAMPLES = fileURLToPath(new URL('../samples', import.meta.url));
const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const INSTANCES = Number(args.get('instances') ?? 10);
const SCRAPES = Number(args.get('scrapes') ?? 200);

const log = (s: string) => process.stderr.write(`${s}\n`);
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function timed(url: string, n: number): Promise<{ ms: number[]; bytes: number }> {
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    const body = await res.arrayBuffer();
    ms.push(performance.now() - t0);
    if (!res.ok) throw new Error(`${url}: ${res.status}`);
    bytes = body.byteLength;
  }
  return { ms, bytes };
}

const stack = await startStack({ name: 'scrape' });
try {
  log(`creating ${INSTANCES} instances`);
  const user = `scrape-${Date.now().toString(36)}`;
  const made = await Promise.all(
    Array.from({ length: INSTANCES }, async () => createFromDevcontainer(stack, user, await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`))),
  );
  for (const inst of made) await waitForStatus(stack, inst.instance_id, ['Running'], 600_000);
  const rows: Record<string, unknown>[] = [];
  for (const service of ['gateway', 'builder', 'provisioner']) {
    const base = `http://127.0.0.1:${stack.metricsPorts[service]}`;
    await timed(`${base}/metrics`, 10); // warm-up
    const floor = await timed(`${base}/healthz`, SCRAPES);
    const scrape = await timed(`${base}/metrics`, SCRAPES);
    rows.push({
      service,
      medianMs: +quantile(scrape.ms, 0.5).toFixed(2),
      p90Ms: +quantile(scrape.ms, 0.9).toFixed(2),
      floorMedianMs: +quantile(floor.ms, 0.5).toFixed(2),
      overFloorMs: +(quantile(scrape.ms, 0.5) - quantile(floor.ms, 0.5)).toFixed(2),
      ratio: +(quantile(scrape.ms, 0.5) / quantile(floor.ms, 0.5)).toFixed(1),
      bytes: scrape.bytes,
    });
  }
  console.log(`scrape cost with ${INSTANCES} Running instances, ${SCRAPES} scrapes each (ms per scrape; floor = /healthz on the same port)`);
  console.log('service      median   p90    floor  over floor  x floor  body bytes');
  for (const r of rows) {
    console.log(
      `${String(r.service).padEnd(12)} ${String(r.medianMs).padStart(6)} ${String(r.p90Ms).padStart(6)} ${String(r.floorMedianMs).padStart(6)} ${String(r.overFloorMs).padStart(11)} ${String(r.ratio).padStart(8)} ${String(r.bytes).padStart(11)}`,
    );
  }
  console.log(JSON.stringify({ bench: 'scrape-cost', instances: INSTANCES, scrapes: SCRAPES, rows }));
  // Deleted before the stack stops: its provisioner removes the containers and volumes.
  for (const inst of made) await stack.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' });
  for (const inst of made) await waitForStatus(stack, inst.instance_id, ['Deleted'], 120_000);
  await forgetUsers(user);
} finally {
  await stack.stop();
}
