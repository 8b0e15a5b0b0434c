import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFromDevcontainer, uniqueDevcontainer, waitForStatus } from '../support/instances.ts';
import { INSTANCE_NS, PLATFORM_NS, deployToNode, type NodeDeployment } from '../support/node-deployment.ts';
import { LOG_DIR } from '../support/stack.ts';

const SAMPLES = fileURLToPath(new URL('../../samples', import.meta.url));

interface PodJson {
  metadata: { name: string };
  spec: { imagePullSecrets?: Array<{ name: string }>; containers: Array<{ name: string; image: string }> };
}

/**
 * `deploy.sh --with-registry` on the real node: instance images live in codebay's own registry
 * (deploy/kubernetes/components/registry: a read-only pull endpoint on node port 32001 with a
 * pull-only user, a push endpoint only builder pods reach, with the push user) instead of the
 * registry the cluster has. Leaves the node with the default deployment again.
 */
describe('codebay with its own registry on a real node (deploy.sh --with-registry)', () => {
  let d: NodeDeployment;
  const user = `reg-${randomBytes(3).toString('hex')}`;
  const created: string[] = [];
  /** user:password of a registry user deploy.sh generated (its state file holds the password, or user:password). */
  const userAuth = (who: 'pull' | 'push') =>
    `codebay-${who}:${readFileSync(join(d.stateDir, 'secrets', `registry-${who}`), 'utf8')
      .trim()
      .replace(`codebay-${who}:`, '')}`;
  const registry = () => `http://${d.node.ingressIp}:32001`;
  const basic = (auth: string) => `Basic ${Buffer.from(auth).toString('base64')}`;
  const podOf = async (selector: string, namespace = PLATFORM_NS): Promise<string> => {
    const pods = JSON.parse(await d.kubectl('-n', namespace, 'get', 'pods', '-l', selector, '-o', 'json')) as { items: PodJson[] };
    return pods.items[0]!.metadata.name;
  };
  /** Whether a TCP connection from the pod's first container to host:port is accepted (node -e; 4 s). */
  const connectsFrom = async (pod: string, host: string, port: number, container?: string): Promise<boolean> => {
    const script = `const s = require('net').connect(${port}, '${host}'); s.setTimeout(4000, () => process.exit(1)); s.on('connect', () => process.exit(0)).on('error', () => process.exit(1))`;
    return d.kubectl('-n', PLATFORM_NS, 'exec', pod, ...(container ? ['-c', container] : []), '--', 'node', '-e', script).then(
      () => true,
      () => false,
    );
  };

  beforeAll(async () => {
    d = await deployToNode({ logFile: join(LOG_DIR, 'node-deploy-registry.log'), builders: 1, withRegistry: true });
  }, 40 * 60_000);

  afterAll(async () => {
    if (!d) return;
    for (const id of created) await d.api(`/api/instances/${id}`, { method: 'DELETE' }).catch(() => undefined);
    for (const id of created) await waitForStatus(d, id, ['Deleted'], 60_000).catch(() => undefined);
    await d.kubectl('-n', INSTANCE_NS, 'delete', 'pvc', `codebay-shared-${user}`, '--ignore-not-found', '--wait=false').catch(() => undefined);
    // The next default deployToNode() removes the component (every node suite deploys first).
  }, 10 * 60_000);

  it('the pull endpoint refuses anonymous requests and unknown users, lets the pull user read, and is read-only', async () => {
    expect((await fetch(`${registry()}/v2/_catalog`)).status).toBe(401);
    expect((await fetch(`${registry()}/v2/_catalog`, { headers: { authorization: basic('codebay-pull:wrong') } })).status).toBe(401);
    expect((await fetch(`${registry()}/v2/_catalog`, { headers: { authorization: basic(userAuth('push')) } })).status).toBe(401);
    const pull = basic(userAuth('pull'));
    expect((await fetch(`${registry()}/v2/_catalog`, { headers: { authorization: pull } })).status).toBe(200);
    const upload = await fetch(`${registry()}/v2/codebay-devcontainer/blobs/uploads/`, { method: 'POST', headers: { authorization: pull } });
    expect(upload.status).toBe(405);
  });

  it('builds the simple sample: the builder pushes with its user, the kubelet pulls from localhost:32001 with the instance pull Secret', async () => {
    const inst = await createFromDevcontainer(d, user, await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`));
    created.push(inst.instance_id);
    const running = await waitForStatus(d, inst.instance_id, ['Running'], 300_000);
    expect(running.devcontainer_image).toMatch(/^localhost:32001\/codebay-devcontainer@sha256:[0-9a-f]{64}$/);
    const pod = JSON.parse(await d.kubectl('-n', INSTANCE_NS, 'get', 'pods', '-l', `codebay.dev/instance=${inst.instance_id}`, '-o', 'json')) as {
      items: PodJson[];
    };
    expect(pod.items[0]!.spec.imagePullSecrets).toEqual([{ name: 'codebay-registry-pull' }]);
    expect(pod.items[0]!.spec.containers.find((c) => c.name === 'editor')?.image).toBe(running.devcontainer_image);
    // The registry holds it, as the pull user sees it.
    const digest = running.devcontainer_image!.split('@')[1]!;
    const manifest = await fetch(`${registry()}/v2/codebay-devcontainer/manifests/${digest}`, {
      method: 'HEAD',
      headers: {
        authorization: basic(userAuth('pull')),
        accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
      },
    });
    expect(manifest.status).toBe(200);
    // The instance reaches neither endpoint (NetworkPolicy), nor the node port.
    const probe = async (host: string, port: number) =>
      (
        await d.execInstance(inst.instance_id, ['bash', '-c', `timeout 4 bash -c '</dev/tcp/${host}/${port}' 2>/dev/null && echo open || echo closed`])
      ).stdout.trim();
    expect(await probe(`codebay-gateway.${PLATFORM_NS}.svc.cluster.local`, 8080)).toBe('open');
    expect(await probe(`codebay-registry.${PLATFORM_NS}.svc.cluster.local`, 5000)).toBe('closed');
    expect(await probe(`codebay-registry-push.${PLATFORM_NS}.svc.cluster.local`, 5000)).toBe('closed');
    expect(await probe(d.node.ingressIp, 32001)).toBe('closed');
  });

  it('only builder pods reach the push endpoint (NetworkPolicy); the gateway reaches the pull endpoint only', async () => {
    const push = `codebay-registry-push.${PLATFORM_NS}.svc.cluster.local`;
    const pull = `codebay-registry.${PLATFORM_NS}.svc.cluster.local`;
    const builder = await podOf('app.kubernetes.io/name=codebay-builder');
    const gateway = await podOf('app.kubernetes.io/name=codebay-gateway');
    expect(await connectsFrom(builder, push, 5000, 'builder')).toBe(true);
    expect(await connectsFrom(gateway, pull, 5000)).toBe(true);
    expect(await connectsFrom(gateway, push, 5000)).toBe(false);
  });
});
