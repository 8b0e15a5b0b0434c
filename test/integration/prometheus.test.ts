import type { InstanceResponse } from '@codebay/contracts';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '@codebay/platform';
import { loadYaml } from '@kubernetes/client-node';
import { launchChromium } from '../support/browser.ts';
import { createFromDevcontainer, uniqueDevcontainer, waitForStatus } from '../support/instances.ts';
import { freePort } from '../support/ports.ts';
import { TEST_REDIS_DB, components, redisDatabase } from '../support/components.ts';
import { LOG_DIR, startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { salt } from '../support/workspaces.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../samples', import.meta.url));
const RULES = join(ROOT, 'deploy/monitoring/prometheus/rules.yml');
const DASHBOARD = join(ROOT, 'deploy/monitoring/grafana/codebay.json');
const SCALED_OBJECT = join(ROOT, 'deploy/kubernetes/components/autoscaling/scaled-object.yaml');

interface PromResult {
  metric: Record<string, string>;
  value?: [number, string];
  values?: [number, string][];
}

/**
 * A real Prometheus (Debian's) scrapes the real gateway, builder and provisioner every second
 * while a burst of builds runs through one builder: the queue-depth series rises and falls back
 * to 0, the time-to-editor histograms get samples, instances-by-status matches the API, the
 * alerting rules load, and every panel of the Grafana dashboard has data. A picture of the
 * queue-depth graph in Prometheus' own UI is kept with the test logs.
 */
describe('metrics on a real Prometheus during a build burst', () => {
  let stack: Stack;
  let prometheus: ChildProcess;
  let prom: string;
  const user = `prom-${salt()}`;
  const redisUrl = redisDatabase(components().redisUrl, TEST_REDIS_DB + 1);
  const redis = createRedis(redisUrl, 'test-prometheus');
  const created: InstanceResponse[] = [];
  let burstStart = 0;
  let burstEnd = 0;

  const query = async (expr: string, time?: number): Promise<PromResult[]> => {
    const url = new URL('/api/v1/query', prom);
    url.searchParams.set('query', expr);
    if (time) url.searchParams.set('time', String(time / 1000));
    const body = (await (await fetch(url)).json()) as { status: string; error?: string; data: { result: PromResult[] } };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
    return body.data.result;
  };
  const queryRange = async (expr: string): Promise<PromResult[]> => {
    const url = new URL('/api/v1/query_range', prom);
    url.searchParams.set('query', expr);
    url.searchParams.set('start', String(burstStart / 1000 - 5));
    url.searchParams.set('end', String(Date.now() / 1000));
    url.searchParams.set('step', '1');
    const body = (await (await fetch(url)).json()) as { status: string; error?: string; data: { result: PromResult[] } };
    if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
    return body.data.result;
  };
  const scalar = async (expr: string) => Number((await query(expr))[0]?.value?.[1] ?? NaN);

  beforeAll(async () => {
    expect(existsSync('/usr/bin/prometheus'), 'Prometheus is installed (apt-get install prometheus; deploy/local/components.sh does)').toBe(true);
    // A Redis database of its own: the gauges count every record there, and the alerts judge them.
    await redis.flushdb();
    stack = await startStack({ name: 'prom', env: { REDIS_URL: redisUrl } });
    const dir = mkdtempSync(join(tmpdir(), 'codebay-prometheus-'));
    const port = await freePort();
    prom = `http://127.0.0.1:${port}`;
    const target = (p: number) => `127.0.0.1:${p}`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: [${JSON.stringify(RULES)}]`,
        'scrape_configs:',
        `  - { job_name: codebay-gateway, static_configs: [{ targets: ["${target(stack.metricsPorts.gateway!)}"] }] }`,
        `  - { job_name: codebay-builder, static_configs: [{ targets: ["${target(stack.ports.builder!)}"] }] }`,
        `  - { job_name: codebay-provisioner, static_configs: [{ targets: ["${target(stack.ports.provisioner!)}"] }] }`,
      ].join('\n'),
    );
    const log = createWriteStream(join(LOG_DIR, `prometheus-${salt()}.log`));
    prometheus = spawn(
      '/usr/bin/prometheus',
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.pipe(log);
    prometheus.stderr!.pipe(log);
    await waitFor('Prometheus to be ready', async () => ((await fetch(`${prom}/-/ready`).catch(() => undefined))?.ok ? true : undefined), 60_000, 200);
    await waitFor('every target to be up', async () => ((await scalar('sum(up)')) === 3 ? true : undefined), 30_000, 250);
  }, 300_000);

  afterAll(async () => {
    prometheus?.kill('SIGTERM');
    for (const inst of created) await stack?.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' }).catch(() => undefined);
    await stack?.stop();
    await redis.flushdb();
    await redis.quit();
  });

  it('a burst of 4 builds on one builder: the build queue rises, drains to 0, and every instance gets its time-to-editor', async () => {
    burstStart = Date.now();
    const files = await Promise.all([1, 2, 3, 4].map(() => uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`)));
    created.push(...(await Promise.all(files.map((f) => createFromDevcontainer(stack, user, f)))));
    for (const inst of created) await waitForStatus(stack, inst.instance_id, ['Running'], 300_000);
    burstEnd = Date.now();
    // Scraped at least once after the last instance ran.
    await waitFor(
      'a scrape after the burst',
      async () => ((await scalar('sum(codebay_time_to_editor_seconds_count)')) >= created.length ? true : undefined),
      15_000,
      250,
    );
    const waiting = await queryRange('max(codebay_queue_jobs{queue="codebay-build",state="waiting"})');
    const peak = Math.max(...waiting[0]!.values!.map(([, v]) => Number(v)));
    expect(peak).toBeGreaterThan(0);
    await waitFor(
      'the build queue back to 0',
      async () => ((await scalar('max(codebay_queue_jobs{queue="codebay-build",state=~"waiting|active"})')) === 0 ? true : undefined),
      15_000,
      250,
    );
    expect(await scalar('sum(codebay_time_to_editor_seconds_count{cache="miss"})')).toBeGreaterThanOrEqual(created.length);
    // (Not `push`: an instance may run from its builder's image before the push ends, and is measured then.)
    for (const phase of ['queued', 'build', 'provision', 'editor_start']) {
      expect(await scalar(`sum(codebay_instance_phase_duration_seconds_count{phase="${phase}"})`), phase).toBeGreaterThanOrEqual(created.length);
    }
    expect(await scalar('sum(codebay_build_duration_seconds_count{outcome="success"})')).toBeGreaterThanOrEqual(created.length);
    expect(await scalar('max(codebay_builds_in_progress)')).toBe(0);
    const inProgressPeak = await queryRange('max(codebay_builds_in_progress)');
    expect(Math.max(...inProgressPeak[0]!.values!.map(([, v]) => Number(v)))).toBe(1);
  });

  it('the autoscaling component’s KEDA trigger, replayed on the burst: one builder per build waiting or running, back to the minimum once the queue drains', async () => {
    // KEDA's prometheus scaler with metricType AverageValue feeds the HPA an external metric;
    // the HPA's replicas are ceil(value / threshold) within min and max (Kubernetes docs,
    // "Horizontal Pod Autoscaling: algorithm details"), before its behavior's rate limits.
    const so = loadYaml<{
      spec: { minReplicaCount: number; maxReplicaCount: number; triggers: Array<{ type: string; metricType: string; metadata: Record<string, string> }> };
    }>(readFileSync(SCALED_OBJECT, 'utf8'));
    const [trigger] = so.spec.triggers;
    expect(trigger).toMatchObject({ type: 'prometheus', metricType: 'AverageValue' });
    const threshold = Number(trigger!.metadata.threshold);
    const replicas = (value: number) => Math.min(so.spec.maxReplicaCount, Math.max(so.spec.minReplicaCount, Math.ceil(value / threshold)));
    const series = await queryRange(trigger!.metadata.query!);
    expect(series).toHaveLength(1);
    const decisions = series[0]!.values!.map(([, v]) => replicas(Number(v)));
    // 4 builds on one builder: while some wait, more builders are wanted (up to one per build).
    expect(Math.max(...decisions)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...decisions)).toBeLessThanOrEqual(created.length);
    expect(decisions.at(-1)).toBe(so.spec.minReplicaCount);
    expect(replicas(Number((await query(trigger!.metadata.query!))[0]?.value?.[1]))).toBe(so.spec.minReplicaCount);
  });

  it('instances by status match the API’s list, and every dependency is up', async () => {
    await waitFor(
      'a scrape that agrees with the API',
      async () => {
        const list = (await (await stack.api('/api/instances')).json()) as { instances: InstanceResponse[] };
        const running = list.instances.filter((i) => i.status === 'Running').length;
        return (await scalar('max(codebay_instances{status="Running"})')) === running ? running : undefined;
      },
      10_000,
      250,
    );
    const deps = await query('codebay_dependency_up');
    expect(deps.map((r) => `${r.metric.service}/${r.metric.dependency}=${r.value![1]}`).sort()).toEqual([
      'builder/docker=1',
      'builder/redis=1',
      'builder/registry=1',
      'gateway/redis=1',
      'gateway/registry=1',
      'provisioner/docker=1',
      'provisioner/redis=1',
    ]);
  });

  it('loads the alerting rules (healthy), and none fires on a system that works', async () => {
    const rules = (await (await fetch(`${prom}/api/v1/rules`)).json()) as {
      data: { groups: { name: string; rules: { name: string; health: string; type: string; state?: string }[] }[] };
    };
    const all = rules.data.groups.flatMap((g) => g.rules);
    expect(all.filter((r) => r.type === 'alerting').map((r) => r.name)).toEqual(
      expect.arrayContaining([
        'CodebayBuildBacklogGrowing',
        'CodebayBuildFailureRatioHigh',
        'CodebayInstanceStuck',
        'CodebayServiceDown',
        'CodebayRedisUnreachable',
        'CodebayRegistryUnreachable',
      ]),
    );
    const evaluated = await waitFor(
      'every rule evaluated',
      async () => {
        const now = ((await (await fetch(`${prom}/api/v1/rules`)).json()) as typeof rules).data.groups.flatMap((g) => g.rules);
        return now.every((r) => r.health === 'ok') ? now : undefined;
      },
      15_000,
      500,
    );
    expect(evaluated.filter((r) => r.type === 'alerting' && r.state === 'firing').map((r) => r.name)).toEqual([]);
  });

  it('every panel of the Grafana dashboard has data for the burst', async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
      panels: { title: string; targets?: { expr: string }[]; panels?: unknown[] }[];
      templating: { list: { name: string; type: string; current?: { value?: string } }[] };
    };
    const panels = dashboard.panels.flatMap((p) => [p, ...((p.panels ?? []) as typeof dashboard.panels)]).filter((p) => p.targets?.length);
    expect(panels.length).toBeGreaterThan(8);
    // Grafana's own variables as it would fill them for a short range; the dashboard's at their defaults.
    const values = new Map<string, string>([
      ['__rate_interval', '1m'],
      ['__interval', '15s'],
      ['__range', '5m'],
    ]);
    for (const v of dashboard.templating.list) if (v.type !== 'datasource' && v.current?.value) values.set(v.name, v.current.value);
    const fill = (expr: string) =>
      expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, braced: string | undefined, bare: string | undefined) => values.get((braced ?? bare)!) ?? m);
    const empty: string[] = [];
    for (const panel of panels) {
      const results = await Promise.all(panel.targets!.map((t) => queryRange(fill(t.expr))));
      if (results.every((r) => r.length === 0)) empty.push(panel.title);
    }
    expect(empty).toEqual([]);
  });

  it('keeps a picture of the build queue graph in Prometheus’ own UI', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      const range = Math.max(60, Math.ceil((Date.now() - burstStart) / 1000) + 30);
      const expr = encodeURIComponent('max by (state) (codebay_queue_jobs{queue="codebay-build",state=~"waiting|active"})');
      // The UI asks once per load. Once in a full CI run no successful answer came within 90 s (not
      // reproduced alone): a load without one is loaded again, up to three times, and each answer is said.
      const answers: string[] = [];
      for (let load = 0; load < 3 && !answers.includes('200'); load++) {
        const answered = page.waitForResponse((r) => r.url().includes('/api/v1/query_range'), { timeout: 30_000 });
        await page.goto(`${prom}/graph?g0.expr=${expr}&g0.tab=0&g0.range_input=${range}s`);
        answers.push(await answered.then((r) => String(r.status())).catch((err: Error) => err.message.split('\n')[0]!));
      }
      expect(answers, 'the graph’s query_range answers, per page load').toContain('200');
      await page.locator('canvas, .graph-legend, [class*="legend"]').first().waitFor({ timeout: 60_000 });
      const file = join(LOG_DIR, `prometheus-build-queue-${salt()}.png`);
      await page.screenshot({ path: file, fullPage: true });
      expect(readFileSync(file).length).toBeGreaterThan(10_000);
      expect(burstEnd).toBeGreaterThan(burstStart);
    } finally {
      await browser.close();
    }
  });
});
