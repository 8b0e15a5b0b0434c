import { CodebayClient } from '@codebay/api-client';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { execFile, execFileSync } from 'node:child_process';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent } from 'undici';
import { components } from './components.ts';
import { waitFor } from './wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

/** The namespaces deploy/kubernetes puts codebay in. */
export const PLATFORM_NS = 'codebay-system';
export const INSTANCE_NS = 'vscode-system';
/** The test deployment's domain: the API at https://codebay.test, editors at https://<id>.codebay.test. */
export const NODE_DOMAIN = 'codebay.test';

/** What `test/k8s/node/node.sh env` says about the real single-node cluster. */
export interface NodeEnv {
  kubeconfig: string;
  /** Traefik's address (IngressClass `public`), ports 80 and 443. */
  ingressIp: string;
  /** Where this machine pushes images for the node (`127.0.0.2:32000` beside deploy/local's registry). */
  registryPush: string;
  /** What the node's kubelet pulls (`localhost:32000`, as on MicroK8s). */
  registryPull: string;
  /** The same registry as pods reach it (`registry.container-registry.svc.cluster.local:5000`). */
  registryInCluster: string;
  /** kubectl of the cluster's own version. */
  kubectl: string;
}

/**
 * The real node's addresses, from the environment (`eval "$(test/k8s/cluster.sh env)"`) or
 * `node.sh env`. Throws — the suite fails, never skips — when the node is not up, and when
 * its address is not on `lo` (a connection to an unassigned private address would leave the
 * machine).
 * @throws Error naming what is missing
 */
export function nodeEnv(): NodeEnv {
  let env = process.env;
  if (!env.CODEBAY_NODE_KUBECONFIG) {
    const out = execFileSync('bash', [join(ROOT, 'test/k8s/node/node.sh'), 'env'], { encoding: 'utf8' });
    env = Object.fromEntries([...out.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.replace(/^["']|["']$/g, '')]));
  }
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new Error(`the real node is not up (${k} is not set): run \`bash test/k8s/cluster.sh up\` (npm test does)`);
    return v;
  };
  const ingressIp = new URL(need('CODEBAY_NODE_INGRESS')).hostname;
  const lo = execFileSync('ip', ['-4', '-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });
  if (!lo.includes(` ${ingressIp}/`)) throw new Error(`the real node's address ${ingressIp} is not on lo: the node is down (bash test/k8s/node/node.sh up)`);
  const kubeconfig = need('CODEBAY_NODE_KUBECONFIG');
  const bin = execFileSync('bash', [join(ROOT, 'test/k8s/build.sh'), '--dir'], { encoding: 'utf8' }).trim();
  return {
    kubeconfig,
    ingressIp,
    registryPush: need('CODEBAY_NODE_REGISTRY'),
    registryPull: need('CODEBAY_NODE_REGISTRY_PULL'),
    registryInCluster: need('CODEBAY_NODE_REGISTRY_IN_CLUSTER'),
    kubectl: join(bin, 'kubectl'),
  };
}

/** codebay installed on the real node by `deploy/microk8s/deploy.sh --kubeconfig`, reached through Traefik. */
export interface NodeDeployment {
  node: NodeEnv;
  kc: KubeConfig;
  /** https://codebay.test */
  url: string;
  adminToken: string;
  /** deploy.sh's state folder (secrets, certificate, image list). */
  stateDir: string;
  /** Every name under codebay.test goes to Traefik; the deployment's own certificate is trusted. */
  dispatcher: Agent;
  /** How long `deploy.sh` took, ms. */
  deployMs: number;
  /** An API call through the ingress (the admin token unless `token` is given; `null`: none). */
  api(path: string, init?: RequestInit & { token?: string | null }): Promise<Response>;
  /** Any https://*.codebay.test URL through the ingress. */
  fetch(url: string, init?: RequestInit): Promise<Response>;
  /** codebay's own API client, through the ingress. */
  client(token?: string): CodebayClient;
  /** kubectl against the node (stdout; throws with stderr on a non-zero exit). */
  kubectl(...args: string[]): Promise<string>;
  /** A command in an instance's editor container: exit code and output (never throws on a non-zero exit). */
  execInstance(id: string, cmd: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * This machine's own IPv4 addresses outside the private ranges (as `/32`). A real node registers
 * its primary address, and deploy.sh keeps instances from it; the test node registers
 * 10.245.255.1 (on `lo`), so the tests name the host's addresses themselves.
 */
export function hostPublicAddresses(): string[] {
  const isPrivate = (a: string) => /^(10\.|127\.|169\.254\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.)/.test(a);
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined && i.family === 'IPv4' && !i.internal && !isPrivate(i.address))
    .map((i) => `${i!.address}/32`);
}

/** The claim `deployToNode` makes for its `extensionSource` (and its PersistentVolume's name). */
export const EXTENSION_SOURCE_PVC_NAME = 'codebay-test-extension-source';

/**
 * The platform namespace (deploy.sh would make it), a hostPath PersistentVolume of `dir` on the
 * node (this machine) and the claim EXTENSION_SOURCE_PVC_NAME bound to it, read-only: applied
 * from a file in `stateDir` (the same every run for the same `dir`).
 */
async function extensionSourceClaim(kubectl: (...args: string[]) => Promise<string>, stateDir: string, dir: string): Promise<void> {
  const name = EXTENSION_SOURCE_PVC_NAME;
  const manifests = [
    readFileSync(join(ROOT, 'deploy/kubernetes/base/platform-namespace.yaml'), 'utf8'),
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name, labels: { 'app.kubernetes.io/part-of': 'codebay-test' } },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadOnlyMany'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: '',
        claimRef: { namespace: PLATFORM_NS, name },
        hostPath: { path: dir, type: 'Directory' },
      },
    }),
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name, namespace: PLATFORM_NS },
      spec: { accessModes: ['ReadOnlyMany'], storageClassName: '', volumeName: name, resources: { requests: { storage: '1Gi' } } },
    }),
  ];
  const file = join(stateDir, 'test-extension-source.yaml');
  writeFileSync(file, manifests.join('\n---\n'));
  await kubectl('apply', '-f', file);
}

/**
 * Runs `deploy/microk8s/deploy.sh --kubeconfig <node> --no-hosts` with only the variables a
 * platform team would set (a clean environment: nothing of the local stack's leaks in), after
 * putting the base image the tests use into the node's registry as Docker Hub's
 * `library/debian:bookworm`, and BuildKit's Dockerfile frontend as `docker/dockerfile:1.4` and `:1`
 * (the node and the builders' daemons use it as their Docker Hub mirror: nothing can be pulled
 * from the internet here). Builds and pushes the images on the tests'
 * Docker daemon (cached by content: a warm run builds nothing). `withRegistry`: `--with-registry`
 * (instance images in codebay's own registry, with users); without it, the objects such a
 * deployment left (its registry, users, pull Secret) are deleted first. `autoscaling`:
 * `--autoscaling` with these PROMETHEUS_URL, BUILDER_MAX_REPLICAS and BUILDER_SCALE_DOWN_SECONDS
 * (the node's KEDA asks the node's Prometheus); without it, deploy.sh removes an earlier
 * ScaledObject. `extensionSource`: a folder on this machine (the node's) that a PersistentVolume
 * (hostPath) and the claim EXTENSION_SOURCE_PVC_NAME in the platform namespace expose, named to
 * deploy.sh as EXTENSION_SOURCE_PVC (what a platform team does with its own file share).
 * @throws Error with the tail of deploy.sh's log when it fails
 */
export async function deployToNode(
  opts: {
    logFile: string;
    stateDir?: string;
    builders?: number;
    withRegistry?: boolean;
    autoscaling?: { prometheusUrl: string; maxReplicas: number; scaleDownSeconds: number };
    extensionSource?: string;
  } = { logFile: '/tmp/codebay-node-deploy.log' },
): Promise<NodeDeployment> {
  const node = nodeEnv();
  const docker = components().dockerHost;
  const stateDir = opts.stateDir ?? '/var/lib/codebay-k8s-node/deploy';
  mkdirSync(stateDir, { recursive: true });
  const dockerEnv = { ...process.env, DOCKER_HOST: docker };
  const kubectlRun = (args: string[], limits: { maxBuffer: number; timeout?: number }) => run(node.kubectl, ['--kubeconfig', node.kubeconfig, ...args], limits);
  const kubectl = async (...args: string[]) => {
    try {
      return (await kubectlRun(args, { maxBuffer: 64 << 20 })).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`kubectl ${args.join(' ')}: ${e.stderr?.trim() || e.message}`);
    }
  };
  if (!opts.withRegistry) {
    // A --with-registry deployment before this one (registry.node.test.ts): its component goes
    // (deploy.sh never deletes a registry and its images by itself).
    await kubectl(
      '-n',
      PLATFORM_NS,
      'delete',
      'deployment,service,pvc,networkpolicy,configmap',
      '-l',
      'app.kubernetes.io/name=codebay-registry',
      '--ignore-not-found',
    );
    await kubectl('-n', PLATFORM_NS, 'delete', 'secret', 'codebay-registry-htpasswd', 'codebay-registry-pull', 'codebay-registry-push', '--ignore-not-found');
    await kubectl('-n', INSTANCE_NS, 'delete', 'secret', 'codebay-registry-pull', '--ignore-not-found');
  }
  if (opts.extensionSource) await extensionSourceClaim(kubectl, stateDir, opts.extensionSource);
  await run('docker', ['tag', 'debian:bookworm', `${node.registryPush}/library/debian:bookworm`], { env: dockerEnv });
  await run('docker', ['push', '-q', `${node.registryPush}/library/debian:bookworm`], { env: dockerEnv, maxBuffer: 16 << 20 });
  // BuildKit's Dockerfile frontend as Docker Hub's docker/dockerfile:1.4 and :1, which builds
  // under BuildKit pull (deploy/buildkit/frontend-image.sh; a registry that has it is left alone).
  await run('bash', [join(ROOT, 'deploy/buildkit/frontend-image.sh'), node.registryPush], { cwd: ROOT, env: dockerEnv, maxBuffer: 16 << 20 });

  const env = {
    PATH: `${join(node.kubectl, '..')}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`,
    HOME: process.env.HOME ?? '/root',
    DOCKER_HOST: docker,
    BASE_DOMAIN: NODE_DOMAIN,
    IMAGE_REGISTRY: node.registryPush,
    // --with-registry: instance images in codebay's own registry (node port 32001, its defaults),
    // codebay's own images where the node pulls them (the registry MicroK8s' addon would be).
    ...(opts.withRegistry ? { IMAGE_REGISTRY_PULL: node.registryPull } : { REGISTRY: node.registryPull, REGISTRY_PUSH: node.registryInCluster }),
    DIND_REGISTRY_MIRRORS: `http://${node.registryInCluster}`,
    INSTANCE_EGRESS_EXCEPT: hostPublicAddresses().join(','),
    CODEBAY_DEPLOY_STATE: stateDir,
    BUILDER_REPLICAS: String(opts.builders ?? 2),
    GATEWAY_REPLICAS: '2',
    // A builder killed mid-build: its job runs again within ~20 s instead of ~90 s.
    JOB_LOCK_SECONDS: '15',
    STALLED_INTERVAL_SECONDS: '5',
    ...(opts.extensionSource ? { EXTENSION_SOURCE_PVC: EXTENSION_SOURCE_PVC_NAME } : {}),
    ...(opts.autoscaling
      ? {
          PROMETHEUS_URL: opts.autoscaling.prometheusUrl,
          BUILDER_MAX_REPLICAS: String(opts.autoscaling.maxReplicas),
          BUILDER_SCALE_DOWN_SECONDS: String(opts.autoscaling.scaleDownSeconds),
        }
      : {}),
    ...(process.env.CODEBAY_BUILD_CA_FILE !== undefined ? { CODEBAY_BUILD_CA_FILE: process.env.CODEBAY_BUILD_CA_FILE } : {}),
  };
  const started = Date.now();
  try {
    const flags = [
      '--kubeconfig',
      node.kubeconfig,
      '--no-hosts',
      ...(opts.withRegistry ? ['--with-registry'] : []),
      ...(opts.autoscaling ? ['--autoscaling'] : []),
    ];
    const out = await run('bash', [join(ROOT, 'deploy/microk8s/deploy.sh'), ...flags], {
      env,
      maxBuffer: 64 << 20,
      timeout: 30 * 60_000,
    });
    writeFileSync(opts.logFile, out.stdout + out.stderr);
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    writeFileSync(opts.logFile, (e.stdout ?? '') + (e.stderr ?? ''));
    const tail = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n');
    throw new Error(`deploy.sh --kubeconfig failed (log: ${opts.logFile}):\n${tail || e.message}`);
  }
  const deployMs = Date.now() - started;

  const kc = new KubeConfig();
  kc.loadFromFile(node.kubeconfig);
  const adminToken = readFileSync(join(stateDir, 'secrets/admin-token'), 'utf8').trim();
  const ca = readFileSync(join(stateDir, 'tls/tls.crt'), 'utf8');
  const toIngress = (
    hostname: string,
    options: object,
    cb: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    if (hostname === NODE_DOMAIN || hostname.endsWith(`.${NODE_DOMAIN}`)) {
      if ((options as { all?: boolean }).all) cb(null, [{ address: node.ingressIp, family: 4 }]);
      else cb(null, node.ingressIp, 4);
      return;
    }
    dnsLookup(hostname, options, cb as never);
  };
  const dispatcher = new Agent({ connect: { ca, lookup: toIngress as never } });
  const url = `https://${NODE_DOMAIN}`;
  const fetchVia = (target: string, init: RequestInit = {}) => fetch(target, { ...init, dispatcher } as RequestInit);
  return {
    node,
    kc,
    url,
    adminToken,
    stateDir,
    dispatcher,
    deployMs,
    api(path, init = {}) {
      const { token = adminToken, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (token) headers.set('authorization', `Bearer ${token}`);
      return fetchVia(`${url}${path}`, { ...rest, headers });
    },
    fetch: fetchVia,
    client: (token = adminToken) => new CodebayClient({ url, token, dispatcher }),
    kubectl,
    async execInstance(id, cmd) {
      try {
        const out = await kubectlRun(['-n', INSTANCE_NS, 'exec', `deploy/codebay-${id}`, '-c', 'editor', '--', ...cmd], {
          maxBuffer: 16 << 20,
          timeout: 60_000,
        });
        return { code: 0, stdout: out.stdout, stderr: out.stderr };
      } catch (err) {
        const e = err as { code?: number | string; stdout?: string; stderr?: string };
        return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    },
  };
}

/**
 * Waits until every pod of codebay's platform namespace is Ready and the gateway answers
 * `/readyz` through the ingress (the ingress controller follows endpoint changes a moment
 * after the pods); returns the pods' names by app.
 */
export async function platformReady(d: NodeDeployment, timeoutMs = 180_000): Promise<Record<string, string[]>> {
  const core = d.kc.makeApiClient(CoreV1Api);
  return waitFor(
    `every pod in ${PLATFORM_NS} to be Ready and the gateway to answer through the ingress`,
    async () => {
      const pods = (await core.listNamespacedPod({ namespace: PLATFORM_NS })).items.filter((p) => !p.metadata?.deletionTimestamp);
      const ready = (p: (typeof pods)[number]) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (!pods.length || !pods.every(ready)) return undefined;
      const res = await d.api('/readyz', { token: null }).catch(() => undefined);
      await res?.body?.cancel();
      if (res?.status !== 200) return undefined;
      const byApp: Record<string, string[]> = {};
      for (const p of pods) (byApp[p.metadata?.labels?.['app.kubernetes.io/name'] ?? '?'] ??= []).push(p.metadata!.name!);
      return byApp;
    },
    timeoutMs,
    1_000,
  );
}
