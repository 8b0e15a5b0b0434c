// The real gateway (real Redis) serving many concurrent build-log followers
// (`GET /api/instances/{id}/build-logs?follow=1`, Server-Sent Events): its RSS and
// open file descriptors idle and while a build writes lines, Redis connections it
// holds, and how long a line takes from XADD to each follower. The "builder" here
// is this script appending to the instance's log stream the way the builder does
// (BuildLogStream.append); no builder process runs. Prints a table and one JSON line.
// No assertions.
//
//   node_modules/.bin/tsx bench/sse-followers.ts [--followers=1000] [--seconds=10] [--rate=200]
import { BuildLogStream, createRedis } from '@codebay/platform';
import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { startStack } from '../test/support/stack.ts';
import { components } from '../test/support/components.ts';

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const followers = arg('followers', 1000);
const seconds = arg('seconds', 10);
const rate = arg('rate', 200); // lines per second, written in batches of rate/20 every 50 ms

const stack = await startStack({ name: 'sse', services: ['gateway'], env: { LOG_LEVEL: 'warn' } });
const redis = createRedis(components().redisUrl, 'bench-sse');
const logs = new BuildLogStream(redis);
const pid = stack.processes.get('gateway')!.pid!;
const rssMiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
const fds = () => readdirSync(`/proc/${pid}/fd`).length;
const redisClients = async () => Number(/connected_clients:(\d+)/.exec(await redis.info('clients'))![1]);

interface Follower {
  lines: number;
  ended: boolean;
  connected: boolean;
  req: http.ClientRequest;
}

try {
  const form = new FormData();
  form.set('user_id', 'bench-sse');
  form.set('devcontainer_json', new Blob([JSON.stringify({ image: 'debian:bookworm', containerEnv: { BENCH_RUN: String(Date.now()) } })]), 'devcontainer.json');
  const created = await stack.api('/api/instances/devcontainer', { method: 'POST', body: form, headers: { authorization: `Bearer ${stack.adminToken}` } });
  if (created.status !== 202) throw new Error(`create answered ${created.status}: ${await created.text()}`);
  // A configuration of this run's own: its build key is new, so the instance waits for a build
  // (no builder runs) instead of being answered from the registry.
  const { instance_id: id } = (await created.json()) as { instance_id: string };
  await stack.api(`/api/instances/${id}`, { headers: { authorization: `Bearer ${stack.adminToken}` } });
  const baseline = { rss: rssMiB(), fds: fds(), redis: await redisClients() };

  const latencies: number[] = [];
  const open: Follower[] = [];
  const { port } = new URL(stack.url);
  process.stderr.write(`[sse] opening ${followers} followers\n`);
  const t0 = performance.now();
  await Promise.all(
    Array.from(
      { length: followers },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const f = { lines: 0, ended: false, connected: false } as Follower;
          f.req = http.get(
            {
              host: '127.0.0.1',
              port,
              path: `/api/instances/${id}/build-logs?follow=1`,
              agent: false,
              headers: { authorization: `Bearer ${stack.adminToken}` },
            },
            (res) => {
              if (res.statusCode !== 200) return reject(new Error(`follower ${i}: ${res.statusCode}`));
              let buffer = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => {
                if (!f.connected) {
                  f.connected = true;
                  resolve();
                }
                buffer += chunk;
                let cut: number;
                while ((cut = buffer.indexOf('\n\n')) >= 0) {
                  const event = buffer.slice(0, cut);
                  buffer = buffer.slice(cut + 2);
                  if (event.includes('event: end')) f.ended = true;
                  const data = /event: line\ndata: (.*)/.exec(event)?.[1];
                  if (data) {
                    f.lines++;
                    // Every 10th follower samples latency (the client's own parsing costs time too).
                    if (i % 10 === 0) latencies.push(Date.now() - Number((JSON.parse(data) as { text: string }).text.split(' ')[0]));
                  }
                }
              });
              res.on('error', () => undefined);
            },
          );
          f.req.on('error', reject);
          open.push(f);
        }),
    ),
  );
  const connectSeconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 1_000));
  const idle = { rss: rssMiB(), fds: fds(), redis: await redisClients() };

  process.stderr.write(`[sse] writing ${rate} lines/s for ${seconds} s\n`);
  let peak = idle.rss;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB())), 100);
  const perTick = Math.max(1, Math.round(rate / 20));
  let written = 0;
  const until = Date.now() + seconds * 1000;
  while (Date.now() < until) {
    const now = Date.now();
    await logs.append(
      id,
      Array.from({ length: perTick }, (_, k) => `${now} line ${written + k} ${'x'.repeat(80)}`),
    );
    written += perTick;
    await new Promise((r) => setTimeout(r, 50));
  }
  await logs.end(id, 'success');
  const deadline = Date.now() + 60_000;
  while (open.some((f) => !f.ended) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  clearInterval(sampler);
  const streaming = { rss: peak, fds: fds(), redis: await redisClients() };
  const complete = open.filter((f) => f.ended && f.lines === written).length;
  for (const f of open) f.req.destroy();
  await new Promise((r) => setTimeout(r, 1_000));
  const after = { rss: rssMiB(), fds: fds(), redis: await redisClients() };

  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  const result = {
    followers,
    connectSeconds: Number(connectSeconds.toFixed(2)),
    linesWritten: written,
    followersWithEveryLineAndEnd: complete,
    deliveries: latencies.length * 10,
    latencyMs: { p50: q(0.5), p99: q(0.99), max: latencies.at(-1) ?? NaN },
    gatewayRssMiB: {
      baseline: +baseline.rss.toFixed(1),
      idleWithFollowers: +idle.rss.toFixed(1),
      peakStreaming: +streaming.rss.toFixed(1),
      afterClose: +after.rss.toFixed(1),
    },
    gatewayFds: { baseline: baseline.fds, idleWithFollowers: idle.fds, afterClose: after.fds },
    redisConnectedClients: { baseline: baseline.redis, idleWithFollowers: idle.redis, afterClose: after.redis },
  };
  console.log(`followers                         ${followers} (connected in ${result.connectSeconds} s)`);
  console.log(`lines written                     ${written} at ${rate}/s for ${seconds} s`);
  console.log(`followers with every line + end   ${complete}/${followers}`);
  console.log(`latency XADD → follower (ms)      p50 ${result.latencyMs.p50}  p99 ${result.latencyMs.p99}  max ${result.latencyMs.max}`);
  console.log(
    `gateway RSS (MiB)                 baseline ${result.gatewayRssMiB.baseline}  idle ${result.gatewayRssMiB.idleWithFollowers}  peak ${result.gatewayRssMiB.peakStreaming}  after ${result.gatewayRssMiB.afterClose}`,
  );
  console.log(`gateway open fds                  baseline ${baseline.fds}  idle ${idle.fds}  after ${after.fds}`);
  console.log(`redis connected clients (all)     baseline ${baseline.redis}  idle ${idle.redis}  after ${after.redis}`);
  console.log(JSON.stringify(result));
  await stack.api(`/api/instances/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${stack.adminToken}` } });
} finally {
  redis.disconnect();
  await stack.stop();
}
