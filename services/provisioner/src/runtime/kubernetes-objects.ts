import type { InstanceRecord, LaunchConfig } from '@codebay/contracts';
import type { KubernetesObject, V1Deployment, V1NetworkPolicy, V1PersistentVolumeClaim, V1Secret, V1Service } from '@kubernetes/client-node';
import { DEFAULT_WORKSPACE, INSTANCE_EDITOR_PORT, instanceLaunch, launchConfigSchema } from '@codebay/contracts';

/** Settings that shape every instance's objects. */
export interface KubernetesLayout {
  namespace: string;
  /** Namespace of codebay's own services: only its gateway pods may reach an editor. */
  platformNamespace: string;
  /** The gateway as seen from inside the cluster: a workspace instance fetches its upload from `<it>/seed/instances/<id>` on first start. */
  gatewayInternalUrl: string;
  /** Repository of the editor images (bundle and launcher under /opt/codebay), tagged by VS Code version. */
  editorImageRepo: string;
  /** dockerconfigjson Secret with the pull-only registry credentials (the kubelet's, never mounted into a pod). */
  imagePullSecret?: string;
  storageClass?: string;
  sharedAccessMode: 'ReadWriteMany' | 'ReadWriteOnce';
  /** UID/GID of the editor-bundle copy (init container) and the files it writes. */
  runAsUser: number;
  /** IPv4 CIDRs instances may not reach beside PRIVATE_RANGES (the internet rule's `except`). */
  egressExcept?: readonly string[];
}

/** The secrets an instance gets in its Secret (derived from the platform key; see instanceSecrets). */
export interface InstanceCredentials {
  /** code-server's password: the gateway adds it to every request it lets through. */
  editorSecret: string;
  /** Fetches the workspace upload on first start. */
  seedToken: string;
}

/** Addresses instances may not reach (the cluster's own networks, link-local metadata); everything else outside stays open for package installs. */
const PRIVATE_RANGES = ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '127.0.0.0/8'];

export const EDITOR_PORT = INSTANCE_EDITOR_PORT;
/** The gateway's pods (labels of deploy/kubernetes) and port. */
const GATEWAY_POD = { 'app.kubernetes.io/name': 'codebay-gateway' } as const;
const GATEWAY_PORT = 8080;
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
  networkPolicy: (id: string) => `codebay-${id}`,
  shared: (userId: string) => `codebay-shared-${userId}`,
};

function instanceLabels(record: InstanceRecord, component: string): Record<string, string> {
  return { [LABELS.managedBy]: 'codebay', [LABELS.instance]: record.id, [LABELS.user]: record.userId, [LABELS.component]: component };
}

/** Every instance object but the root is owned by the root: deleting it garbage-collects the rest. */
function ownedBy(root: { name: string; uid: string }) {
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

/**
 * Everything one instance needs, owned by its root. Editor traffic reaches the pod only
 * from the gateway (NetworkPolicy, plus the editor's own secret, which only the gateway
 * adds): there is no per-instance Ingress, so nothing depends on an ingress controller's
 * annotations. The pod runs in a user namespace of its own (`hostUsers: false`), as root
 * inside it so that the launcher can switch to the image's user and `sudo` works
 * (Pod Security `baseline`); egress is open to the internet but not to the cluster's own
 * networks, other instances or link-local metadata.
 */
export function instanceObjects(
  record: InstanceRecord,
  layout: KubernetesLayout,
  root: { name: string; uid: string },
  credentials: InstanceCredentials,
): { secret: V1Secret; workspace: V1PersistentVolumeClaim; deployment: V1Deployment; service: V1Service; networkPolicy: V1NetworkPolicy } {
  const id = record.id;
  const ns = layout.namespace;
  const owner = ownedBy(root);
  const meta = (name: string, component: string) => ({ name, namespace: ns, labels: instanceLabels(record, component), ownerReferences: owner });
  const r = record.resources;
  const launch: LaunchConfig = record.launch ?? launchConfigSchema.parse({});
  const placement = record.workspace ?? DEFAULT_WORKSPACE;
  const started = instanceLaunch(launch, id, EDITOR_PORT, placement);
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
    stringData: { 'editor-secret': credentials.editorSecret, 'seed-token': credentials.seedToken },
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
          // Root in the pod is an unprivileged user on the node.
          hostUsers: false,
          ...(layout.imagePullSecret ? { imagePullSecrets: [{ name: layout.imagePullSecret }] } : {}),
          securityContext: {
            fsGroup: layout.runAsUser,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          initContainers: [
            {
              // Copies the editor bundle and launcher out of the editor image (no shell needed).
              name: 'editor-bundle',
              image: `${layout.editorImageRepo}:${record.vscodeVersion}`,
              // The tag names the VS Code version, not the launcher beside it: a node that holds an
              // older image under the tag would start instances with an older launcher. The kubelet
              // asks the registry for the tag's digest each time (layers it has are not pulled again).
              imagePullPolicy: 'Always',
              command: ['/opt/codebay/editor/bin/node', '-e', "require('fs').cpSync('/opt/codebay', '/codebay', { recursive: true })"],
              volumeMounts: [{ name: 'editor', mountPath: '/codebay' }],
              resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
              securityContext: { ...restricted, runAsUser: layout.runAsUser, runAsGroup: layout.runAsUser },
            },
          ],
          containers: [
            {
              name: 'editor',
              image,
              command: ['/opt/codebay/editor/bin/node', '/opt/codebay/launcher/launcher.mjs'],
              workingDir: placement.folder,
              env: [
                ...Object.entries(started.containerEnv).map(([name, value]) => ({ name, value })),
                { name: 'CODEBAY_LAUNCH', value: started.launchJson },
                { name: 'CODEBAY_EDITOR_DIR', value: '/opt/codebay/editor' },
                // The launcher hands it to the editor only and drops it from its own environment.
                { name: 'CODEBAY_EDITOR_SECRET', valueFrom: { secretKeyRef: { name: k8sNames.secret(id), key: 'editor-secret' } } },
                ...(record.source === 'workspace' && record.artifact
                  ? [
                      // The launcher unpacks the upload once, before the lifecycle commands, then drops the token from its env.
                      { name: 'CODEBAY_SEED_URL', value: `${layout.gatewayInternalUrl}/seed/instances/${id}` },
                      { name: 'CODEBAY_SEED_TOKEN', valueFrom: { secretKeyRef: { name: k8sNames.secret(id), key: 'seed-token' } } },
                    ]
                  : []),
              ],
              ports: [{ name: 'editor', containerPort: EDITOR_PORT }],
              // An editor container that exits gets its log's last lines as termination message: the failure reason quotes them.
              terminationMessagePolicy: 'FallbackToLogsOnError',
              readinessProbe: { httpGet: { path: '/healthz', port: EDITOR_PORT }, periodSeconds: 2, failureThreshold: 3 },
              resources: {
                requests: { cpu: r.cpu_request, memory: r.memory_request },
                limits: { cpu: r.cpu_limit, memory: r.memory_limit },
              },
              // Pod Security baseline: the default capabilities and setuid (sudo) work, nothing privileged,
              // but NET_RAW: with raw sockets an instance forges other pods' addresses on the node's
              // bridge (ARP and IP spoofing past NetworkPolicy, which filters by source address).
              // `ping` needs it too, unless the node allows ICMP sockets (net.ipv4.ping_group_range).
              securityContext: { seccompProfile: { type: 'RuntimeDefault' }, capabilities: { drop: ['NET_RAW'] } },
              volumeMounts: [
                { name: 'workspace', mountPath: placement.target },
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

  const networkPolicy: V1NetworkPolicy = {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: meta(k8sNames.networkPolicy(id), 'editor'),
    spec: {
      podSelector: { matchLabels: { [LABELS.instance]: id } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        {
          // One peer with both selectors: the gateway's pods in the platform namespace, nothing else.
          _from: [
            { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': layout.platformNamespace } }, podSelector: { matchLabels: GATEWAY_POD } },
          ],
          ports: [{ protocol: 'TCP', port: EDITOR_PORT }],
        },
      ],
      egress: [
        // DNS, from the cluster's resolver.
        {
          to: [
            { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } },
          ],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
        // The gateway, for the workspace upload on first start (it checks the seeding token).
        {
          to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': layout.platformNamespace } }, podSelector: { matchLabels: GATEWAY_POD } }],
          ports: [{ protocol: 'TCP', port: GATEWAY_PORT }],
        },
        // The internet, not the cluster's own networks, other instances, link-local metadata or
        // what the platform team adds (the nodes' own public addresses: a pod reaches its node's
        // host ports through them).
        { to: [{ ipBlock: { cidr: '0.0.0.0/0', except: [...PRIVATE_RANGES, ...(layout.egressExcept ?? [])] } }] },
      ],
    },
  };

  return { secret, workspace, deployment, service, networkPolicy };
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

/** Annotation on a failed instance's root: until when its objects are kept for inspection (FAILED_INSTANCE_KEEP_SECONDS). */
export const KEPT_UNTIL_ANNOTATION = 'codebay.dev/kept-until';
/**
 * The field manager that scales a kept failed instance's Deployment to 0: a manager of its own, so
 * that its apply sets `spec.replicas` alone, and the next provision's apply (FIELD_MANAGER, forced)
 * takes `replicas: 1` back.
 */
export const KEEP_FIELD_MANAGER = 'codebay-provisioner-keep';

/**
 * A failed instance kept for inspection (KubernetesDriver.keepFailed): its root as `rootObject`
 * says, annotated with the deadline (applied by FIELD_MANAGER: the next provision's apply drops
 * the annotation), and its Deployment at 0 replicas (applied by KEEP_FIELD_MANAGER).
 */
export function keptObjects(
  record: InstanceRecord,
  layout: KubernetesLayout,
  until: string,
): { root: KubernetesObject & { data: Record<string, string> }; scaledDown: KubernetesObject & { spec: { replicas: number } } } {
  const root = rootObject(record, layout);
  return {
    root: { ...root, metadata: { ...root.metadata, annotations: { [KEPT_UNTIL_ANNOTATION]: until } } },
    scaledDown: {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: k8sNames.deployment(record.id), namespace: layout.namespace },
      spec: { replicas: 0 },
    },
  };
}
