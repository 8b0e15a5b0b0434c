import type { InstanceResponse } from '@codebay/contracts';
import { PlatformKey, instanceSecrets } from '@codebay/platform';
import {
  ApiException,
  AppsV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  NetworkingV1Api,
  Watch,
  loadAllYaml,
  type KubeConfig,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFromWorkspace, getInstance, packWorkspace, waitForStatus } from '../support/instances.ts';
import { adminConfig, applyAll, deployRbac, serviceAccountKubeconfig, testNamespace } from '../support/kube.ts';
import type { KubernetesLayout } from '../../services/provisioner/src/runtime/kubernetes-objects.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const selector = (id: string) => `codebay.dev/instance=${id}`;
// Async on purpose: a synchronous child would stall this process's sockets (keep-alive) meanwhile.
const run = promisify(execFile);
/** The provisioner's defaults (services/provisioner/src/config.ts), unless the stack's env sets them. */
const platformNamespaceOf = (env: NodeJS.ProcessEnv) => env.PLATFORM_NAMESPACE ?? 'codebay-system';
const gatewayUrlOf = (env: NodeJS.ProcessEnv) => env.GATEWAY_INTERNAL_URL ?? 'http://codebay-gateway.codebay-system.svc.cluster.local:8080';

/**
 * The provisioner's Kubernetes runtime against a real control plane (kube-apiserver,
 * etcd, controller-manager, scheduler; nodes faked by kwok), running as the
 * ServiceAccount deploy/ defines, in a namespace with the Pod Security labels of deploy/'s
 * instance namespace (`baseline` enforced: root and sudo inside, in a user namespace).
 * kwok runs no containers: what a pod or a NetworkPolicy does at run time is checked
 * here as the objects the API server admitted and stored.
 */
describe('Kubernetes runtime on a real API server', () => {
  let admin: KubeConfig;
  let sa: KubeConfig;
  let ns: string;
  let stack: Stack;
  const user = `k8s-${randomBytes(3).toString('hex')}`;

  const core = () => admin.makeApiClient(CoreV1Api);
  const apps = () => admin.makeApiClient(AppsV1Api);
  const net = () => admin.makeApiClient(NetworkingV1Api);

  async function objectsOf(id: string) {
    const [cms, pvcs, svcs, deps, ings, nps] = await Promise.all([
      core().listNamespacedConfigMap({ namespace: ns, labelSelector: selector(id) }),
      core().listNamespacedPersistentVolumeClaim({ namespace: ns, labelSelector: selector(id) }),
      core().listNamespacedService({ namespace: ns, labelSelector: selector(id) }),
      apps().listNamespacedDeployment({ namespace: ns, labelSelector: selector(id) }),
      net().listNamespacedIngress({ namespace: ns, labelSelector: selector(id) }),
      net().listNamespacedNetworkPolicy({ namespace: ns, labelSelector: selector(id) }),
    ]);
    const secrets = await core().listNamespacedSecret({ namespace: ns, labelSelector: selector(id) });
    return {
      configMaps: cms.items,
      pvcs: pvcs.items,
      services: svcs.items,
      deployments: deps.items,
      ingresses: ings.items,
      networkPolicies: nps.items,
      secrets: secrets.items,
    };
  }

  async function createSimple(body: Record<string, unknown> = {}): Promise<InstanceResponse> {
    const res = await stack.api('/api/instances/simple', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: user, base_image: 'debian:bookworm', ...body }),
    });
    expect(res.status).toBe(202);
    return (await res.json()) as InstanceResponse;
  }

  beforeAll(async () => {
    admin = adminConfig();
    ns = await testNamespace(admin, 'codebay-t');
    const account = await serviceAccountKubeconfig(admin, ns, 'codebay-provisioner');
    sa = account.kc;
    stack = await startStack({
      name: 'k8s',
      services: ['gateway', 'builder', 'provisioner'],
      env: {
        CODEBAY_RUNTIME: 'kubernetes',
        KUBECONFIG: account.path,
        KUBERNETES_NAMESPACE: ns,
        READY_TIMEOUT_SECONDS: '60',
        RECONCILE_INTERVAL_SECONDS: '0',
        JOB_LOCK_SECONDS: '5',
        STALLED_INTERVAL_SECONDS: '3',
      },
    });
  });

  afterAll(async () => {
    await stack?.stop();
    if (ns)
      await core()
        .deleteNamespace({ name: ns })
        .catch(() => undefined);
  });

  it('runs as the ServiceAccount from deploy/: allowed what the Role grants, refused the rest', async () => {
    const saCore = sa.makeApiClient(CoreV1Api);
    await expect(saCore.listNamespacedConfigMap({ namespace: ns })).resolves.toBeDefined();
    const saNet = sa.makeApiClient(NetworkingV1Api);
    await expect(saNet.listNamespacedNetworkPolicy({ namespace: ns })).resolves.toBeDefined();
    // No Ingresses: the gateway serves every editor.
    await expect(saNet.listNamespacedIngress({ namespace: ns })).rejects.toMatchObject({ code: 403 });
    await expect(saCore.listNamespacedSecret({ namespace: 'kube-system' })).rejects.toMatchObject({ code: 403 });
    await expect(saCore.listNamespacedSecret({ namespace: ns })).rejects.toMatchObject({ code: 403 });
    await expect(saCore.createNamespace({ body: { metadata: { name: `nope-${randomBytes(2).toString('hex')}` } } })).rejects.toMatchObject({ code: 403 });
  });

  it('creates an instance: objects owned by one root, no Ingress, Running with its URL', async () => {
    const inst = await createSimple();
    const running = await waitForStatus(stack, inst.instance_id, ['Running'], 90_000);
    expect(running.url).toContain(`/instances/${inst.instance_id}?tkn=`);
    const o = await objectsOf(inst.instance_id);
    expect(o.configMaps).toHaveLength(1);
    const root = o.configMaps[0]!;
    for (const obj of [...o.secrets, ...o.pvcs, ...o.services, ...o.deployments, ...o.ingresses, ...o.networkPolicies]) {
      expect(obj.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'ConfigMap', name: root.metadata!.name, uid: root.metadata!.uid });
      expect(obj.metadata?.labels).toMatchObject({ 'codebay.dev/instance': inst.instance_id, 'codebay.dev/user': user });
    }
    // No Ingress of its own: the gateway serves the editor at the instance's origin.
    expect([o.secrets.length, o.pvcs.length, o.services.length, o.deployments.length, o.ingresses.length, o.networkPolicies.length]).toEqual([
      1, 1, 1, 1, 0, 1,
    ]);
    const pod = (await core().listNamespacedPod({ namespace: ns, labelSelector: selector(inst.instance_id) })).items[0]!;
    expect(pod.status?.phase).toBe('Running');
    expect(pod.spec?.containers[0]?.resources?.limits).toMatchObject({ memory: '2Gi', cpu: '1' });
    // The user's shared PVC exists and belongs to no instance.
    const shared = await core().readNamespacedPersistentVolumeClaim({ name: `codebay-shared-${user}`, namespace: ns });
    expect(shared.metadata?.ownerReferences ?? []).toHaveLength(0);
  });

  it('a workspace instance: its pod fetches the upload from the gateway with the seeding token in its Secret, never the access token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'codebay-k8s-ws-'));
    mkdirSync(join(dir, '.devcontainer'));
    writeFileSync(join(dir, '.devcontainer/devcontainer.json'), JSON.stringify({ image: 'debian:bookworm' }));
    writeFileSync(join(dir, 'notes.txt'), 'from the upload\n');
    const tarball = await packWorkspace(dir);
    const inst = await createFromWorkspace(stack, user, tarball);
    await waitForStatus(stack, inst.instance_id, ['Running'], 120_000);
    const pod = (await core().listNamespacedPod({ namespace: ns, labelSelector: selector(inst.instance_id) })).items[0]!;
    const env = pod.spec!.containers[0]!.env ?? [];
    const url = env.find((e) => e.name === 'CODEBAY_SEED_URL')?.value;
    expect(url).toBe(`${gatewayUrlOf(stack.env)}/seed/instances/${inst.instance_id}`);
    const ref = env.find((e) => e.name === 'CODEBAY_SEED_TOKEN')?.valueFrom?.secretKeyRef;
    expect(ref).toMatchObject({ key: 'seed-token' });
    expect(env.find((e) => e.name === 'CODEBAY_EDITOR_SECRET')?.valueFrom?.secretKeyRef).toEqual({ name: ref!.name, key: 'editor-secret' });
    const secret = await core().readNamespacedSecret({ name: ref!.name!, namespace: ns });
    const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    // The Secret holds the secrets derived from the platform key, and not the access token.
    expect(Object.keys(data).sort()).toEqual(['editor-secret', 'seed-token']);
    expect(Object.values(data)).not.toContain(inst.access_token);
    const token = data['seed-token']!;
    expect(token).toBe(instanceSecrets.seed(new PlatformKey(stack.env.CODEBAY_SECRET_KEY!), inst.instance_id));
    // What the launcher does at first start (kwok runs no containers; the launcher's side is in test/integration/workspace-seed).
    const seed = (authorization?: string) => fetch(`${stack.url}${new URL(url!).pathname}`, { headers: authorization ? { authorization } : {} });
    const res = await seed(`Bearer ${token}`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(tarball))).toBe(true);
    // The access token (the user's) opens the editor, not the upload; nor does anything else.
    expect((await seed(`Bearer ${inst.access_token}`)).status).toBe(401);
    expect((await seed(`Bearer ${data['editor-secret']}`)).status).toBe(401);
    expect((await seed()).status).toBe(401);
  });

  it('the NetworkPolicy admits only the gateway pods of the platform namespace and restricts egress', async () => {
    const inst = await createSimple();
    await waitForStatus(stack, inst.instance_id, ['Running'], 90_000);
    const o = await objectsOf(inst.instance_id);
    expect(o.ingresses).toHaveLength(0);
    expect(o.networkPolicies).toHaveLength(1);
    const spec = o.networkPolicies[0]!.spec!;
    const platform = platformNamespaceOf(stack.env);
    const gatewayPeer = {
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': platform } },
      podSelector: { matchLabels: { 'app.kubernetes.io/name': 'codebay-gateway' } },
    };
    expect(spec.podSelector?.matchLabels).toEqual({ 'codebay.dev/instance': inst.instance_id });
    expect([...(spec.policyTypes ?? [])].sort()).toEqual(['Egress', 'Ingress']);
    // Ingress: one rule, one peer with both selectors (two peers would admit every pod of the
    // platform namespace, and every gateway-labelled pod anywhere), the editor's port only.
    expect(spec.ingress).toHaveLength(1);
    expect(spec.ingress![0]!._from).toEqual([gatewayPeer]);
    expect(spec.ingress![0]!.ports).toEqual([{ protocol: 'TCP', port: 8080 }]);
    // The namespace selector, evaluated by the API server, does not take in the instances' own namespace.
    const selected = await core().listNamespace({ labelSelector: `kubernetes.io/metadata.name=${platform}` });
    expect(selected.items.map((n) => n.metadata?.name)).not.toContain(ns);
    // Egress: every rule names its destinations (a rule without `to` would allow everything).
    const egress = spec.egress ?? [];
    expect(egress.length).toBeGreaterThan(0);
    for (const rule of egress) expect(rule.to?.length, JSON.stringify(rule)).toBeGreaterThan(0);
    const peers = egress.flatMap((rule) => (rule.to ?? []).map((peer) => ({ peer, ports: rule.ports })));
    // DNS only from kube-dns; the gateway only on its port.
    const dns = peers.filter(({ peer }) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'kube-system');
    expect(dns).toHaveLength(1);
    expect(dns[0]!.peer.podSelector).toEqual({ matchLabels: { 'k8s-app': 'kube-dns' } });
    expect(dns[0]!.ports?.map((p) => `${p.protocol}/${p.port}`).sort()).toEqual(['TCP/53', 'UDP/53']);
    const gateway = peers.filter(({ peer }) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === platform);
    expect(gateway.map(({ peer }) => peer)).toEqual([gatewayPeer]);
    expect(gateway[0]!.ports).toEqual([{ protocol: 'TCP', port: 8080 }]);
    // Everything else is address blocks: the internet, without the private, shared and link-local ranges.
    const blocks = peers.filter(({ peer }) => !peer.namespaceSelector && !peer.podSelector);
    expect(blocks.length).toBe(peers.length - 2);
    for (const { peer } of blocks) {
      expect(peer.ipBlock?.cidr).toBe('0.0.0.0/0');
      expect(peer.ipBlock?.except).toEqual(
        expect.arrayContaining(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '127.0.0.0/8']),
      );
    }
  });

  it('the pod runs in a user namespace with nothing privileged: baseline admission accepts it and refuses a privileged pod', async () => {
    const nsLabels = (await core().readNamespace({ name: ns })).metadata?.labels ?? {};
    expect(nsLabels['pod-security.kubernetes.io/enforce']).toBe('baseline');
    const inst = await createSimple();
    await waitForStatus(stack, inst.instance_id, ['Running'], 90_000);
    // The Deployment made its pod: admission let the ReplicaSet create it.
    const dep = (await apps().listNamespacedDeployment({ namespace: ns, labelSelector: selector(inst.instance_id) })).items[0]!;
    expect(dep.status?.conditions?.filter((c) => c.type === 'ReplicaFailure' && c.status === 'True') ?? []).toEqual([]);
    const rss = (await apps().listNamespacedReplicaSet({ namespace: ns, labelSelector: selector(inst.instance_id) })).items;
    expect(rss).toHaveLength(1);
    expect(rss[0]!.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'Deployment', name: dep.metadata!.name });
    const pods = (await core().listNamespacedPod({ namespace: ns, labelSelector: selector(inst.instance_id) })).items;
    expect(pods).toHaveLength(1);
    const pod = pods[0]!;
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'ReplicaSet', name: rss[0]!.metadata!.name });
    expect(pod.status?.phase).toBe('Running');

    const spec = pod.spec!;
    // Root in the pod is an unprivileged user on the node.
    expect(spec.hostUsers).toBe(false);
    expect([spec.hostNetwork, spec.hostPID, spec.hostIPC].filter(Boolean)).toEqual([]);
    expect(spec.volumes?.filter((v) => v.hostPath) ?? []).toEqual([]);
    expect(spec.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      expect(c.securityContext?.privileged ?? false, c.name).toBe(false);
      expect(c.securityContext?.capabilities?.add ?? [], c.name).toEqual([]);
      expect(c.ports?.filter((p) => p.hostPort) ?? [], c.name).toEqual([]);
    }
    // The editor may be root and gain privileges (sudo needs setuid); the bundle copy stays restricted.
    const editor = spec.containers.find((c) => c.name === 'editor')!;
    expect(editor.securityContext?.runAsNonRoot ?? spec.securityContext?.runAsNonRoot).not.toBe(true);
    expect(editor.securityContext?.allowPrivilegeEscalation).not.toBe(false);
    const init = spec.initContainers?.find((c) => c.name === 'editor-bundle');
    expect(init?.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });

    // The namespace's admission, not the provisioner, is what holds: a privileged pod created
    // directly by the cluster admin in the same namespace is refused.
    const refused = await core()
      .createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name: `privileged-${randomBytes(3).toString('hex')}` },
          spec: { containers: [{ name: 'x', image: 'debian:bookworm', securityContext: { privileged: true } }] },
        },
      })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(refused).toBeInstanceOf(ApiException);
    expect((refused as ApiException<unknown>).code).toBe(403);
    const status = JSON.parse(String((refused as ApiException<unknown>).body)) as { reason?: string; message?: string };
    expect(status.reason).toBe('Forbidden');
    expect(status.message).toMatch(/violates PodSecurity "baseline:latest": privileged/);
  });

  it('refuses requests and limits out of bounds with 400, creating nothing', async () => {
    const res = await stack.api('/api/instances/simple', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: user, base_image: 'debian:bookworm', memory_limit: '64Gi' }),
    });
    expect(res.status).toBe(400);
  });

  it('applies idempotently: a provision job run again leaves exactly one of each object', async () => {
    const inst = await createSimple();
    await waitForStatus(stack, inst.instance_id, ['Running'], 90_000);
    const before = await objectsOf(inst.instance_id);
    // The driver's provision, run twice more as the ServiceAccount (as a retried job would), keeps one of each.
    const { KubernetesDriver } = await import('../../services/provisioner/src/runtime/kubernetes-driver.ts');
    const { createLogger, InstanceStore, createRedis } = await import('@codebay/platform');
    const redis = createRedis(stack.env.REDIS_URL!, 'test-k8s');
    try {
      const record = (await new InstanceStore(redis).get(inst.instance_id))!;
      const driver = new KubernetesDriver({
        kc: sa,
        layout: layoutFor(ns, stack.env),
        logger: createLogger('test', 'silent'),
        readyTimeoutMs: 30_000,
        key: new PlatformKey(stack.env.CODEBAY_SECRET_KEY!),
      });
      await driver.provision(record);
      await driver.provision(record);
    } finally {
      redis.disconnect();
    }
    const after = await objectsOf(inst.instance_id);
    for (const k of Object.keys(after) as Array<keyof typeof after>) expect(after[k].length, k).toBe(before[k].length);
    expect(after.configMaps[0]!.metadata!.uid).toBe(before.configMaps[0]!.metadata!.uid);
    // Same platform key, same derived secrets: applying again changes none of them.
    expect(after.secrets[0]!.data).toEqual(before.secrets[0]!.data);
    expect(after.ingresses).toHaveLength(0);
  });

  it('a provisioner killed between two objects: the retried job completes with one of each object', async () => {
    const provisioner = stack.processes.get('provisioner')!;
    // Freeze the provisioner the moment its first object (the root) appears, then kill it.
    // The watch starts at the list's resourceVersion, so only objects made from now on count.
    const { metadata } = await core().listNamespacedConfigMap({ namespace: ns, labelSelector: 'codebay.dev/component=root' });
    let stop: AbortController | undefined;
    const rootSeen = new Promise<string>((resolve, reject) => {
      new Watch(admin)
        .watch(
          `/api/v1/namespaces/${ns}/configmaps`,
          { labelSelector: 'codebay.dev/component=root', resourceVersion: metadata!.resourceVersion! },
          (phase, obj: { metadata?: { labels?: Record<string, string> } }) => {
            if (phase !== 'ADDED') return;
            process.kill(provisioner.pid!, 'SIGSTOP');
            resolve(obj.metadata!.labels!['codebay.dev/instance']!);
          },
          (err) => (err ? reject(err as Error) : undefined),
        )
        .then((ac) => (stop = ac), reject);
    });
    try {
      const inst = await createSimple();
      expect(await rootSeen).toBe(inst.instance_id);
      const frozen = await objectsOf(inst.instance_id);
      await stack.stopService('provisioner', 'SIGKILL');
      // It really died mid-job: the root is there, the last object (the Service) is not, the instance is not Running.
      expect(frozen.configMaps).toHaveLength(1);
      expect(frozen.services).toHaveLength(0);
      expect((await getInstance(stack, inst.instance_id)).status).toBe('Provisioning');

      await stack.startService('provisioner');
      await waitForStatus(stack, inst.instance_id, ['Running'], 120_000);
      const o = await objectsOf(inst.instance_id);
      expect([
        o.configMaps.length,
        o.secrets.length,
        o.pvcs.length,
        o.deployments.length,
        o.services.length,
        o.ingresses.length,
        o.networkPolicies.length,
      ]).toEqual([1, 1, 1, 1, 1, 0, 1]);
      expect(o.configMaps[0]!.metadata!.uid).toBe(frozen.configMaps[0]!.metadata!.uid);
    } finally {
      stop?.abort();
      if (!stack.processes.has('provisioner')) await stack.startService('provisioner');
    }
  });

  it('delete garbage-collects every instance object and keeps the shared PVC', async () => {
    const inst = await createSimple();
    await waitForStatus(stack, inst.instance_id, ['Running'], 90_000);
    expect((await stack.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' })).status).toBe(202);
    await waitForStatus(stack, inst.instance_id, ['Deleted'], 60_000);
    await waitFor(
      'the garbage collector',
      async () => {
        const o = await objectsOf(inst.instance_id);
        return Object.values(o).every((list) => list.length === 0) ? true : undefined;
      },
      60_000,
      500,
    );
    await expect(core().readNamespacedPersistentVolumeClaim({ name: `codebay-shared-${user}`, namespace: ns })).resolves.toBeDefined();
  });

  it('a ResourceQuota the instance exceeds: Failed with the reason; its objects kept for inspection, the Deployment at 0, until a delete', async () => {
    const quotaNs = ns;
    await core().createNamespacedResourceQuota({ namespace: quotaNs, body: { metadata: { name: 'tight' }, spec: { hard: { 'limits.memory': '1Gi' } } } });
    try {
      const inst = await createSimple();
      const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 90_000);
      expect(failed.error).toMatch(/exceeded quota/i);
      expect(failed.phase).toBe('provision');
      // Kept (FAILED_INSTANCE_KEEP_SECONDS, 600 by default) with nothing running: the root says until when.
      expect(failed.kept_until).not.toBeNull();
      const o = await objectsOf(inst.instance_id);
      expect(o.configMaps[0]?.metadata?.annotations?.['codebay.dev/kept-until']).toBe(failed.kept_until);
      expect(o.deployments[0]?.spec?.replicas).toBe(0);
      expect(o.pvcs).toHaveLength(1);
      expect((await stack.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' })).status).toBe(202);
      await waitForStatus(stack, inst.instance_id, ['Deleted'], 60_000);
      expect((await objectsOf(inst.instance_id)).configMaps).toHaveLength(0);
    } finally {
      await core().deleteNamespacedResourceQuota({ name: 'tight', namespace: quotaNs });
    }
  });

  it('the reconciler reports (dry run), then removes an orphan Deployment labelled as an instance', async () => {
    const orphanId = `${user}-orphan00`;
    await apps().createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: `codebay-${orphanId}`, labels: { 'app.kubernetes.io/managed-by': 'codebay', 'codebay.dev/instance': orphanId } },
        spec: {
          replicas: 0,
          selector: { matchLabels: { 'codebay.dev/instance': orphanId } },
          template: {
            metadata: { labels: { 'codebay.dev/instance': orphanId } },
            spec: {
              securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
              containers: [{ name: 'x', image: 'debian:bookworm', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } } }],
            },
          },
        },
      },
    });
    const live = await stack.api(`/api/instances?user_id=${user}`);
    expect(live.status).toBe(200);
    const running = ((await live.json()) as { instances: InstanceResponse[] }).instances.filter((i) => i.status === 'Running').map((i) => i.instance_id);
    const reconcile = async (dry: boolean) =>
      JSON.parse(
        (
          await run(`${ROOT}/node_modules/.bin/tsx`, [`${ROOT}/services/provisioner/src/reconcile.ts`, ...(dry ? ['--dry-run'] : [])], {
            env: { ...stack.env, CODEBAY_RUNTIME: 'kubernetes', KUBECONFIG: stack.env.KUBECONFIG, KUBERNETES_NAMESPACE: ns, LOG_LEVEL: 'silent' },
            encoding: 'utf8',
          })
        ).stdout.trim(),
      ) as { orphans: string[]; vanished: string[] };
    const dry = await reconcile(true);
    expect(dry.orphans).toContain(orphanId);
    expect((await apps().listNamespacedDeployment({ namespace: ns, labelSelector: selector(orphanId) })).items).toHaveLength(1);
    const real = await reconcile(false);
    expect(real.orphans).toContain(orphanId);
    await waitFor(
      'the orphan to go',
      async () => ((await apps().listNamespacedDeployment({ namespace: ns, labelSelector: selector(orphanId) })).items.length === 0 ? true : undefined),
      30_000,
    );
    // Live instances (this suite's user's, made by the tests before) are left alone.
    expect(running.length).toBeGreaterThan(0);
    for (const id of running) {
      expect((await getInstance(stack, id)).status).toBe('Running');
      expect((await apps().listNamespacedDeployment({ namespace: ns, labelSelector: selector(id) })).items).toHaveLength(1);
    }
  });

  it('the reconciler marks an instance whose objects vanished Failed, with the reason', async () => {
    const inst = await createSimple();
    await waitForStatus(stack, inst.instance_id, ['Running'], 90_000);
    await core().deleteNamespacedConfigMap({ name: `codebay-${inst.instance_id}`, namespace: ns });
    const { stdout } = await run(`${ROOT}/node_modules/.bin/tsx`, [`${ROOT}/services/provisioner/src/reconcile.ts`], {
      env: { ...stack.env, CODEBAY_RUNTIME: 'kubernetes', KUBERNETES_NAMESPACE: ns, LOG_LEVEL: 'silent' },
      encoding: 'utf8',
    });
    const report = JSON.parse(stdout.trim()) as { vanished: string[] };
    expect(report.vanished).toContain(inst.instance_id);
    const failed = await getInstance(stack, inst.instance_id);
    expect(failed.status).toBe('Failed');
    expect(failed.error).toMatch(/vanished/);
  });

  it('the autoscaling component’s ScaledObject is valid for KEDA v2.21’s CustomResourceDefinition (server-side dry run)', async () => {
    // KEDA's CRD as KEDA ships it: the API server checks the ScaledObject against its schema.
    const [crd] = loadAllYaml(readFileSync(`${ROOT}/test/k8s/crds/keda.sh_scaledobjects.yaml`, 'utf8')) as KubernetesObject[];
    await applyAll(admin, [crd!]);
    await waitFor(
      'the ScaledObject CRD to be Established',
      async () => {
        const got = (await KubernetesObjectApi.makeApiClient(admin).read(crd as { metadata: { name: string } } & KubernetesObject)) as {
          status?: { conditions?: Array<{ type: string; status: string }> };
        };
        return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
      },
      30_000,
      250,
    );
    const [so] = loadAllYaml(readFileSync(`${ROOT}/deploy/kubernetes/components/autoscaling/scaled-object.yaml`, 'utf8')) as KubernetesObject[];
    so!.metadata!.namespace = ns;
    await applyAll(admin, [so!], 'All');
    // A field KEDA does not know is refused: the check is a real one.
    const wrong = { ...so!, spec: { ...(so as { spec: object }).spec, maxReplicas: 6 } } as KubernetesObject;
    await expect(applyAll(admin, [wrong], 'All')).rejects.toThrow(/maxReplicas|unknown field/i);
  });

  it('every manifest in deploy/ applies with a server-side dry run', async () => {
    // The Namespace as written; the namespaced objects into this suite's namespace (a dry-run
    // Namespace does not exist for the objects after it).
    await applyAll(admin, loadAllYaml(readFileSync(`${ROOT}/deploy/kubernetes/base/namespace.yaml`, 'utf8')), 'All');
    await applyAll(admin, deployRbac(ns), 'All');
    // The dry run went to the server and created nothing.
    const api = KubernetesObjectApi.makeApiClient(admin);
    await expect(api.read({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'vscode-system' } })).rejects.toMatchObject({ code: 404 });
  });
});

/** The layout the stack's provisioner uses (services/provisioner/src/runtime/index.ts from its env). */
function layoutFor(namespace: string, env: NodeJS.ProcessEnv): KubernetesLayout {
  return {
    namespace,
    platformNamespace: platformNamespaceOf(env),
    gatewayInternalUrl: gatewayUrlOf(env),
    editorImageRepo: env.CODEBAY_EDITOR_IMAGE_REPO ?? `${env.REGISTRY ?? 'localhost:32000'}/codebay-editor`,
    ...(env.IMAGE_PULL_SECRET ? { imagePullSecret: env.IMAGE_PULL_SECRET } : {}),
    ...(env.STORAGE_CLASS ? { storageClass: env.STORAGE_CLASS } : {}),
    sharedAccessMode: 'ReadWriteMany',
    runAsUser: 1000,
  };
}
