import type { InstanceRecord, LaunchConfig } from '@codebay/contracts';
import type { KubernetesObject, V1Deployment, V1Ingress, V1NetworkPolicy, V1PersistentVolumeClaim, V1Secret, V1Service } from '@kubernetes/client-node';
import { launchConfigSchema } from '@codebay/contracts';

/** Settings that shape every instance's objects. */
export interface KubernetesLayout {
  namespace: string;
  baseDomain: string;
  tlsSecret: string;
  ingressClass: string;
  /**
   * The gateway as seen from inside the cluster: ingress-nginx asks `<it>/auth/instances/<id>`
   * whether a request may reach the editor; a workspace instance fetches its upload from
   * `<it>/seed/instances/<id>` on first start.
   */
  gatewayInternalUrl: string;
  /** Namespace of the ingress controller, allowed to reach editors by the NetworkPolicy. */
  ingressNamespace: string;
  /** Repository of the editor images (bundle and launcher under /opt/codebay), tagged by VS Code version. */
  editorImageRepo: string;
  storageClass?: string;
  sharedAccessMode: 'ReadWriteMany' | 'ReadWriteOnce';
  /** UID/GID instances run as (non-root); the image's remoteUser should match. */
  runAsUser: number;
}

export const EDITOR_PORT = 8080;
export const FIELD_MANAGER = 'codebay-provisioner';

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  instance: 'codebay.dev/instance',
  user: 'codebay.dev/user',
  component: 'codebay.dev/component',
} as const;

export const k8sNames = {
  root: (id: string) => `codebay-${id}`,
  secret: (id: string) => `codebay-${id}-token`,
  workspace: (id: string) => `codebay-${id}-workspace`,
  deployment: (id: string) => `codebay-${id}`,
  service: (id: string) => `codebay-${id}`,
  ingress: (id: string) => `codebay-${id}`,
  networkPolicy: (id: string) => `codebay-${id}`,
  shared: (userId: string) => `codebay-shared-${userId}`,
};

export function instanceLabels(record: InstanceRecord, component: string): Record<string, string> {
  return { [LABELS.managedBy]: 'codebay', [LABELS.instance]: record.id, [LABELS.user]: record.userId, [LABELS.component]: component };
}

/** Every instance object but the root is owned by the root: deleting it garbage-collects the rest. */
export function ownedBy(root: { name: string; uid: string }) {
  return [{ apiVersion: 'v1', kind: 'ConfigMap', name: root.name, uid: root.uid, controller: true, blockOwnerDeletion: true }];
}

/** The root object: a ConfigMap naming the instance. */
export function rootObject(record: InstanceRecord, layout: KubernetesLayout): KubernetesObject & { data: Record<string, string> } {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: k8sNames.root(record.id), namespace: layout.namespace, labels: instanceLabels(record, 'root') },
    data: { instance: record.id, user: record.userId, image: record.devcontainerImage ?? record.baseImage ?? '' },
  };
}

export function instanceObjects(
  record: InstanceRecord,
  layout: KubernetesLayout,
  root: { name: string; uid: string },
): { secret: V1Secret; workspace: V1PersistentVolumeClaim; deployment: V1Deployment; service: V1Service; ingress: V1Ingress; networkPolicy: V1NetworkPolicy } {
  const id = record.id;
  const ns = layout.namespace;
  const owner = ownedBy(root);
  const meta = (name: string, component: string) => ({ name, namespace: ns, labels: instanceLabels(record, component), ownerReferences: owner });
  const r = record.resources;
  const launch: LaunchConfig = record.launch ?? launchConfigSchema.parse({});
  const image = record.devcontainerImage ?? record.baseImage ?? '';
  const restricted = {
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
    runAsNonRoot: true,
    seccompProfile: { type: 'RuntimeDefault' },
  };

  const secret: V1Secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(k8sNames.secret(id), 'token'),
    type: 'Opaque',
    stringData: { 'access-token': record.accessToken },
  };

  const workspace: V1PersistentVolumeClaim = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: meta(k8sNames.workspace(id), 'workspace'),
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: r.storage_size } },
      ...(layout.storageClass ? { storageClassName: layout.storageClass } : {}),
    },
  };

  const deployment: V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(k8sNames.deployment(id), 'editor'),
    spec: {
      replicas: 1,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: { [LABELS.instance]: id, [LABELS.component]: 'editor' } },
      template: {
        metadata: { labels: instanceLabels(record, 'editor') },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: layout.runAsUser,
            runAsGroup: layout.runAsUser,
            fsGroup: layout.runAsUser,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          initContainers: [
            {
              // Copies the editor bundle and launcher out of the editor image (no shell needed).
              name: 'editor-bundle',
              image: `${layout.editorImageRepo}:${record.vscodeVersion}`,
              command: ['/opt/codebay/editor/bin/node', '-e', "require('fs').cpSync('/opt/codebay', '/codebay', { recursive: true })"],
              volumeMounts: [{ name: 'editor', mountPath: '/codebay' }],
              resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
              securityContext: restricted,
            },
          ],
          containers: [
            {
              name: 'editor',
              image,
              command: ['/opt/codebay/editor/bin/node', '/opt/codebay/launcher/launcher.mjs'],
              workingDir: '/workspace',
              env: [
                ...Object.entries(launch.containerEnv).map(([name, value]) => ({ name, value })),
                { name: 'CODEBAY_LAUNCH', value: JSON.stringify({ ...launch, workspaceFolder: '/workspace', port: EDITOR_PORT }) },
                { name: 'CODEBAY_EDITOR_DIR', value: '/opt/codebay/editor' },
                { name: 'HOME', value: '/workspace/.codebay/home' },
                ...(record.source === 'workspace' && record.artifact
                  ? [
                      // The launcher unpacks the upload once, before the lifecycle commands, then drops the token from its env.
                      { name: 'CODEBAY_SEED_URL', value: `${layout.gatewayInternalUrl}/seed/instances/${id}` },
                      { name: 'CODEBAY_SEED_TOKEN', valueFrom: { secretKeyRef: { name: k8sNames.secret(id), key: 'access-token' } } },
                    ]
                  : []),
              ],
              ports: [{ name: 'editor', containerPort: EDITOR_PORT }],
              readinessProbe: { httpGet: { path: '/healthz', port: EDITOR_PORT }, periodSeconds: 2, failureThreshold: 3 },
              resources: {
                requests: { cpu: r.cpu_request, memory: r.memory_request },
                limits: { cpu: r.cpu_limit, memory: r.memory_limit },
              },
              securityContext: restricted,
              volumeMounts: [
                { name: 'workspace', mountPath: '/workspace' },
                { name: 'shared', mountPath: '/shared' },
                { name: 'editor', mountPath: '/opt/codebay', readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: 'workspace', persistentVolumeClaim: { claimName: k8sNames.workspace(id) } },
            { name: 'shared', persistentVolumeClaim: { claimName: k8sNames.shared(record.userId) } },
            { name: 'editor', emptyDir: { sizeLimit: '1Gi' } },
          ],
        },
      },
    },
  };

  const service: V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(k8sNames.service(id), 'editor'),
    spec: {
      type: 'ClusterIP',
      selector: { [LABELS.instance]: id, [LABELS.component]: 'editor' },
      ports: [{ name: 'editor', port: EDITOR_PORT, targetPort: EDITOR_PORT }],
    },
  };

  const ingress: V1Ingress = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      ...meta(k8sNames.ingress(id), 'editor'),
      annotations: {
        // The gateway decides, per request, whether the caller holds this instance's token.
        'nginx.ingress.kubernetes.io/auth-url': `${layout.gatewayInternalUrl}/auth/instances/${id}`,
        'nginx.ingress.kubernetes.io/auth-always-set-cookie': 'true',
        'nginx.ingress.kubernetes.io/use-regex': 'true',
        'nginx.ingress.kubernetes.io/rewrite-target': '/$2',
        'nginx.ingress.kubernetes.io/proxy-read-timeout': '3600',
        'nginx.ingress.kubernetes.io/proxy-send-timeout': '3600',
        'nginx.ingress.kubernetes.io/proxy-body-size': '64m',
      },
    },
    spec: {
      ingressClassName: layout.ingressClass,
      tls: [{ hosts: [layout.baseDomain], secretName: layout.tlsSecret }],
      rules: [
        {
          host: layout.baseDomain,
          http: {
            paths: [
              {
                path: `/instances/${id}(/|$)(.*)`,
                pathType: 'ImplementationSpecific',
                backend: { service: { name: k8sNames.service(id), port: { number: EDITOR_PORT } } },
              },
            ],
          },
        },
      ],
    },
  };

  const networkPolicy: V1NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(k8sNames.networkPolicy(id), 'editor'),
    spec: {
      podSelector: { matchLabels: { [LABELS.instance]: id } },
      policyTypes: ['Ingress'],
      ingress: [
        {
          _from: [
            { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': layout.ingressNamespace } } },
            { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'codebay-gateway' } } },
          ],
          ports: [{ protocol: 'TCP', port: EDITOR_PORT }],
        },
      ],
    },
  };

  return { secret, workspace, deployment, service, ingress, networkPolicy };
}

/** The user's shared volume: made once, never owned by an instance. */
export function sharedVolume(record: InstanceRecord, layout: KubernetesLayout): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: k8sNames.shared(record.userId),
      namespace: layout.namespace,
      labels: { [LABELS.managedBy]: 'codebay', [LABELS.user]: record.userId, [LABELS.component]: 'shared' },
    },
    spec: {
      accessModes: [layout.sharedAccessMode],
      resources: { requests: { storage: record.resources.shared_storage_size } },
      ...(layout.storageClass ? { storageClassName: layout.storageClass } : {}),
    },
  };
}
