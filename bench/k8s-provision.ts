// Instances provisioned to Running per second on the kwok cluster, and Kubernetes API
// requests per instance, through the real gateway and provisioner (as the
// provisioner's ServiceAccount). Prints a table and one JSON line. No assertions.
//
//   node_modules/.bin/tsx bench/k8s-provision.ts [--count=200] [--concurrency=16]
import { redisKeys, type InstanceResponse } from '@codebay/contracts';
import { CoreV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { createRedis } from '@codebay/platform';
import { adminConfig, serviceAccountKubeconfig, testNamespace } from '../test/support/kube.ts';
import { startStack } from '../test/support/stack.ts';
import { waitFor } from '../test/support/wait.ts';

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const count = arg('count', 200);
const concurrency = arg('concurrency', 16);
const log = (msg: string) => process.stderr.write(`[k8s-bench] ${msg}\n`);

const admin = adminConfig();
const ns = await testNamespace(admin, 'codebay-bench');
const account = await serviceAccountKubeconfig(admin, ns, 'codebay-provisioner');
const stack = await startStack({
  name: 'k8s-bench',
  services: ['gateway', 'provisioner'],
  env: {
    CODEBAY_RUNTIME: 'kubernetes',
    KUBECONFIG: account.path,
    KUBERNETES_NAMESPACE: ns,
    PROVISION_CONCURRENCY: String(concurrency),
    RECONCILE_INTERVAL_SECONDS: '0',
    LOG_LEVEL: 'warn',
  },
});
const user = `bench-${randomBytes(3).toString('hex')}`;
const metric = async () => {
  const text = await (await fetch(`http://127.0.0.1:${stack.ports.provisioner}/metrics`)).text();
  return Number(/^codebay_kubernetes_requests_total(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? NaN);
};

try {
  const requestsBefore = await metric();
  log(`creating ${count} instances in ${ns} (provisioner concurrency ${concurrency})`);
  const t0 = performance.now();
  // Small requests so 2 fake nodes can hold them all.
  const body = JSON.stringify({
    user_id: user,
    base_image: 'debian:bookworm',
    cpu_request: '10m',
    cpu_limit: '100m',
    memory_request: '16Mi',
    memory_limit: '64Mi',
  });
  for (let i = 0; i < count; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, () =>
        stack.api('/api/instances/simple', { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.arrayBuffer()),
      ),
    );
  }
  const accepted = performance.now();
  const final = await waitFor(
    'every instance to settle',
    async () => {
      const list = ((await (await stack.api(`/api/instances?user_id=${user}`)).json()) as { instances: InstanceResponse[] }).instances;
      const settled = list.filter((i) => i.status === 'Running' || i.status === 'Failed');
      return settled.length >= count ? list : undefined;
    },
    30 * 60_000,
    500,
  );
  const done = performance.now();
  const requests = (await metric()) - requestsBefore;
  const running = final.filter((i) => i.status === 'Running');
  const latencies = running.map((i) => Date.parse(i.timings.running_at!) - Date.parse(i.timings.queued_at!)).sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? NaN;
  const result = {
    bench: 'k8s-provision',
    at: new Date().toISOString(),
    count,
    concurrency,
    running: running.length,
    failed: final.length - running.length,
    seconds_to_accept_all: +((accepted - t0) / 1000).toFixed(2),
    seconds_to_all_running: +((done - t0) / 1000).toFixed(2),
    instances_per_second: +(running.length / ((done - t0) / 1000)).toFixed(2),
    p50_seconds: +(pct(50) / 1000).toFixed(2),
    p95_seconds: +(pct(95) / 1000).toFixed(2),
    api_requests: requests,
    api_requests_per_instance: +(requests / count).toFixed(1),
    failures: [...new Set(final.filter((i) => i.status === 'Failed').map((i) => i.error))].slice(0, 3),
  };
  console.log(`instances        ${count} (${result.running} Running, ${result.failed} Failed)`);
  console.log(`all accepted     ${result.seconds_to_accept_all} s`);
  console.log(`all Running      ${result.seconds_to_all_running} s  → ${result.instances_per_second} instances/s`);
  console.log(`POST→Running     p50 ${result.p50_seconds} s, p95 ${result.p95_seconds} s`);
  console.log(`API requests     ${requests} (${result.api_requests_per_instance} per instance, provisioning only)`);
  console.log(JSON.stringify(result));
} finally {
  await stack.stop();
  // The bench user's records go with its namespace.
  const redis = createRedis(stack.env.REDIS_URL!, 'k8s-bench-cleanup');
  const ids = await redis.smembers(redisKeys.userInstances(user));
  if (ids.length > 0) await redis.srem(redisKeys.allInstances(), ...ids);
  await redis.del(redisKeys.userInstances(user), ...ids.map((id) => redisKeys.instance(id)));
  await redis.quit();
  await admin
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name: ns })
    .catch(() => undefined);
}
