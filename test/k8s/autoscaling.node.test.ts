import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFromWorkspace, waitForStatus } from '../support/instances.ts';
import { INSTANCE_NS, PLATFORM_NS, deployToNode, platformReady, type NodeDeployment } from '../support/node-deployment.ts';
import { LOG_DIR } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { workspaceTarball } from '../support/workspaces.ts';

/** The node's Prometheus (test/k8s/node/observability.yaml: codebay's kubernetes.yml, scraping every 5 s). */
const PROMETHEUS_URL = 'http://prometheus.observability.svc.cluster.local:9090';
const MAX_BUILDERS = 3;
const SCALE_DOWN_SECONDS = 15;
const BUILDS = 6;

interface ScaledObjectJson {
  status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }>; hpaName?: string };
}
interface HpaJson {
  spec: { minReplicas?: number; maxReplicas: number; metrics?: Array<{ type: string; external?: { metric: { name: string } } }> };
  status: { currentMetrics?: Array<{ external?: { current: { averageValue?: string; value?: string } } }> };
}

/**
 * Builders that scale with the build queue, for real: `deploy.sh --autoscaling` on the real node,
 * whose KEDA (v2.21, built from Go modules, installed from KEDA's own manifests) asks the node's
 * Prometheus (scraping codebay with deploy/monitoring/prometheus/kubernetes.yml) for the
 * ScaledObject's query, and whose kube-controller-manager runs the HPA KEDA makes on the
 * external metric KEDA's adapter serves through the API server's aggregation layer.
 */
describe('builders that scale with the build queue (deploy.sh --autoscaling, KEDA on the real node)', () => {
  let d: NodeDeployment;
  // One user per build: a user may have 3 builds waiting or running (the gateway's quota).
  const users = Array.from({ length: BUILDS }, () => `scale-${randomBytes(3).toString('hex')}`);
  const created: string[] = [];

  const builderReplicas = async () => Number(await d.kubectl('-n', PLATFORM_NS, 'get', 'deployment/codebay-builder', '-o', 'jsonpath={.spec.replicas}'));
  const buildersOf = async (id: string): Promise<string[]> =>
    ((await d.client().buildLogs(id)).lines ?? []).flatMap((l) => /building build key \w+ on builder (codebay-builder-\S+)/.exec(l.text ?? '')?.[1] ?? []);

  beforeAll(async () => {
    d = await deployToNode({
      logFile: join(LOG_DIR, 'node-deploy-autoscaling.log'),
      autoscaling: { prometheusUrl: PROMETHEUS_URL, maxReplicas: MAX_BUILDERS, scaleDownSeconds: SCALE_DOWN_SECONDS },
    });
    // KEDA's external metrics API is served once its operator has made its certificates.
    await waitFor(
      "KEDA's external metrics API (APIService v1beta1.external.metrics.k8s.io) Available",
      async () => {
        const status = await d.kubectl(
          'get',
          'apiservice',
          'v1beta1.external.metrics.k8s.io',
          '-o',
          'jsonpath={.status.conditions[?(@.type=="Available")].status}',
        );
        return status === 'True' ? true : undefined;
      },
      300_000,
      2_000,
    );
    await platformReady(d);
  }, 40 * 60_000);

  afterAll(async () => {
    if (!d) return;
    for (const id of created) await d.api(`/api/instances/${id}`, { method: 'DELETE' }).catch(() => undefined);
    for (const id of created) await waitForStatus(d, id, ['Deleted'], 60_000).catch(() => undefined);
    for (const user of users)
      await d.kubectl('-n', INSTANCE_NS, 'delete', 'pvc', `codebay-shared-${user}`, '--ignore-not-found', '--wait=false').catch(() => undefined);
  });

  it('KEDA takes the ScaledObject: its HPA owns the builder Deployment on the queue-depth metric, and an empty queue means one builder', async () => {
    const so = await waitFor(
      'the ScaledObject to be Ready',
      async () => {
        const o = JSON.parse(await d.kubectl('-n', PLATFORM_NS, 'get', 'scaledobject', 'codebay-builder', '-o', 'json')) as ScaledObjectJson;
        return o.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? o : undefined;
      },
      120_000,
      1_000,
    );
    const hpa = JSON.parse(await d.kubectl('-n', PLATFORM_NS, 'get', 'hpa', so.status?.hpaName ?? 'keda-hpa-codebay-builder', '-o', 'json')) as HpaJson;
    expect(hpa.spec.minReplicas).toBe(1);
    expect(hpa.spec.maxReplicas).toBe(MAX_BUILDERS);
    expect(hpa.spec.metrics?.[0]?.type).toBe('External');
    // The HPA reads the metric through the aggregation layer (KEDA adapter → API server → HPA
    // controller); that the metric is Prometheus' queue depth shows in the next test.
    await waitFor(
      'the HPA to read the queue depth',
      async () => {
        const h = JSON.parse(await d.kubectl('-n', PLATFORM_NS, 'get', 'hpa', so.status?.hpaName ?? 'keda-hpa-codebay-builder', '-o', 'json')) as HpaJson;
        return h.status.currentMetrics?.[0]?.external?.current ?? undefined;
      },
      120_000,
      2_000,
    );
    await waitFor('one builder while nothing is queued', async () => ((await builderReplicas()) === 1 ? true : undefined), 180_000, 1_000);
  });

  it(`${BUILDS} builds queue: the builders scale from 1 to ${MAX_BUILDERS}, the builds spread over the builders that came up (2 or more), each runs once and all end Running; drained, back to 1`, async () => {
    expect(await builderReplicas()).toBe(1);
    // Builds that take a while (new to every daemon): a single builder would take ~6 × 25 s.
    const insts: InstanceResponse[] = await Promise.all(
      users.map(async (user) => {
        const inst = await createFromWorkspace(
          d,
          user,
          await workspaceTarball({
            config: { build: { dockerfile: 'Dockerfile' } },
            dockerfile: `FROM debian:bookworm\nRUN echo ${randomBytes(4).toString('hex')} > /opt/run && sleep 25\n`,
          }),
        );
        created.push(inst.instance_id);
        return inst;
      }),
    );
    let most = 1;
    const scaledUp = waitFor(
      `KEDA to scale the builders to ${MAX_BUILDERS}`,
      async () => {
        most = Math.max(most, await builderReplicas());
        return most >= MAX_BUILDERS ? most : undefined;
      },
      240_000,
      1_000,
    );
    // Settled either way before the builds are awaited: a timeout is this test's failure, not
    // an unhandled rejection.
    const scaled = await Promise.allSettled([scaledUp, Promise.all(insts.map((i) => waitForStatus(d, i.instance_id, ['Running', 'Failed'], 900_000)))]);
    if (scaled[1].status === 'rejected') throw scaled[1].reason;
    const running = scaled[1].value;
    if (scaled[0].status === 'rejected') throw scaled[0].reason;
    expect(scaled[0].value).toBe(MAX_BUILDERS);
    for (const r of running) expect(r.status, `${r.instance_id}: ${r.error ?? ''}`).toBe('Running');
    // Every build ran once (none lost, none repeated), on more than one builder.
    const builders = await Promise.all(running.map((r) => buildersOf(r.instance_id)));
    for (const b of builders) expect(b).toHaveLength(1);
    expect(new Set(builders.flat()).size).toBeGreaterThanOrEqual(2);
    for (const r of running) await d.api(`/api/instances/${r.instance_id}`, { method: 'DELETE' });

    // The queue is empty: after SCALE_DOWN_SECONDS, one builder at a time goes, down to 1.
    await waitFor('the builders to scale back to 1', async () => ((await builderReplicas()) === 1 ? true : undefined), 240_000, 1_000);
    await platformReady(d);
  });
});
