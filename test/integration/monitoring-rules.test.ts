import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MONITORING = join(ROOT, 'deploy/monitoring');
const PROMETHEUS_DIR = join(MONITORING, 'prometheus');
const RULES = join(PROMETHEUS_DIR, 'rules.yml');
const RULE_TESTS = join(PROMETHEUS_DIR, 'rules.test.yml');
const DASHBOARD = join(MONITORING, 'grafana/codebay.json');
const JOBS = ['codebay-gateway', 'codebay-builder', 'codebay-provisioner'];

const MISSING: Record<string, string> = {
  promtool: 'promtool is not installed: apt-get install prometheus (Debian/Ubuntu; it provides /usr/bin/promtool)',
  kubectl: 'kubectl is not installed (needed for kubectl kustomize, as the Kubernetes suites need it)',
};

interface Run {
  code: number;
  out: string;
}

/** A tool's exit code and its stdout+stderr; a missing tool fails the test with how to get it. */
function run(cmd: string, args: string[], cwd = ROOT): Run {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.error) {
    if ((r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(MISSING[cmd] ?? `${cmd} is not installed`);
    throw r.error;
  }
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** The rules' names in file order: `alert:` and `record:` entries (any key order, any indent). */
const ruleNames = (yaml: string) => [...yaml.matchAll(/^\s*-?\s*(alert|record): (\S+)\s*$/gm)].map((m) => `${m[1]} ${m[2]}`);

/** A rule file's content from a PrometheusRule manifest: what follows `spec:`, one level less indented. */
function specOf(manifest: string): string {
  const lines = manifest.split('\n');
  const at = lines.indexOf('spec:');
  expect(at, 'the PrometheusRule has a top-level spec:').toBeGreaterThan(0);
  const body = lines.slice(at + 1);
  expect(
    body.filter((l) => l !== '' && !l.startsWith('  ')),
    'everything after spec: belongs to it',
  ).toEqual([]);
  return body.map((l) => l.slice(2)).join('\n');
}

/** The rule file without its leading comment block, as build.sh puts it under spec:. */
const rulesBody = (yaml: string) => {
  const lines = yaml.split('\n');
  return lines.slice(lines.findIndex((l) => l !== '' && !l.startsWith('#'))).join('\n');
};

interface Target {
  refId: string;
  expr?: string;
  datasource?: unknown;
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: unknown;
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  schemaVersion: number;
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown; current?: { value?: unknown } }[] };
}

/**
 * deploy/monitoring, checked with Prometheus' own tooling: the rule file, its unit tests (every
 * alert firing and not firing), the single-machine config, the PrometheusRule the Kubernetes
 * manifests apply (the same rules, and the same unit tests pass against what kustomize renders),
 * and the Grafana dashboard (every query parsed by promtool as PromQL).
 */
describe('monitoring assets (deploy/monitoring)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'codebay-monitoring-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('promtool is installed', () => {
    const r = run('promtool', ['--version']);
    expect(r.code, r.out).toBe(0);
  });

  it('rules.yml passes promtool check rules, lint errors included', () => {
    const r = run('promtool', ['check', 'rules', '--lint-fatal', RULES]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('every alert has a firing and a non-firing unit test, and rules.test.yml passes', () => {
    const alerts = new Set(ruleNames(readFileSync(RULES, 'utf8')).flatMap((n) => (n.startsWith('alert ') ? [n.slice(6)] : [])));
    expect(alerts.size).toBeGreaterThanOrEqual(6);
    const cases = [...readFileSync(RULE_TESTS, 'utf8').matchAll(/alertname: (\S+)\s*\n\s*exp_alerts:( \[\])?/g)];
    const firing = new Set(cases.filter((m) => !m[2]).map((m) => m[1]!));
    const quiet = new Set(cases.filter((m) => m[2]).map((m) => m[1]!));
    for (const alert of alerts) {
      expect(firing.has(alert), `${alert}: a case where it fires`).toBe(true);
      expect(quiet.has(alert), `${alert}: a case where it does not fire`).toBe(true);
    }
    expect(
      [...firing, ...quiet].filter((a) => !alerts.has(a)),
      'tests of alerts rules.yml does not have',
    ).toEqual([]);
    const r = run('promtool', ['test', 'rules', RULE_TESTS], PROMETHEUS_DIR);
    expect(r.code, r.out).toBe(0);
  });

  it('prometheus.yml passes promtool check config, with rules.yml, and scrapes the jobs the rules select', () => {
    const r = run('promtool', ['check', 'config', '--lint-fatal', join(PROMETHEUS_DIR, 'prometheus.yml')]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('1 rule files found');
    const config = readFileSync(join(PROMETHEUS_DIR, 'prometheus.yml'), 'utf8');
    expect([...config.matchAll(/job_name: (\S+)/g)].map((m) => m[1])).toEqual(JOBS);
    expect(config).toMatch(/scrape_interval: 15s/);
  });

  it('the PrometheusRule in kubernetes/ is rules.yml, as build.sh generates it', () => {
    const manifest = readFileSync(join(MONITORING, 'kubernetes/prometheus-rule.yaml'), 'utf8');
    expect(manifest).toMatch(/^kind: PrometheusRule$/m);
    expect(specOf(manifest)).toBe(rulesBody(readFileSync(RULES, 'utf8')));
    const r = run('bash', [join(MONITORING, 'build.sh'), '--check']);
    expect(r.code, r.out).toBe(0);
  });

  it('kubectl kustomize renders the PodMonitor and PrometheusRule, and the rendered rules pass the same unit tests', () => {
    const r = run('kubectl', ['kustomize', join(MONITORING, 'kubernetes')]);
    expect(r.code, r.out).toBe(0);
    const docs = r.out.split(/^---$/m);
    const podMonitor = docs.find((d) => /^kind: PodMonitor$/m.test(d));
    const rule = docs.find((d) => /^kind: PrometheusRule$/m.test(d));
    expect(podMonitor, 'a PodMonitor').toBeDefined();
    expect(rule, 'a PrometheusRule').toBeDefined();
    for (const doc of [podMonitor!, rule!]) {
      expect(doc).toMatch(/^ {2}namespace: codebay-system$/m);
      // kube-prometheus-stack's selectors (the MicroK8s addon's Helm release).
      expect(doc).toMatch(/^ {4}release: kube-prom-stack$/m);
    }
    // job = the pods' app.kubernetes.io/name, the job names of the rules and prometheus.yml.
    expect(podMonitor).toMatch(/^ {2}jobLabel: app\.kubernetes\.io\/name$/m);
    for (const job of JOBS) expect(podMonitor).toContain(`- ${job}\n`);
    // Every service's own metrics port, never the gateway's public one.
    expect(podMonitor).toMatch(/port: metrics$/m);
    expect(podMonitor).not.toMatch(/port: http$/m);

    const dir = mkdtempSync(join(tmp, 'rendered-'));
    const rendered = specOf(rule!.replace(/^\n/, ''));
    writeFileSync(join(dir, 'rules.yml'), rendered);
    cpSync(RULE_TESTS, join(dir, 'rules.test.yml'));
    expect(ruleNames(rendered)).toEqual(ruleNames(readFileSync(RULES, 'utf8')));
    const check = run('promtool', ['check', 'rules', '--lint-fatal', join(dir, 'rules.yml')]);
    expect(check.code, check.out).toBe(0);
    const tests = run('promtool', ['test', 'rules', join(dir, 'rules.test.yml')], dir);
    expect(tests.code, tests.out).toBe(0);
  });

  const dashboard = () => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
  const allPanels = (d: Dashboard) => d.panels.flatMap((p) => [p, ...(p.panels ?? [])]);

  it('the dashboard parses and takes its data source from a `datasource` variable, with no uid written in', () => {
    const d = dashboard();
    expect(d.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(d.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    const refs: unknown[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) return v.forEach(walk);
      if (v && typeof v === 'object') {
        for (const [k, child] of Object.entries(v)) {
          if (k === 'datasource') refs.push(child);
          walk(child);
        }
      }
    };
    walk(d.panels);
    expect(refs.length).toBeGreaterThan(0);
    expect(refs.filter((ref) => JSON.stringify(ref) !== JSON.stringify({ type: 'prometheus', uid: '${datasource}' }))).toEqual([]);
    expect(readFileSync(DASHBOARD, 'utf8')).not.toMatch(/\$\{DS_/);

    const panels = allPanels(d).filter((p) => p.type !== 'row');
    expect(new Set(allPanels(d).map((p) => p.id)).size, 'unique panel ids').toBe(allPanels(d).length);
    expect(panels.filter((p) => !p.targets?.length || p.targets.some((t) => !t.expr?.trim())).map((p) => p.title)).toEqual([]);
  });

  it('every dashboard query is PromQL: promtool check rules on a rule file recording each one', () => {
    const d = dashboard();
    // Grafana's own variables; the dashboard defines no others (checked below).
    const builtins: Record<string, string> = { __rate_interval: '1m', __interval: '15s', __range: '6h' };
    const unknown: string[] = [];
    const rules = allPanels(d).flatMap((p) =>
      (p.targets ?? []).map((t) => ({
        record: `codebay_dashboard:panel_${p.id}_${t.refId}`,
        expr: t.expr!.replace(/\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]/g, (whole, a?: string, b?: string, c?: string) => {
          const name = (a ?? b ?? c)!;
          if (name in builtins) return builtins[name]!;
          unknown.push(`${p.title}: ${whole}`);
          return whole;
        }),
      })),
    );
    expect(unknown, 'variables in queries').toEqual([]);
    expect(rules.length).toBeGreaterThan(10);
    // JSON is YAML: promtool reads it as a rule file and parses every expr.
    const file = join(tmp, 'dashboard-queries.yml');
    writeFileSync(file, JSON.stringify({ groups: [{ name: 'codebay-dashboard', rules }] }, null, 2));
    const r = run('promtool', ['check', 'rules', '--lint=none', file]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain(`SUCCESS: ${rules.length} rules found`);

    // The same way, a broken query is refused: the check above is not vacuous.
    const broken = join(tmp, 'broken-query.yml');
    writeFileSync(broken, JSON.stringify({ groups: [{ name: 'broken', rules: [{ record: 'x:y', expr: 'sum by (le) (rate(codebay_x[5m])' }] }] }));
    const refused = run('promtool', ['check', 'rules', '--lint=none', broken]);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/parse error|unclosed/i);
  });
});
