/**
 * The builder: what build keys and the layer cache buy, and what a second builder adds.
 *
 *   node_modules/.bin/tsx bench/build-cache.ts [--builds=8] [--no-throughput] [--no-cache]
 *
 * Part 1, on one configuration (samples/python, given a containerEnv entry of this run's
 * own, so its build key and layer family are new to the registry), each next to the plain
 * `devcontainer build` of the same folder on the same daemon:
 *   cold       daemon cache emptied (bench/lib/daemon.ts makeCold) before each path
 *   one-line   a line appended to the Dockerfile, daemon warm
 *   identical  the unchanged request again (codebay: the build key is in the registry)
 * codebay's time is POST → Built or Cached (build, push, registry lookups; no provisioning).
 *
 * Part 2: N different small configurations queued at once, all built (POST of the first
 * → last one Built), with one builder (dockerd 1) and with two (dockerd 1 and 2).
 *
 * Real gateway and builder processes, Redis, registry, dockerd(s), CLI. Prints a table
 * and one JSON line. No assertions. Do not run it while the test suites use the daemons.
 */
import type { InstanceResponse } from '@codebay/contracts';
import { appendFileSync, cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { components } from '../test/support/components.ts';
import { testDocker } from '../test/support/docker.ts';
import { createFromWorkspace, getInstance, newConfigWorkspace, packWorkspace } from '../test/support/instances.ts';
import { startStack, type Stack } from '../test/support/stack.ts';
import { waitFor } from '../test/support/wait.ts';
import { salt, workspaceTarball } from '../test/support/workspaces.ts';
import { makeCold, plainBuild } from './lib/daemon.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const builds = Number(args.find((a) => a.startsWith('--builds='))?.split('=')[1] ?? 8);
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
const c = components();
const docker = testDocker();
const user = `bench-${salt()}`;
const BUILT = ['Built', 'Cached'];

async function untilBuilt(stack: Stack, id: string): Promise<InstanceResponse> {
  return waitFor(
    `${id} to be built`,
    async () => {
      const inst = await getInstance(stack, id);
      if (inst.status === 'Failed') throw Object.assign(new Error(`${id} failed: ${inst.error}`), { fatal: true });
      return BUILT.includes(inst.status) ? inst : undefined;
    },
    20 * 60_000,
    100,
  );
}

/** POST a workspace folder, wait until Built/Cached; wall seconds and the cache outcome. */
async function codebay(stack: Stack, dir: string): Promise<{ s: number; cache: string }> {
  const tarball = await packWorkspace(dir);
  const t0 = performance.now();
  const inst = await createFromWorkspace(stack, user, tarball);
  const done = await untilBuilt(stack, inst.instance_id);
  return { s: (performance.now() - t0) / 1000, cache: done.build?.cache ?? '?' };
}

async function plain(dir: string): Promise<number> {
  const ms = await plainBuild(dir, `codebay-bench-plain-${salt()}:latest`, c.dockerHost, mkdtempSync(join(tmpdir(), 'codebay-bench-cli-')));
  return ms / 1000;
}

type Row = { case: string; codebay_s: number; cache: string; plain_s: number; ratio: number };
const rows: Row[] = [];
const throughput: { builders: number; builds: number; seconds: number; builds_per_minute: number }[] = [];
const round = (n: number) => Math.round(n * 100) / 100;

async function cachePart(): Promise<void> {
  const stack = await startStack({ name: 'bench-cache', services: ['gateway', 'builder'], env: { LOG_LEVEL: 'warn', MAX_QUEUED_BUILDS_PER_USER: '1000' } });
  try {
    // Two copies of one configuration: codebay builds one, the plain CLI the other, so that
    // each path's one-line change is its own and neither reuses the other's new layer.
    const dir = newConfigWorkspace(join(ROOT, 'samples/python')); // new build key and layer family
    const plainDir = mkdtempSync(join(tmpdir(), 'codebay-bench-ws-'));
    cpSync(dir, plainDir, { recursive: true });
    const record = (name: string, cb: { s: number; cache: string }, p: number) => {
      rows.push({ case: name, codebay_s: round(cb.s), cache: cb.cache, plain_s: round(p), ratio: round(cb.s / p) });
      log(`${name}: codebay ${cb.s.toFixed(2)} s (${cb.cache}), plain ${p.toFixed(2)} s`);
    };
    await makeCold(docker);
    const plainCold = await plain(plainDir);
    await makeCold(docker);
    record('cold', await codebay(stack, dir), plainCold);

    appendFileSync(join(dir, '.devcontainer/Dockerfile'), `RUN echo changed-${salt()} > /opt/sample/changed\n`);
    appendFileSync(join(plainDir, '.devcontainer/Dockerfile'), `RUN echo changed-${salt()} > /opt/sample/changed\n`);
    record('one-line Dockerfile change', await codebay(stack, dir), await plain(plainDir));

    record('identical request', await codebay(stack, dir), await plain(plainDir));
  } finally {
    await stack.stop();
  }
}

async function throughputPart(builderCount: 1 | 2): Promise<void> {
  const stack = await startStack({
    name: `bench-pool${builderCount}`,
    services: ['gateway'],
    env: { LOG_LEVEL: 'warn', MAX_QUEUED_BUILDS_PER_USER: '1000', MAX_INSTANCES_PER_USER: '1000' },
  });
  try {
    await stack.startService('builder', { as: 'builder-1', env: { DOCKER_HOST: c.dockerHost, BUILDER_NAME: 'builder-1' } });
    if (builderCount === 2) await stack.startService('builder', { as: 'builder-2', env: { DOCKER_HOST: c.dockerHost2, BUILDER_NAME: 'builder-2' } });
    // Different configurations (no two share a key or a family): a Dockerfile step and a local feature each.
    const tarballs = await Promise.all(
      Array.from({ length: builds }, (_, i) => {
        const s = salt();
        return workspaceTarball({
          config: { build: { dockerfile: 'Dockerfile' }, features: { './tool': {} }, containerEnv: { RUN: s } },
          dockerfile: `FROM debian:bookworm\nRUN echo ${s}-${i} > /opt/id && for n in $(seq 1 200000); do :; done\n`,
          features: { tool: `mkdir -p /opt/tool && echo ${s} > /opt/tool/${i}` },
        });
      }),
    );
    const t0 = performance.now();
    const created = [];
    for (const t of tarballs) created.push(await createFromWorkspace(stack, user, t));
    await Promise.all(created.map((i) => untilBuilt(stack, i.instance_id)));
    const seconds = (performance.now() - t0) / 1000;
    throughput.push({ builders: builderCount, builds, seconds: round(seconds), builds_per_minute: round((builds / seconds) * 60) });
    log(`${builds} builds with ${builderCount} builder(s): ${seconds.toFixed(1)} s`);
  } finally {
    await stack.stop();
  }
}

if (!args.includes('--no-cache')) await cachePart();
if (!args.includes('--no-throughput')) {
  await throughputPart(1);
  await throughputPart(2);
}

console.log('case                         codebay s  (cache)   plain s   codebay/plain');
for (const r of rows)
  console.log(`${r.case.padEnd(28)} ${String(r.codebay_s).padStart(9)}  (${r.cache.padEnd(4)})  ${String(r.plain_s).padStart(8)}   ${r.ratio}`);
for (const t of throughput) console.log(`${t.builds} queued builds, ${t.builders} builder(s): ${t.seconds} s (${t.builds_per_minute} builds/min)`);
if (throughput.length === 2) console.log(`speed-up with 2 builders: ${round(throughput[0]!.seconds / throughput[1]!.seconds)}×`);
console.log(JSON.stringify({ cache: rows, throughput }));
