import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, loadAllYaml, type KubernetesObject } from '@kubernetes/client-node';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The test cluster's admin kubeconfig (from `test/k8s/cluster.sh env`): fails, never skips, when there is none. */
export function adminKubeconfigPath(): string {
  if (process.env.KUBECONFIG) return process.env.KUBECONFIG;
  const env = execFileSync('bash', [join(ROOT, 'test/k8s/cluster.sh'), 'env'], { encoding: 'utf8' });
  const m = /KUBECONFIG=["']?([^"'\n]+)/.exec(env);
  if (!m) throw new Error('no test cluster: run `bash test/k8s/cluster.sh up` (npm test does)');
  return m[1]!;
}

export function adminConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(adminKubeconfigPath());
  return kc;
}

/** The provisioner's Role and friends from deploy/, moved into `namespace`. */
export function deployRbac(namespace: string): KubernetesObject[] {
  const docs = loadAllYaml(readFileSync(join(ROOT, 'deploy/kubernetes/base/provisioner-rbac.yaml'), 'utf8')) as Array<
    KubernetesObject & { subjects?: Array<{ namespace?: string }> }
  >;
  return docs.map((d) => {
    d.metadata = { ...d.metadata, namespace };
    for (const s of d.subjects ?? []) s.namespace = namespace;
    return d;
  });
}

export async function applyAll(kc: KubeConfig, objs: KubernetesObject[], dryRun?: 'All'): Promise<void> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const obj of objs) await api.patch(obj, undefined, dryRun, 'codebay-tests', true, PatchStrategy.ServerSideApply);
}

/** The Pod Security labels of deploy/'s instance namespace (vscode-system). */
export function instanceNamespacePodSecurity(): Record<string, string> {
  const [ns] = loadAllYaml(readFileSync(join(ROOT, 'deploy/kubernetes/base/namespace.yaml'), 'utf8')) as KubernetesObject[];
  return Object.fromEntries(Object.entries(ns?.metadata?.labels ?? {}).filter(([k]) => k.startsWith('pod-security.kubernetes.io/')));
}

/**
 * A namespace of its own for one suite, with the provisioner's RBAC in it and the Pod Security
 * labels of the real instance namespace: `baseline` enforced, not `restricted` (sudo in the
 * devcontainers images needs setuid and root; `hostUsers: false` makes root in the pod an
 * unprivileged user on the node).
 */
export async function testNamespace(admin: KubeConfig, prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  const core = admin.makeApiClient(CoreV1Api);
  await core.createNamespace({
    body: {
      metadata: {
        name,
        labels: { ...instanceNamespacePodSecurity(), 'codebay.dev/test': 'true' },
      },
    },
  });
  await applyAll(admin, deployRbac(name));
  return name;
}

/**
 * A kubeconfig that authenticates as a ServiceAccount with a token from the TokenRequest API,
 * so the code under test holds exactly the permissions its Role grants.
 */
export async function serviceAccountKubeconfig(admin: KubeConfig, namespace: string, serviceAccount: string): Promise<{ path: string; kc: KubeConfig }> {
  const core = admin.makeApiClient(CoreV1Api);
  const tr = await core.createNamespacedServiceAccountToken({ name: serviceAccount, namespace, body: { spec: { audiences: [], expirationSeconds: 7200 } } });
  const cluster = admin.getCurrentCluster()!;
  const ca = cluster.caData ?? (cluster.caFile ? readFileSync(cluster.caFile).toString('base64') : undefined);
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: cluster.server, ...(ca ? { 'certificate-authority-data': ca } : { 'insecure-skip-tls-verify': true }) } }],
    users: [{ name: serviceAccount, user: { token: tr.status!.token } }],
    contexts: [{ name: 'sa', context: { cluster: 'test', user: serviceAccount, namespace } }],
    'current-context': 'sa',
  };
  const path = join(mkdtempSync(join(tmpdir(), 'codebay-kube-')), 'kubeconfig.json');
  writeFileSync(path, JSON.stringify(config), { mode: 0o600 });
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return { path, kc };
}
