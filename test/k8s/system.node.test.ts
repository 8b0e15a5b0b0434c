import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openWorkbench, writeFromTerminal } from '../support/browser.ts';
import {
  createFromDevcontainer,
  createFromWorkspace,
  getInstance,
  packWorkspace,
  uniqueDevcontainer,
  uniqueWorkspace,
  waitForLifecycle,
  waitForStatus,
} from '../support/instances.ts';
import { INSTANCE_NS, NODE_DOMAIN, PLATFORM_NS, deployToNode, hostPublicAddresses, platformReady, type NodeDeployment } from '../support/node-deployment.ts';
import { LOG_DIR } from '../support/stack.ts';
import { makeVsix } from '../support/vsix.ts';
import { waitFor } from '../support/wait.ts';
import { portAppCommand } from '../support/port-app.ts';
import { uniqueConfigFile, workspaceTarball } from '../support/workspaces.ts';

const SAMPLES = fileURLToPath(new URL('../../samples', import.meta.url));
/** The builders' extension source: a folder on the node behind a PersistentVolumeClaim (deploy.sh EXTENSION_SOURCE_PVC). */
const EXTENSION_SOURCE = '/var/lib/codebay-k8s-node/test-extension-source';

interface PodJson {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: { hostUsers?: boolean; containers: Array<{ name: string; image: string }> };
  status: { podIP?: string; phase?: string };
}

/**
 * codebay as a platform team installs it: `deploy/microk8s/deploy.sh --kubeconfig` onto a real
 * single-node cluster (test/k8s/node: kubelet, containerd, CoreDNS, kube-router's NetworkPolicy
 * firewall, a hostPath provisioner, Traefik v3 as IngressClass `public`, the registry at
 * localhost:32000), then used through Traefik only: builds on the builder pods' Docker-in-Docker
 * sidecars, pushes, instance pods pulled and run by the kubelet, VS Code in Chromium.
 */
describe('codebay on a real Kubernetes node, installed by deploy.sh, used through the ingress', () => {
  let d: NodeDeployment;
  let browser: Browser;
  const user = `node-${randomBytes(3).toString('hex')}`;
  const created: string[] = [];
  let simple: InstanceResponse;
  let python: InstanceResponse;

  const pods = async (namespace: string, selector: string): Promise<PodJson[]> =>
    (JSON.parse(await d.kubectl('-n', namespace, 'get', 'pods', '-l', selector, '-o', 'json')) as { items: PodJson[] }).items.filter(
      (p) => !p.metadata.deletionTimestamp,
    );
  const instancePod = async (id: string): Promise<PodJson> => {
    const [pod] = await pods(INSTANCE_NS, `codebay.dev/instance=${id}`);
    if (!pod) throw new Error(`no pod for instance ${id}`);
    return pod;
  };
  const cat = async (id: string, path: string) => {
    const r = await d.execInstance(id, ['cat', path]);
    return r.code === 0 ? r.stdout : undefined;
  };
  const create = async (make: () => Promise<InstanceResponse>) => {
    const inst = await make();
    created.push(inst.instance_id);
    return inst;
  };
  const logLines = async (id: string): Promise<string[]> => ((await d.client().buildLogs(id)).lines ?? []).map((l) => l.text ?? '');
  /** The builder pods a build ran on, in order (one per attempt). */
  const buildersOf = async (id: string): Promise<string[]> =>
    (await logLines(id)).flatMap((l) => /building build key \w+ on builder (codebay-builder-\S+)/.exec(l)?.[1] ?? []);

  beforeAll(async () => {
    // The extension source a platform team would keep on a file share: one .vsix, readable by the builder (uid 10001).
    await rm(EXTENSION_SOURCE, { recursive: true, force: true });
    await mkdir(EXTENSION_SOURCE, { recursive: true });
    await chmod(EXTENSION_SOURCE, 0o755);
    makeVsix(join(EXTENSION_SOURCE, 'node.vsix'), { publisher: 'codebay-test', name: 'node', version: '2.0.1' });
    // One builder at first: a test below scales them to two.
    d = await deployToNode({ logFile: join(LOG_DIR, 'node-deploy.log'), builders: 1, extensionSource: EXTENSION_SOURCE });
    const ip = d.node.ingressIp;
    browser = await launchChromium([`--host-resolver-rules=MAP ${NODE_DOMAIN} ${ip}, MAP *.${NODE_DOMAIN} ${ip}`]);
  }, 40 * 60_000);

  afterAll(async () => {
    await browser?.close();
    if (!d) return;
    for (const id of created) await d.api(`/api/instances/${id}`, { method: 'DELETE' }).catch(() => undefined);
    for (const id of created) await waitForStatus(d, id, ['Deleted'], 60_000).catch(() => undefined);
    // The product keeps a user's shared volume; the test removes its own test user's.
    await d.kubectl('-n', INSTANCE_NS, 'delete', 'pvc', `codebay-shared-${user}`, '--ignore-not-found', '--wait=false').catch(() => undefined);
  });

  it('deploy.sh brings every platform pod to Ready; instances get a namespace that enforces Pod Security baseline', async () => {
    const byApp = await platformReady(d);
    expect(Object.keys(byApp).sort()).toEqual(['codebay-builder', 'codebay-gateway', 'codebay-provisioner', 'codebay-redis']);
    const ns = JSON.parse(await d.kubectl('get', 'namespace', INSTANCE_NS, '-o', 'json')) as { metadata: { labels: Record<string, string> } };
    expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('baseline');
    // The API answers through Traefik with the deployment's own certificate.
    const health = await d.api('/api/health', { token: null });
    expect(health.status).toBe(200);
    // Admission refuses what baseline forbids in the instance namespace (a privileged pod).
    const refused = await d
      .kubectl(
        '-n',
        INSTANCE_NS,
        'run',
        `priv-${randomBytes(2).toString('hex')}`,
        '--image=debian:bookworm',
        '--restart=Never',
        '--dry-run=server',
        '--overrides={"spec":{"containers":[{"name":"c","image":"debian:bookworm","securityContext":{"privileged":true}}]}}',
      )
      .then(
        () => 'admitted',
        (err: Error) => err.message,
      );
    expect(refused).toMatch(/violates PodSecurity "baseline:latest": privileged/);
  });

  it('refuses the API without a token (401) and an editor without the instance token', async () => {
    expect((await d.api('/api/instances', { token: null })).status).toBe(401);
    expect((await d.api('/api/instances', { token: 'not-a-token' })).status).toBe(401);
  });

  it('builds samples/simple-devcontainer.json on a builder pod’s Docker-in-Docker sidecar, pushes it, and the kubelet pulls and runs it', async () => {
    simple = await create(async () => createFromDevcontainer(d, user, await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`)));
    expect(simple.editor_url).toBe(`https://${simple.instance_id}.${NODE_DOMAIN}/`);
    const running = await waitForStatus(d, simple.instance_id, ['Running'], 300_000);
    expect(running.devcontainer_image).toMatch(/^localhost:32000\/codebay-devcontainer@sha256:[0-9a-f]{64}$/);
    const lines = await logLines(simple.instance_id);
    expect(lines.some((l) => /building build key \w+ on builder codebay-builder-/.test(l))).toBe(true);
    expect(lines.some((l) => l.startsWith('codebay: pushed localhost:32000/codebay-devcontainer@sha256:'))).toBe(true);
    // The pod runs the pushed digest, in a user namespace of its own; the kubelet pulled it.
    const pod = await instancePod(simple.instance_id);
    expect(pod.spec.containers.find((c) => c.name === 'editor')?.image).toBe(running.devcontainer_image);
    expect(pod.spec.hostUsers).toBe(false);
    // Root in the pod (the image's default user) is an unprivileged user on the node.
    expect((await d.execInstance(simple.instance_id, ['id', '-u'])).stdout.trim()).toBe('0');
    const uidMap = (await d.execInstance(simple.instance_id, ['cat', '/proc/self/uid_map'])).stdout.trim().split(/\s+/);
    expect(uidMap[0]).toBe('0');
    expect(uidMap[1]).not.toBe('0');
    const events = await d.kubectl('-n', INSTANCE_NS, 'get', 'events', '--field-selector', `involvedObject.name=${pod.metadata.name}`, '-o', 'json');
    expect(events).toMatch(/"reason": "(Pulled|Pulling)"/);
  });

  it('a builder bakes an extension from the PersistentVolumeClaim deploy.sh mounted read-only (EXTENSION_SOURCE_PVC)', async () => {
    const builder = JSON.parse(await d.kubectl('-n', PLATFORM_NS, 'get', 'deployment', 'codebay-builder', '-o', 'json')) as {
      spec: { template: { spec: { volumes: Array<{ name: string; persistentVolumeClaim?: { claimName: string; readOnly?: boolean } }> } } };
    };
    expect(builder.spec.template.spec.volumes.find((v) => v.name === 'extension-source')?.persistentVolumeClaim).toEqual({
      claimName: 'codebay-test-extension-source',
      readOnly: true,
    });
    const file = uniqueConfigFile({
      customizations: { vscode: { extensions: ['codebay-test.node'] } },
    });
    const dir = dirname(file);
    try {
      const inst = await create(() => createFromDevcontainer(d, user, file));
      const running = await waitForStatus(d, inst.instance_id, ['Running'], 300_000);
      expect(running.warnings.filter((w) => w.property === 'customizations.vscode.extensions')).toEqual([]);
      expect(await logLines(inst.instance_id)).toContain('codebay: extension codebay-test.node 2.0.1: baked into the image');
      expect(JSON.parse((await cat(inst.instance_id, '/usr/local/share/codebay/extensions/index.json')) ?? 'null')).toEqual({
        extensions: [{ id: 'codebay-test.node', version: '2.0.1', file: 'codebay-test.node-2.0.1.vsix' }],
        missing: [],
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('opens VS Code in Chromium through the ingress; a terminal there writes to /workspace and /shared; postCreate ran', async () => {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    try {
      await openWorkbench(page, simple.url, join(LOG_DIR, `node-no-workbench-${simple.instance_id}.png`), 90_000);
      expect(page.url().startsWith(simple.editor_url)).toBe(true);
      expect(page.url()).not.toContain('tkn=');
      // Under https the cookie is `__Host-` (host-only, Secure, path /: browsers enforce it).
      const session = (await context.cookies()).find((c) => c.name === '__Host-codebay_tkn');
      expect(session).toMatchObject({ domain: new URL(simple.editor_url).hostname, path: '/', httpOnly: true, secure: true });
      const marker = await writeFromTerminal(
        page,
        (path) => cat(simple.instance_id, path),
        join(LOG_DIR, `node-no-terminal-${simple.instance_id}.png`),
        90_000,
      );
      expect((await cat(simple.instance_id, '/shared/from-first.txt'))?.trim()).toBe(`shared-${marker}`);
      expect(await cat(simple.instance_id, '/workspace/.sample-post-create')).toMatch(/^created \S+ as /);
      // The window attached: postAttachCommand ran (the provisioner read its state from the pod's log).
      const attached = await waitForLifecycle(d, simple.instance_id, 60_000, (l) => l.commands.postAttachCommand?.state === 'succeeded');
      expect(attached.lifecycle?.ok).toBe(true);
      expect(await cat(simple.instance_id, '/workspace/.sample-post-attach')).toMatch(/^attached /);
    } finally {
      await context.close();
    }
    // Without the instance token the editor's origin answers 401, through the same ingress.
    expect((await d.fetch(simple.editor_url, { redirect: 'manual' })).status).toBe(401);
    expect((await d.fetch(`${simple.editor_url}?tkn=wrong${simple.access_token}`, { redirect: 'manual' })).status).toBe(401);
  });

  it('builds samples/python from a workspace upload: seeded /workspace, Dockerfile, local feature, lifecycle as the remoteUser; /shared is the user’s', async () => {
    python = await create(async () => createFromWorkspace(d, user, await packWorkspace(await uniqueWorkspace(`${SAMPLES}/python`))));
    await waitForStatus(d, python.instance_id, ['Running'], 480_000);
    // postCreate and postStart run with the editor up: their files are there once the lifecycle ended.
    expect((await waitForLifecycle(d, python.instance_id, 120_000)).lifecycle?.ok).toBe(true);
    const id = python.instance_id;
    expect(await cat(id, '/workspace/hello.py')).toContain('python');
    expect(await cat(id, '/opt/sample/requirements.txt')).toContain('No third-party packages');
    expect(await cat(id, '/workspace/.sample-post-create')).toMatch(/^python 3\.\d+\.\d+ ok/);
    expect((await d.execInstance(id, ['stat', '-c', '%U', '/workspace/.sample-post-create'])).stdout.trim()).toBe('dev');
    expect(await cat(id, '/workspace/.sample-post-start')).toContain('Hello from the local feature');
    // The second instance of the same user sees what the first wrote to /shared.
    expect((await cat(id, '/shared/from-first.txt'))?.trim()).toMatch(/^shared-[0-9a-f]{8}$/);
  });

  it(
    'workspaceMount, workspaceFolder and forwardPorts on the node: the volume at the target, a port at its own origin through the ingress, guarded by the token',
    async () => {
      const file = uniqueConfigFile({
        workspaceMount: 'source=${localWorkspaceFolder},target=/src/app,type=bind',
        workspaceFolder: '/src/app',
        forwardPorts: [3000],
        portsAttributes: { '3000': { label: 'Web app' } },
        postStartCommand: portAppCommand([3000]),
      });
      const inst = await create(() => createFromDevcontainer(d, user, file));
      const id = inst.instance_id;
      try {
        expect(inst.workspace_folder).toBe('/src/app');
        expect(inst.ports).toEqual([
          {
            port: 3000,
            label: 'Web app',
            origin: `https://${id}-3000.${NODE_DOMAIN}/`,
            url: `https://${id}-3000.${NODE_DOMAIN}/?tkn=${encodeURIComponent(inst.access_token)}`,
          },
        ]);
        await waitForStatus(d, id, ['Running'], 480_000);
        // The instance's own volume at the target; the container starts in the folder.
        const pod = JSON.parse(await d.kubectl('-n', INSTANCE_NS, 'get', 'pods', '-l', `codebay.dev/instance=${id}`, '-o', 'json')) as {
          items: { spec: { containers: { name: string; workingDir?: string; volumeMounts?: { name: string; mountPath: string }[] }[] } }[];
        };
        const editor = pod.items[0]!.spec.containers.find((c) => c.name === 'editor')!;
        expect(editor.workingDir).toBe('/src/app');
        expect(editor.volumeMounts).toContainEqual({ name: 'workspace', mountPath: '/src/app' });
        // The port through Traefik and the gateway: the token becomes a cookie of the port's own origin.
        const port = inst.ports[0]!;
        const opened = await d.fetch(port.url, { redirect: 'manual' });
        expect(opened.status).toBe(302);
        const cookie = (opened.headers.getSetCookie() ?? []).map((c) => c.split(';', 1)[0]!).find((c) => c.startsWith('__Host-codebay_tkn='));
        expect(cookie).toBe(`__Host-codebay_tkn=${inst.access_token}`);
        const answer = await waitFor(
          'the application on port 3000 to answer through the ingress',
          async () => {
            const r = await d.fetch(`${port.origin}hello`, { headers: { cookie: cookie! }, redirect: 'manual' });
            return r.status === 200 ? r.text() : undefined;
          },
          120_000,
          500,
        );
        expect(answer).toBe('app-3000 GET /hello');
        expect((await d.fetch(`${port.origin}hello`, { redirect: 'manual' })).status).toBe(401);
      } finally {
        // The node is small: this instance's capacity goes back to the tests after it.
        await d.api(`/api/instances/${id}`, { method: 'DELETE' });
        await waitForStatus(d, id, ['Deleted'], 120_000).catch(() => undefined);
      }
    },
    15 * 60_000,
  );

  it('a sudo-configured image: the remoteUser’s sudo works in the pod’s user namespace (Pod Security baseline admits it)', async () => {
    const inst = await create(async () =>
      createFromWorkspace(
        d,
        user,
        await workspaceTarball({
          config: {
            build: { dockerfile: 'Dockerfile' },
            remoteUser: 'dev',
            postCreateCommand: 'sudo -n id -u > /workspace/.sudo-uid',
            containerEnv: { CODEBAY_NODE_RUN: randomBytes(4).toString('hex') },
          },
          dockerfile:
            'FROM debian:bookworm\n' +
            'RUN apt-get update && apt-get install -y --no-install-recommends sudo && rm -rf /var/lib/apt/lists/* \\\n' +
            " && useradd --create-home --uid 1000 dev && echo 'dev ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/dev && chmod 0440 /etc/sudoers.d/dev\n",
        }),
      ),
    );
    await waitForStatus(d, inst.instance_id, ['Running'], 480_000);
    await waitForLifecycle(d, inst.instance_id, 120_000);
    expect((await cat(inst.instance_id, '/workspace/.sudo-uid'))?.trim()).toBe('0');
    expect((await d.execInstance(inst.instance_id, ['stat', '-c', '%U', '/workspace/.sudo-uid'])).stdout.trim()).toBe('dev');
    expect((await instancePod(inst.instance_id)).spec.hostUsers).toBe(false);
    await d.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' });
  });

  it('an instance pod reaches neither another instance, Redis, the registry, the builders, the API server nor the host (NetworkPolicy, enforced), nor forges addresses (no raw sockets)', async () => {
    const other = (await instancePod(simple.instance_id)).status.podIP!;
    const [builder] = await pods(PLATFORM_NS, 'app.kubernetes.io/name=codebay-builder');
    const builderIp = builder!.status.podIP!;
    const probe = async (host: string, port: number) =>
      (
        await d.execInstance(python.instance_id, ['bash', '-c', `timeout 4 bash -c '</dev/tcp/${host}/${port}' 2>/dev/null && echo open || echo closed`])
      ).stdout.trim();
    // The probe works: the gateway (where an instance fetches its upload) is open to it.
    expect(await probe(`codebay-gateway.${PLATFORM_NS}.svc.cluster.local`, 8080)).toBe('open');
    expect(await probe(other, 8080)).toBe('closed');
    expect(await probe(`codebay-redis.${PLATFORM_NS}.svc.cluster.local`, 6379)).toBe('closed');
    // The registry (no authentication, as MicroK8s' addon): neither its Service nor its node port,
    // which is rewritten to the registry pod's address before the policy is checked.
    expect(await probe('registry.container-registry.svc.cluster.local', 5000)).toBe('closed');
    expect(await probe(d.node.ingressIp, 32000)).toBe('closed');
    expect(await probe(builderIp, 9101)).toBe('closed');
    // The gateway's metrics port: not the public one, and not open to instances.
    const [gatewayPod] = await pods(PLATFORM_NS, 'app.kubernetes.io/name=codebay-gateway');
    expect(await probe(gatewayPod!.status.podIP!, 8080)).toBe('open');
    expect(await probe(gatewayPod!.status.podIP!, 9103)).toBe('closed');
    expect(await probe('kubernetes.default.svc.cluster.local', 443)).toBe('closed');
    expect(await probe(d.node.ingressIp, 16443)).toBe('closed');
    // The host's own public address (deploy.sh's INSTANCE_EGRESS_EXCEPT): a port listening there
    // (as a node's host services do) gets no connection from the instance.
    const [hostAddress] = hostPublicAddresses();
    expect(hostAddress, 'this machine has a public IPv4 address to probe').toBeDefined();
    const listener = createServer();
    let reached = 0;
    listener.on('connection', (socket) => {
      reached++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, hostAddress!.replace('/32', ''), resolve));
    try {
      const port = (listener.address() as AddressInfo).port;
      expect(await probe(hostAddress!.replace('/32', ''), port)).toBe('closed');
      expect(reached).toBe(0);
      // …which a pod without that policy (the gateway's) does reach: the address leads to the host.
      const [gateway] = await pods(PLATFORM_NS, 'app.kubernetes.io/name=codebay-gateway');
      const connect = `require('net').connect(${port}, '${hostAddress!.replace('/32', '')}').on('connect', () => process.exit(0)).on('error', () => process.exit(1))`;
      await d.kubectl('-n', PLATFORM_NS, 'exec', gateway!.metadata.name, '--', 'node', '-e', connect);
      await waitFor('the listener to see the gateway pod connect', () => (reached === 1 ? true : undefined), 5_000, 20);
    } finally {
      listener.close();
    }
    // NetworkPolicy filters by source address: with raw sockets a pod on the node's bridge forges
    // other pods' (ARP and IP spoofing, found by a hostile review). Not even root in the pod has them.
    for (const family of ['AF_PACKET', 'AF_INET']) {
      const raw = await d.execInstance(python.instance_id, [
        'python3',
        '-c',
        `import socket; socket.socket(socket.${family}, socket.SOCK_RAW, 0 if '${family}' == 'AF_PACKET' else socket.IPPROTO_TCP)`,
      ]);
      expect(raw.code, family).not.toBe(0);
      expect(raw.stderr, family).toContain('PermissionError');
    }
  });

  it('kubectl scale the builders to 2: two builds run at the same time on two Docker-in-Docker sidecars', async () => {
    await d.kubectl('-n', PLATFORM_NS, 'scale', 'deployment/codebay-builder', '--replicas=2');
    await waitFor(
      'two builder pods Ready',
      async () => {
        const ready = (await pods(PLATFORM_NS, 'app.kubernetes.io/name=codebay-builder')).filter((p) => p.status.phase === 'Running');
        return ready.length === 2 ? ready : undefined;
      },
      180_000,
      1_000,
    );
    await platformReady(d);
    const [a, b] = await Promise.all([
      create(async () => createFromDevcontainer(d, user, await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`))),
      create(async () => createFromDevcontainer(d, user, await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`))),
    ]);
    const [ra, rb] = await Promise.all([waitForStatus(d, a!.instance_id, ['Running'], 300_000), waitForStatus(d, b!.instance_id, ['Running'], 300_000)]);
    const [[ba], [bb]] = await Promise.all([buildersOf(ra.instance_id), buildersOf(rb.instance_id)]);
    expect(ba).toBeDefined();
    expect(bb).toBeDefined();
    expect(ba).not.toBe(bb);
    // The two build windows overlap.
    const t = (s: string | null | undefined) => Date.parse(s ?? '');
    expect(t(ra.timings.build_started_at)).toBeLessThan(t(rb.timings.build_ended_at));
    expect(t(rb.timings.build_started_at)).toBeLessThan(t(ra.timings.build_ended_at));
    for (const r of [ra, rb]) await d.api(`/api/instances/${r.instance_id}`, { method: 'DELETE' });
  });

  it('a builder pod deleted mid-build: the build is retried on another builder and the instance ends Running', async () => {
    // A build step that takes a while (and is new to every daemon): the deletion lands inside it.
    const inst = await create(async () =>
      createFromWorkspace(
        d,
        user,
        await workspaceTarball({
          config: { build: { dockerfile: 'Dockerfile' }, containerEnv: { CODEBAY_NODE_RUN: randomBytes(4).toString('hex') } },
          dockerfile: `FROM debian:bookworm\nRUN echo ${randomBytes(4).toString('hex')} > /opt/run && sleep 15\n`,
        }),
      ),
    );
    const victim = await waitFor('the build to start on a builder', async () => (await buildersOf(inst.instance_id))[0], 120_000, 500);
    await d.kubectl('-n', PLATFORM_NS, 'delete', 'pod', victim, '--grace-period=1', '--wait=false');
    const running = await waitForStatus(d, inst.instance_id, ['Running'], 600_000);
    const builders = await buildersOf(running.instance_id);
    expect(builders[0]).toBe(victim);
    expect(builders.at(-1)).not.toBe(victim);
    await d.api(`/api/instances/${running.instance_id}`, { method: 'DELETE' });
  });

  it(
    'a rolling restart of the gateway, then the builders and the provisioner, during builds, a follow and provisioning: every instance ends Running with one pod; the follower resumes, no line lost or repeated',
    async () => {
      const platform = ['deployment/codebay-gateway', 'deployment/codebay-builder', 'deployment/codebay-provisioner'];
      // The test node has 2 cores: the instances of earlier tests (but `simple` and `python`,
      // which the last test uses) go first, so that the rollouts' pods and this test's three
      // instances fit.
      const earlier = created.filter((id) => id !== simple.instance_id && id !== python.instance_id);
      for (const id of earlier) await d.api(`/api/instances/${id}`, { method: 'DELETE' });
      await Promise.all(earlier.map((id) => waitForStatus(d, id, ['Deleted'], 120_000)));
      // A build that outlasts the gateway's rollout (each old pod: preStop 5 s, then draining ends
      // its log streams) and ends within the builder's grace period (45 s), followed by a client;
      // two more requests queued behind it or being provisioned meanwhile. The gateway restarts
      // when the build starts, the builders and the provisioner once the follower has resumed.
      const followed = await create(async () =>
        createFromWorkspace(
          d,
          user,
          await workspaceTarball({
            config: { build: { dockerfile: 'Dockerfile' }, containerEnv: { CODEBAY_NODE_ROLL: randomBytes(4).toString('hex') } },
            dockerfile: `FROM debian:bookworm\nRUN echo ${randomBytes(4).toString('hex')} && sleep 40 && echo slept\n`,
          }),
        ),
      );
      const others = await Promise.all(
        [1, 2].map(() => create(async () => createFromDevcontainer(d, user, await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`)))),
      );
      const seen: string[] = [];
      const reconnects: string[] = [];
      const restarts: Array<Promise<unknown>> = [];
      const restart = (...deployments: string[]) =>
        restarts.push(d.kubectl('-n', PLATFORM_NS, 'rollout', 'restart', ...deployments).catch((err: Error) => err));
      let end: Awaited<ReturnType<ReturnType<NodeDeployment['client']>['followLogs']>>;
      try {
        end = await d.client().followLogs(followed.instance_id, {
          onLine: (line) => {
            seen.push(line.text);
            if (!restarts.length && /building build key/.test(line.text)) restart(platform[0]!);
          },
          onReconnect: (after, err) => {
            if (!reconnects.length) restart(platform[1]!, platform[2]!);
            reconnects.push(`${after}: ${err.message}`);
          },
        });
      } finally {
        // Whatever the outcome, the next test starts with every deployment rolled out and serving.
        await Promise.all(restarts);
        for (const w of platform) await d.kubectl('-n', PLATFORM_NS, 'rollout', 'status', w, '--timeout=300s');
        await platformReady(d);
      }
      expect(restarts).toHaveLength(2);
      for (const r of await Promise.all(restarts)) expect(r).not.toBeInstanceOf(Error);
      expect(reconnects.length).toBeGreaterThan(0);
      expect(end.outcome).toBe('success');
      expect(seen).toEqual(await logLines(followed.instance_id));
      for (const inst of [followed, ...others]) {
        const r = await waitForStatus(d, inst.instance_id, ['Running', 'Failed'], 300_000);
        expect(r.status, r.error ?? '').toBe('Running');
        // One Deployment, one pod: nothing provisioned twice over.
        const objects = (await d.kubectl('-n', INSTANCE_NS, 'get', 'deployment,pod', '-l', `codebay.dev/instance=${inst.instance_id}`, '-o', 'name'))
          .trim()
          .split('\n');
        expect(objects.filter((o) => o.startsWith('deployment'))).toHaveLength(1);
        expect(objects.filter((o) => o.startsWith('pod'))).toHaveLength(1);
      }
      for (const inst of [followed, ...others]) await d.api(`/api/instances/${inst.instance_id}`, { method: 'DELETE' });
    },
    15 * 60_000,
  );

  it('delete garbage-collects every object of the instance but the user’s shared PVC', async () => {
    const id = simple.instance_id;
    expect((await d.api(`/api/instances/${id}`, { method: 'DELETE' })).status).toBe(202);
    await waitForStatus(d, id, ['Deleted'], 120_000);
    await waitFor(
      `the objects of ${id} to be gone`,
      async () => {
        const left = (
          await d.kubectl('-n', INSTANCE_NS, 'get', 'all,pvc,secret,configmap,networkpolicy', '-l', `codebay.dev/instance=${id}`, '-o', 'name')
        ).trim();
        return left === '' ? true : undefined;
      },
      120_000,
      1_000,
    );
    expect((await d.kubectl('-n', INSTANCE_NS, 'get', 'pvc', `codebay-shared-${user}`, '-o', 'name')).trim()).toBe(
      `persistentvolumeclaim/codebay-shared-${user}`,
    );
    expect((await getInstance(d, python.instance_id)).status).toBe('Running');
  });
});
