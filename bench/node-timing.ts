/**
 * codebay on a real Kubernetes node next to the Docker runtime, in one run:
 *
 *   1. `deploy/microk8s/deploy.sh --kubeconfig` onto the test node (test/k8s/node) from nothing
 *      (both namespaces deleted first) to every platform pod Ready, then once more over itself;
 *   2. for `simple` (samples/simple-devcontainer.json) and `python` (samples/python), cold
 *      (a build key never seen) and warm (the same request again: a cache hit), POST → the
 *      workbench answering through the ingress (Traefik) on the node, and through the gateway on
 *      the Docker runtime (test/support/stack.ts), with each phase: queued, build, push (after
 *      the build), provision (claimed → objects/container made), and on the node the pod's own
 *      phases from its events and status: schedule, pull, init copy (the editor copied from the
 *      editor image), editor start (container started → Running), then Running → workbench.
 *
 *   cd /work/main && eval "$(bash test/k8s/cluster.sh env)" && flock /tmp/codebay-bench.lock \
 *     node_modules/.bin/tsx bench/node-timing.ts [--runs=N] [--no-deploy-from-nothing]
 *
 * Cold means a build key never seen; the daemon's layer cache is another matter: after a deploy
 * from nothing the builders' Docker-in-Docker storage is empty (their first python build fetches
 * Debian's packages), while the Docker runtime's daemon keeps what earlier runs left.
 *
 * Needs the node up (`bash test/k8s/cluster.sh up`) and the local components
 * (`bash deploy/local/components.sh up`). Numbers only, no assertions; a table, then one JSON line.
 * Replaces whatever codebay deployment the node has (the test suite's too): do not run it while
 * `npm run test:k8s` runs.
 */
import type { InstanceResponse } from '@codebay/contracts';
import { CoreV1Api } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { editorRequest } from '../test/support/editor.ts';
import {
  createFromDevcontainer,
  createFromWorkspace,
  getInstance,
  newConfigWorkspace,
  packWorkspace,
  uniqueDevcontainer,
  type ApiTarget,
} from '../test/support/instances.ts';
import { INSTANCE_NS, deployToNode, nodeEnv, platformReady, type NodeDeployment } from '../test/support/node-deployment.ts';
import { startStack, type Stack } from '../test/support/stack.ts';
import { waitFor } from '../test/support/wait.ts';

const SAMPLES = fileURLToPath(new URL('../samples', import.meta.url));
const args = new Map(process.argv.slice(2).map((a) => [a.replace(/=.*/, ''), a.includes('=') ? a.slice(a.indexOf('=') + 1) : 'true']));
const RUNS = Number(args.get('--runs') ?? 2);
const log = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}`);
const ms = (a?: string | null, b?: string | null) => (a && b ? Date.parse(b) - Date.parse(a) : null);
const s = (v: number | null | undefined) => (v === null || v === undefined ? '-' : (v / 1000).toFixed(2));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

type Fetch = (url: string, init?: RequestInit) => Promise<{ status: number; location: string | null; setCookies: string[]; body: string }>;

/** GET `url`, following redirects by hand and keeping cookies: the workbench page (200) counts as ready. */
async function workbench(fetchOnce: Fetch, url: string): Promise<boolean> {
  const jar = new Map<string, string>();
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    const headers: Record<string, string> = jar.size ? { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } : {};
    const res = await fetchOnce(current, { headers, redirect: 'manual' });
    for (const sc of res.setCookies) {
      const kv = sc.split(';', 1)[0]!;
      const i = kv.indexOf('=');
      if (i > 0) jar.set(kv.slice(0, i).trim(), kv.slice(i + 1).trim());
    }
    if (res.status >= 300 && res.status < 400 && res.location) {
      current = new URL(res.location, current).toString();
      continue;
    }
    return res.status === 200 && res.body.includes('vscode-workbench-web-configuration');
  }
  return false;
}

const nodeFetch =
  (d: NodeDeployment): Fetch =>
  async (url, init) => {
    const res = await d.fetch(url, init);
    return { status: res.status, location: res.headers.get('location'), setCookies: res.headers.getSetCookie(), body: await res.text() };
  };
const localFetch: Fetch = async (url, init) => {
  const res = await editorRequest(url, { headers: init?.headers as Record<string, string>, timeoutMs: 5_000 });
  const sc = res.headers['set-cookie'];
  return {
    status: res.status,
    location: (res.headers.location as string | undefined) ?? null,
    setCookies: Array.isArray(sc) ? sc : sc ? [sc] : [],
    body: res.body,
  };
};

interface Row {
  runtime: 'kubernetes' | 'docker';
  config: string;
  cache: 'cold' | 'warm';
  total_ms: number;
  phases: Record<string, number | null>;
}

/** The pod's own phases from its events and status (kubelet's timestamps, 1 s resolution for events). */
async function podPhases(d: NodeDeployment, id: string): Promise<Record<string, number | null>> {
  const core = d.kc.makeApiClient(CoreV1Api);
  const [pod] = (await core.listNamespacedPod({ namespace: INSTANCE_NS, labelSelector: `codebay.dev/instance=${id}` })).items;
  if (!pod) return {};
  const created = pod.metadata?.creationTimestamp?.toISOString();
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled')?.lastTransitionTime?.toISOString();
  const init = pod.status?.initContainerStatuses?.[0]?.state?.terminated;
  const main = pod.status?.containerStatuses?.find((c) => c.name === 'editor');
  const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime?.toISOString();
  const events = (await core.listNamespacedEvent({ namespace: INSTANCE_NS, fieldSelector: `involvedObject.name=${pod.metadata!.name}` })).items;
  const pulling = events.filter((e) => e.reason === 'Pulled' && /Successfully pulled/.test(e.message ?? ''));
  const pullMs = pulling.reduce(
    (sum, e) => sum + Number(/in ([\d.]+)(m?s)/.exec(e.message ?? '')?.[1] ?? 0) * (/in [\d.]+ms/.test(e.message ?? '') ? 1 : 1000),
    0,
  );
  return {
    schedule: ms(created, scheduled),
    pull: pulling.length ? Math.round(pullMs) : 0,
    init_copy: ms(init?.startedAt?.toISOString(), init?.finishedAt?.toISOString()),
    editor_start: ms(main?.state?.running?.startedAt?.toISOString(), ready),
  };
}

async function one(
  target: ApiTarget,
  fetchOnce: Fetch,
  runtime: Row['runtime'],
  config: string,
  cache: Row['cache'],
  make: () => Promise<InstanceResponse>,
  d?: NodeDeployment,
): Promise<Row> {
  const t0 = Date.now();
  const inst = await make();
  const running = await waitFor(
    `${inst.instance_id} Running`,
    async () => {
      const cur = await getInstance(target, inst.instance_id);
      if (cur.status === 'Failed') throw Object.assign(new Error(`${inst.instance_id} failed: ${cur.error}`), { fatal: true });
      return cur.status === 'Running' ? cur : undefined;
    },
    15 * 60_000,
    100,
  );
  const runningMs = Date.now() - t0;
  await waitFor(`${inst.instance_id}'s workbench`, async () => ((await workbench(fetchOnce, inst.url).catch(() => false)) ? true : undefined), 120_000, 100);
  const total = Date.now() - t0;
  const t = running.timings;
  const phases: Record<string, number | null> = {
    queued: ms(t.queued_at, t.build_started_at ?? t.provision_started_at),
    build: ms(t.build_started_at, t.build_ended_at),
    push: ms(t.build_ended_at, t.push_ended_at),
    provision: ms(t.provision_started_at, t.container_started_at),
    to_running: ms(t.container_started_at, t.running_at),
    workbench: total - runningMs,
    ...(d ? await podPhases(d, inst.instance_id) : {}),
  };
  log(`${runtime}/${config}/${cache}: ${s(total)} s ${JSON.stringify(phases)}`);
  await target.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' });
  return { runtime, config, cache, total_ms: total, phases };
}

async function configs(target: ApiTarget, user: string) {
  const simpleFile = await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`);
  const pythonTar = await packWorkspace(newConfigWorkspace(`${SAMPLES}/python`, 'CODEBAY_BENCH_RUN'));
  return {
    simple: () => createFromDevcontainer(target, user, simpleFile),
    python: () => createFromWorkspace(target, user, pythonTar),
  };
}

async function main(): Promise<void> {
  const deploy: Record<string, number> = {};
  if (args.get('--no-deploy-from-nothing') !== 'true') {
    const node = nodeEnv();
    log('deleting codebay from the node');
    execFileSync(
      node.kubectl,
      ['--kubeconfig', node.kubeconfig, 'delete', 'namespace', 'codebay-system', 'vscode-system', '--ignore-not-found', '--wait=true', '--timeout=300s'],
      { stdio: 'inherit' },
    );
    const t0 = Date.now();
    const first = await deployToNode({ logFile: '/tmp/codebay-bench-deploy.log', builders: 2 });
    await platformReady(first);
    deploy.from_nothing_ms = Date.now() - t0;
    log(`deploy.sh from nothing to every pod Ready: ${s(deploy.from_nothing_ms)} s (deploy.sh itself ${s(first.deployMs)} s; images already built)`);
  }
  const t1 = Date.now();
  const d = await deployToNode({ logFile: '/tmp/codebay-bench-deploy.log', builders: 2 });
  await platformReady(d);
  deploy.again_ms = Date.now() - t1;
  log(`deploy.sh again over itself: ${s(deploy.again_ms)} s`);

  const stack: Stack = await startStack({ name: 'nodebench' });
  const rows: Row[] = [];
  try {
    const user = `bench-${Date.now().toString(36)}`;
    for (const [name, target, fetchOnce, dd] of [
      ['kubernetes', d, nodeFetch(d), d],
      ['docker', stack, localFetch, undefined],
    ] as const) {
      const make = await configs(target, user);
      for (const config of ['simple', 'python'] as const) {
        rows.push(await one(target, fetchOnce, name, config, 'cold', make[config], dd));
        for (let i = 0; i < RUNS; i++) rows.push(await one(target, fetchOnce, name, config, 'warm', make[config], dd));
      }
    }
  } finally {
    await stack.stop();
  }

  const cols = ['queued', 'build', 'push', 'provision', 'schedule', 'pull', 'init_copy', 'editor_start', 'to_running', 'workbench'];
  const out = ['', `runtime     config  cache  ${cols.map((c) => c.padStart(12)).join('')}       TOTAL`];
  for (const r of rows)
    out.push(
      `${r.runtime.padEnd(11)} ${r.config.padEnd(7)} ${r.cache.padEnd(6)} ${cols.map((c) => s(r.phases[c]).padStart(12)).join('')} ${s(r.total_ms).padStart(11)}`,
    );
  out.push('', 'kubernetes TOTAL / docker TOTAL (median)');
  const ratios: Record<string, number> = {};
  for (const config of ['simple', 'python'])
    for (const cache of ['cold', 'warm']) {
      const k = rows.filter((r) => r.runtime === 'kubernetes' && r.config === config && r.cache === cache).map((r) => r.total_ms);
      const dk = rows.filter((r) => r.runtime === 'docker' && r.config === config && r.cache === cache).map((r) => r.total_ms);
      if (k.length && dk.length) ratios[`${config}/${cache}`] = Math.round((median(k) / median(dk)) * 100) / 100;
      out.push(`  ${config}/${cache}  ${ratios[`${config}/${cache}`]}x`);
    }
  out.push('', `deploy.sh: from nothing to every pod Ready ${s(deploy.from_nothing_ms)} s, again ${s(deploy.again_ms)} s`);
  console.log(out.join('\n'));
  console.log(JSON.stringify({ bench: 'node-timing', at: new Date().toISOString(), deploy, rows, ratios }));
}

await main();
process.exit(0);
