import { newInstanceRecord, resourcesSchema } from '@codebay/contracts';
import { describe, expect, it } from 'vitest';
import { instanceObjects, k8sNames, rootObject, sharedVolume, type KubernetesLayout } from './kubernetes-objects.ts';

const layout: KubernetesLayout = {
  namespace: 'vscode-system',
  baseDomain: 'vscode.local',
  tlsSecret: 'codebay-tls',
  ingressClass: 'public',
  gatewayInternalUrl: 'http://gw:8080',
  ingressNamespace: 'ingress',
  editorImageRepo: 'localhost:32000/codebay-editor',
  sharedAccessMode: 'ReadWriteMany',
  runAsUser: 1000,
};

const record = {
  ...newInstanceRecord({
    id: `${'u'.repeat(40)}-abcdefgh`,
    userId: 'u'.repeat(40),
    source: 'simple',
    accessToken: 'tok',
    baseImage: 'debian:bookworm',
    artifact: null,
    resources: resourcesSchema.parse({ memory_limit: '1Gi' }),
    vscodeVersion: '1.100.3',
  }),
};

describe('Kubernetes objects of an instance', () => {
  const root = { name: k8sNames.root(record.id), uid: 'uid-1' };
  const o = instanceObjects(record, layout, root);

  it('keeps names valid for the longest user id: Service names are DNS labels, the rest DNS subdomains', () => {
    const label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
    expect(k8sNames.service(record.id).length).toBeLessThanOrEqual(63);
    expect(k8sNames.service(record.id)).toMatch(label);
    for (const name of [
      k8sNames.root(record.id),
      k8sNames.deployment(record.id),
      k8sNames.workspace(record.id),
      k8sNames.secret(record.id),
      k8sNames.shared(record.userId),
    ]) {
      expect(name.length).toBeLessThanOrEqual(253);
      expect(name).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    }
  });

  it('owns everything by the root, and not the shared volume', () => {
    for (const obj of Object.values(o))
      expect(obj.metadata?.ownerReferences).toEqual([expect.objectContaining({ kind: 'ConfigMap', uid: 'uid-1', controller: true })]);
    expect(sharedVolume(record, layout).metadata?.ownerReferences).toBeUndefined();
    expect(rootObject(record, layout).metadata?.ownerReferences).toBeUndefined();
  });

  it('meets the restricted Pod Security Standard with the requested resources', () => {
    const pod = o.deployment.spec!.template.spec!;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
      expect(c.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    }
    expect(pod.containers[0]!.resources).toEqual({ requests: { cpu: '200m', memory: '512Mi' }, limits: { cpu: '1000m', memory: '1Gi' } });
    expect(pod.initContainers![0]!.image).toBe('localhost:32000/codebay-editor:1.100.3');
    expect(pod.automountServiceAccountToken).toBe(false);
  });

  it('routes /instances/<id> through the gateway check to the Service and only lets the ingress reach the editor', () => {
    expect(o.ingress.metadata?.annotations?.['nginx.ingress.kubernetes.io/auth-url']).toBe(`http://gw:8080/auth/instances/${record.id}`);
    expect(o.ingress.spec?.rules?.[0]?.http?.paths[0]?.backend.service?.name).toBe(k8sNames.service(record.id));
    expect(o.ingress.spec?.tls?.[0]).toEqual({ hosts: ['vscode.local'], secretName: 'codebay-tls' });
    expect(o.networkPolicy.spec?.ingress?.[0]?._from).toHaveLength(2);
  });

  it('has a workspace instance fetch its upload with its own token from the Secret, and no other instance', () => {
    const env = (r: typeof record) => instanceObjects(r, layout, root).deployment.spec!.template.spec!.containers[0]!.env ?? [];
    expect(env(record).some((e) => e.name.startsWith('CODEBAY_SEED'))).toBe(false);
    const ws = env({ ...record, source: 'workspace', artifact: 'a'.repeat(64) });
    expect(ws).toContainEqual({ name: 'CODEBAY_SEED_URL', value: `http://gw:8080/seed/instances/${record.id}` });
    expect(ws).toContainEqual({ name: 'CODEBAY_SEED_TOKEN', valueFrom: { secretKeyRef: { name: k8sNames.secret(record.id), key: 'access-token' } } });
    expect(JSON.stringify(ws)).not.toContain('"tok"');
  });
});
