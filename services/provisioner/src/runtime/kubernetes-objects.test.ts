import { newInstanceRecord, resourcesSchema } from '@codebay/contracts';
import { describe, expect, it } from 'vitest';
import { KEPT_UNTIL_ANNOTATION, instanceObjects, k8sNames, keptObjects, rootObject, sharedVolume, type KubernetesLayout } from './kubernetes-objects.ts';

const layout: KubernetesLayout = {
  namespace: 'vscode-system',
  platformNamespace: 'codebay-system',
  gatewayInternalUrl: 'http://gw:8080',
  imagePullSecret: 'codebay-registry-pull',
  editorImageRepo: 'localhost:32000/codebay-editor',
  sharedAccessMode: 'ReadWriteMany',
  runAsUser: 1000,
};

const record = {
  ...newInstanceRecord({
    id: `${'u'.repeat(40)}-abcdefgh`,
    userId: 'u'.repeat(40),
    source: 'simple',
    accessTokenHash: 'h',
    accessTokenSealed: 's',
    baseImage: 'debian:bookworm',
    artifact: null,
    resources: resourcesSchema.parse({ memory_limit: '1Gi' }),
    vscodeVersion: '1.100.3',
  }),
};

describe('Kubernetes objects of an instance', () => {
  const root = { name: k8sNames.root(record.id), uid: 'uid-1' };
  const credentials = { editorSecret: 'editor-secret-value', seedToken: 'seed-token-value' };
  const o = instanceObjects(record, layout, root, credentials);

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

  it('runs in a user namespace of its own under Pod Security baseline (sudo works, nothing privileged), with the requested resources', () => {
    const pod = o.deployment.spec!.template.spec!;
    expect(pod.hostUsers).toBe(false);
    expect(pod.securityContext).toMatchObject({ seccompProfile: { type: 'RuntimeDefault' } });
    const editor = pod.containers[0]!;
    expect(editor.securityContext).toEqual({ seccompProfile: { type: 'RuntimeDefault' }, capabilities: { drop: ['NET_RAW'] } });
    expect(JSON.stringify(pod)).not.toMatch(/privileged|hostNetwork|hostPID|hostIPC|hostPath|add"/);
    expect(pod.initContainers![0]!.securityContext).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true });
    expect(editor.resources).toEqual({ requests: { cpu: '200m', memory: '512Mi' }, limits: { cpu: '1000m', memory: '1Gi' } });
    expect(pod.initContainers![0]!.image).toBe('localhost:32000/codebay-editor:1.100.3');
    // The tag is the VS Code version, not the launcher's: always asked for again, so a node never keeps an older launcher.
    expect(pod.initContainers![0]!.imagePullPolicy).toBe('Always');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.imagePullSecrets).toEqual([{ name: 'codebay-registry-pull' }]);
    // An editor that exits leaves its last log lines as termination message, for the failure reason (podVerdict).
    expect(editor.terminationMessagePolicy).toBe('FallbackToLogsOnError');
  });

  it('gives the pod the requests a devcontainer.json’s hostRequirements raised at create ({cpus: 2, memory: "1gb", storage: "32gb"}), and the volume its storage', () => {
    // What the gateway's applyHostRequirements makes of them with the default fields (services/gateway/src/host-requirements.test.ts).
    const resources = resourcesSchema.parse({ cpu_request: '2', cpu_limit: '2', memory_request: '1Gi', storage_size: '32Gi' });
    const raised = instanceObjects({ ...record, resources }, layout, root, credentials);
    expect(raised.deployment.spec!.template.spec!.containers[0]!.resources).toEqual({
      requests: { cpu: '2', memory: '1Gi' },
      limits: { cpu: '2', memory: '2Gi' },
    });
    expect(raised.workspace.spec!.resources).toEqual({ requests: { storage: '32Gi' } });
  });

  it('has no Ingress of its own: only the gateway pods of the platform namespace reach the editor, and the pod reaches no cluster network', () => {
    expect(Object.keys(o)).not.toContain('ingress');
    const from = o.networkPolicy.spec?.ingress;
    expect(from).toEqual([
      {
        _from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'codebay-system' } },
            podSelector: { matchLabels: { 'app.kubernetes.io/name': 'codebay-gateway' } },
          },
        ],
        ports: [{ protocol: 'TCP', port: 8080 }],
      },
    ]);
    expect(o.networkPolicy.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
    const open = o.networkPolicy.spec?.egress?.find((e) => e.to?.[0]?.ipBlock);
    expect(open?.to?.[0]?.ipBlock).toEqual({
      cidr: '0.0.0.0/0',
      except: expect.arrayContaining(['10.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16']),
    });
  });

  it("adds the platform team's INSTANCE_EGRESS_EXCEPT (the nodes' public addresses) to what the pod may not reach", () => {
    const withNodes = instanceObjects(record, { ...layout, egressExcept: ['192.0.2.2/32', '198.51.100.0/24'] }, root, credentials);
    const open = withNodes.networkPolicy.spec?.egress?.find((e) => e.to?.[0]?.ipBlock);
    expect(open?.to?.[0]?.ipBlock?.except).toEqual(expect.arrayContaining(['10.0.0.0/8', '192.0.2.2/32', '198.51.100.0/24']));
  });

  it('hands the editor its secret and a workspace instance its seeding token from the Secret, never in the pod spec', () => {
    const env = (r: typeof record) => instanceObjects(r, layout, root, credentials).deployment.spec!.template.spec!.containers[0]!.env ?? [];
    expect(env(record).some((e) => e.name.startsWith('CODEBAY_SEED'))).toBe(false);
    expect(env(record)).toContainEqual({
      name: 'CODEBAY_EDITOR_SECRET',
      valueFrom: { secretKeyRef: { name: k8sNames.secret(record.id), key: 'editor-secret' } },
    });
    const ws = env({ ...record, source: 'workspace', artifact: 'a'.repeat(64) });
    expect(ws).toContainEqual({ name: 'CODEBAY_SEED_URL', value: `http://gw:8080/seed/instances/${record.id}` });
    expect(ws).toContainEqual({ name: 'CODEBAY_SEED_TOKEN', valueFrom: { secretKeyRef: { name: k8sNames.secret(record.id), key: 'seed-token' } } });
    expect(JSON.stringify(o.deployment)).not.toContain('secret-value');
    expect(o.secret.stringData).toEqual({ 'editor-secret': 'editor-secret-value', 'seed-token': 'seed-token-value' });
  });

  it('mounts the workspace volume at workspaceMount’s target and starts in workspaceFolder (default /workspace for both)', () => {
    const editor = (r: typeof record) => instanceObjects(r, layout, root, credentials).deployment.spec!.template.spec!.containers[0]!;
    const launchOf = (r: typeof record) => JSON.parse(editor(r).env!.find((e) => e.name === 'CODEBAY_LAUNCH')!.value!) as Record<string, unknown>;
    expect(editor(record).volumeMounts).toContainEqual({ name: 'workspace', mountPath: '/workspace' });
    expect(editor(record).workingDir).toBe('/workspace');
    const placed = { ...record, workspace: { target: '/src/app', folder: '/src/app/web' } };
    expect(editor(placed).volumeMounts).toContainEqual({ name: 'workspace', mountPath: '/src/app' });
    expect(editor(placed).volumeMounts!.some((m) => m.mountPath === '/workspace')).toBe(false);
    expect(editor(placed).workingDir).toBe('/src/app/web');
    expect(launchOf(placed)).toMatchObject({ workspaceFolder: '/src/app/web', workspaceVolume: '/src/app' });
  });

  it('a failed instance kept for inspection: its root annotated with the deadline, its Deployment scaled to 0 and nothing else said', () => {
    const until = '2026-12-01T10:10:00.000Z';
    const kept = keptObjects(record, layout, until);
    const plain = rootObject(record, layout);
    expect(kept.root).toEqual({ ...plain, metadata: { ...plain.metadata, annotations: { [KEPT_UNTIL_ANNOTATION]: until } } });
    // Applied by a field manager of its own: only spec.replicas, on the instance's own Deployment.
    expect(kept.scaledDown).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: o.deployment.metadata!.name, namespace: layout.namespace },
      spec: { replicas: 0 },
    });
    // A provision applied again (a retry) sets one replica and no annotation: it takes both back.
    expect(o.deployment.spec!.replicas).toBe(1);
    expect(plain.metadata!.annotations).toBeUndefined();
  });
});
