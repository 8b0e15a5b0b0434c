/**
 * Queue drain time on the real Kubernetes node: N builds queued at once (default 12), drained by
 * one fixed builder (`deploy.sh`, BUILDER_REPLICAS=1) and then by builders that scale with the
 * queue (`deploy.sh --autoscaling`: KEDA on the node's Prometheus, 1 to --max builders), in one
 * run. Each build is new to every daemon (a unique `RUN … && sleep S` step).
 *
 *   cd /work/main && eval "$(bash test/k8s/cluster.sh env)" && flock /tmp/codebay-bench.lock \
 *     node_modules/.bin/tsx bench/autoscaling-drain.ts [--builds=12] [--sleep=15] [--max=3]
 *
 * Prints, per mode: drain (first POST → last build ended), all Running (first POST → last
 * instance Running; each is deleted once Running), the builders used, and with autoscaling: backlog → more builders wanted
 * (first POST → the Deployment's replicas above 1, as KEDA's HPA sets them) and backlog → a new
 * builder taking work (first POST → the first build started on a builder other than the first
 * one). Then the ratio fixed / autoscaled. Numbers only, no assertions; a table, then one JSON
 * line. Replaces whatever codebay deployment the node has: do not run it while
 * `npm run test:k8s` runs. --max is capped by the node: each builder pod requests CPU for its
 * Docker-in-Docker daemon, and the test node has 2 cores.
 */
import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { createFromWorkspace, getInstance } from '../test/support/instances.ts';
import { PLATFORM_NS, deployToNode, platformReady, type NodeDeployment } from '../test/support/node-deployment.ts';
import { waitFor } from '../test/support/wait.ts';
import { workspaceTarball } from '../test/support/workspaces.ts';

const args = new Map(process.argv.slice(2).map((a) => [a.replace(/=.*/, ''), a.includes('=') ? a.slice(a.indexOf('=') + 1) : 'true']));
const BUILDS = Number(args.get('--builds') ?? 12);
const SLEEP = Number(args.get('--sleep') ?? 15);
const MAX = Number(args.get('--max') ?? 3);
const PROMETHEUS_URL = 'http://prometheus.observability.svc.cluster.local:9090';
const log = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}`);
const s = (v: number | null | undefined) => (v === null || v === undefined ? '-' : (v / 1000).toFixed(1));

interface Result {
  mode: 'fixed-1' | 'autoscaled';
  drainMs: number;
  allRunningMs: number;
  builders: number;
  mostReplicas: number;
  replicasUpMs: number | null;
  newBuilderWorkingMs: number | null;
  failed: number;
}

async function burst(d: NodeDeployment, mode: Result['mode']): Promise<Result> {
  // One user per build: a user may have 3 builds waiting or running (the gateway's quota).
  const users = Array.from({ length: BUILDS }, () => `bench-${randomBytes(3).toString('hex')}`);
  const replicas = async () => Number(await d.kubectl('-n', PLATFORM_NS, 'get', 'deployment/codebay-builder', '-o', 'jsonpath={.spec.replicas}'));
  await waitFor('one builder before the burst', async () => ((await replicas()) === 1 ? true : undefined), 300_000, 1_000);
  if (mode === 'autoscaled') {
    // KEDA's HPA reading the queue: its start-up is not part of the drain.
    await waitFor(
      "KEDA's HPA to read the queue depth",
      async () => {
        const h = JSON.parse(await d.kubectl('-n', PLATFORM_NS, 'get', 'hpa', 'keda-hpa-codebay-builder', '-o', 'json')) as {
          status: { currentMetrics?: Array<{ external?: { current?: object } }> };
        };
        return h.status.currentMetrics?.[0]?.external?.current;
      },
      300_000,
      2_000,
    );
  }
  await platformReady(d);
  const tarballs = await Promise.all(
    Array.from({ length: BUILDS }, () =>
      workspaceTarball({
        config: { build: { dockerfile: 'Dockerfile' } },
        dockerfile: `FROM debian:bookworm\nRUN echo ${randomBytes(4).toString('hex')} > /opt/run && sleep ${SLEEP}\n`,
      }),
    ),
  );
  const t0 = Date.now();
  let most = 1;
  let replicasUpMs: number | null = null;
  let done = false;
  const watcher = (async () => {
    while (!done) {
      const r = await replicas().catch(() => 1);
      if (r > most) most = r;
      if (r > 1 && replicasUpMs === null) replicasUpMs = Date.now() - t0;
      await new Promise((res) => setTimeout(res, 500));
    }
  })();
  const insts: InstanceResponse[] = await Promise.all(tarballs.map((t, i) => createFromWorkspace(d, users[i]!, t)));
  log(`${mode}: ${BUILDS} builds queued`);
  // Each instance is deleted once Running: twelve editor pods would take the CPU that new
  // builder pods need on the 2-core node.
  const final = await Promise.all(
    insts.map(async (i) => {
      const r = await waitFor(
        `instance ${i.instance_id} Running or Failed`,
        async () => {
          const r = await getInstance(d, i.instance_id);
          return r.status === 'Running' || r.status === 'Failed' ? r : undefined;
        },
        1_800_000,
        1_000,
      );
      await d.api(`/api/instances/${r.instance_id}`, { method: 'DELETE' });
      return r;
    }),
  );
  done = true;
  await watcher;
  const at = (v: string | null | undefined) => (v ? Date.parse(v) : NaN);
  const builderOf = async (id: string) =>
    ((await d.client().buildLogs(id)).lines ?? [])
      .flatMap((l) => /building build key \w+ on builder (codebay-builder-\S+)/.exec(l.text ?? '')?.[1] ?? [])
      .at(-1);
  const builds = (await Promise.all(final.map(async (r) => ({ builder: await builderOf(r.instance_id), started: at(r.timings.build_started_at) })))).filter(
    (b) => b.builder !== undefined && !Number.isNaN(b.started),
  );
  builds.sort((a, b) => a.started - b.started);
  const ended = final.map((r) => at(r.timings.build_ended_at)).filter((t) => !Number.isNaN(t));
  const runningAt = final.map((r) => at(r.timings.running_at)).filter((t) => !Number.isNaN(t));
  const first = builds[0]?.builder;
  const other = builds.find((b) => b.builder && b.builder !== first);
  const result: Result = {
    mode,
    drainMs: Math.max(...ended) - t0,
    allRunningMs: Math.max(...runningAt) - t0,
    builders: new Set(builds.map((b) => b.builder)).size,
    mostReplicas: most,
    replicasUpMs,
    newBuilderWorkingMs: other ? other.started - t0 : null,
    failed: final.filter((r) => r.status !== 'Running').length,
  };
  for (const user of users)
    await d.kubectl('-n', 'vscode-system', 'delete', 'pvc', `codebay-shared-${user}`, '--ignore-not-found', '--wait=false').catch(() => undefined);
  log(`${mode}: drained in ${s(result.drainMs)} s on ${result.builders} builder(s)`);
  return result;
}

const results: Result[] = [];
log('deploying with one fixed builder');
results.push(await burst(await deployToNode({ logFile: '/tmp/codebay-bench-drain-fixed.log', builders: 1 }), 'fixed-1'));
log(`deploying with --autoscaling (1..${MAX} builders)`);
const scaled = await deployToNode({
  logFile: '/tmp/codebay-bench-drain-autoscaled.log',
  autoscaling: { prometheusUrl: PROMETHEUS_URL, maxReplicas: MAX, scaleDownSeconds: 30 },
});
results.push(await burst(scaled, 'autoscaled'));
// The next deployToNode (the test suite's) removes the ScaledObject.

console.log(`\n${BUILDS} builds (each a new 'RUN … && sleep ${SLEEP}' step) on the test node (2 cores)`);
console.log('mode         drain s  all Running s  builders  most replicas  backlog→replicas>1 s  backlog→new builder working s  failed');
for (const r of results) {
  console.log(
    `${r.mode.padEnd(12)} ${s(r.drainMs).padStart(7)}  ${s(r.allRunningMs).padStart(13)}  ${String(r.builders).padStart(8)}  ${String(r.mostReplicas).padStart(13)}  ${s(r.replicasUpMs).padStart(19)}  ${s(r.newBuilderWorkingMs).padStart(29)}  ${r.failed}`,
  );
}
const [fixed, auto] = results;
const ratio = fixed && auto ? fixed.drainMs / auto.drainMs : null;
console.log(`drain time, fixed 1 builder / autoscaled: ${ratio?.toFixed(2)}×`);
console.log(JSON.stringify({ bench: 'autoscaling-drain', builds: BUILDS, sleepSeconds: SLEEP, maxBuilders: MAX, results, drainRatio: ratio }));
