import { commonEnvSchema, envInt, envList, parseConfig, platformKeyEnvSchema, registryEnvSchema } from '@codebay/platform';
import { fileURLToPath } from 'node:url';
import { parseCpu } from '@codebay/contracts';
import { z } from 'zod';

const defaultLauncherDir = fileURLToPath(new URL('../../../packages/editor/launcher', import.meta.url));

const schema = commonEnvSchema
  .extend(registryEnvSchema.shape)
  .extend(platformKeyEnvSchema.shape)
  .extend({
    CODEBAY_RUNTIME: z.enum(['docker', 'kubernetes']).default('docker'),
    /**
     * Names this deployment's Docker objects (`<it>-<instance id>`, `<it>-shared-<user>`, …) and
     * labels them `codebay.deployment=<it>`: deployments sharing a daemon never touch each other's.
     */
    CODEBAY_DEPLOYMENT: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,30}$/, 'lower-case letters, digits and hyphens, at most 31')
      .default('codebay'),
    /** The Docker daemon instances run on. */
    DOCKER_HOST: z.string().default('unix:///run/codebay-docker/docker.sock'),
    /** Folder of editor bundles (`<root>/<name>/bundle.json` says which VS Code each holds). */
    CODEBAY_EDITOR_ROOT: z.string().default('/var/cache/codebay/editor'),
    /** How often the provisioner republishes its editor bundles' versions in Redis (Docker runtime). */
    EDITOR_VERSIONS_PUBLISH_SECONDS: envInt(30),
    /** The in-instance launcher (mounted read-only beside the bundle). */
    CODEBAY_LAUNCHER_DIR: z.string().default(defaultLauncherDir),
    /** Address the editor port is published on (never 0.0.0.0: only the gateway may reach it). */
    EDITOR_PUBLISH_HOST: z.string().default('127.0.0.1'),
    READY_TIMEOUT_SECONDS: envInt(180),
    /**
     * CPU an instance may use while its editor starts, when more than its cpu_limit (a quantity:
     * `2`, `1500m`; `0`: none). Ends when the editor answers or waiting for it ends (Docker runtime).
     */
    EDITOR_START_CPU: z
      .string()
      .default('2')
      .refine((q) => q === '0' || parseCpu(q) !== undefined, 'must be a CPU quantity such as 2 or 1500m, or 0')
      .transform((q) => (q === '0' ? 0 : parseCpu(q)!)),
    METRICS_HOST: z.string().default('127.0.0.1'),
    METRICS_PORT: envInt(9102),
    // Kubernetes runtime (KUBECONFIG, or the in-cluster service account, says where the cluster is).
    KUBERNETES_NAMESPACE: z.string().default('vscode-system'),
    /** Namespace of codebay's own services: only the gateway's pods there may reach an editor. */
    PLATFORM_NAMESPACE: z.string().default('codebay-system'),
    /** An instance fetches its workspace upload from `<it>/seed/instances/<id>` on first start. */
    GATEWAY_INTERNAL_URL: z.string().url().default('http://codebay-gateway.codebay-system.svc.cluster.local:8080'),
    /** Secret (type kubernetes.io/dockerconfigjson, in KUBERNETES_NAMESPACE) with the pull-only registry credentials, for the kubelet. */
    IMAGE_PULL_SECRET: z.string().optional(),
    /** Editor images (bundle + launcher), tagged by VS Code version; defaults to REGISTRY/codebay-editor. */
    CODEBAY_EDITOR_IMAGE_REPO: z.string().optional(),
    /**
     * More addresses instances may not reach, beside the private, shared, link-local and loopback
     * ranges they never reach: IPv4 CIDRs, comma-separated (the nodes' own public addresses, a
     * company network); instances reach no IPv6 address at all. deploy/microk8s/deploy.sh fills
     * in the nodes' addresses. Kubernetes runtime.
     */
    INSTANCE_EGRESS_EXCEPT: envList('').pipe(
      z.array(
        z
          .cidrv4({ error: (issue) => `not an IPv4 CIDR such as 192.0.2.7/32: ${String(issue.input)}` })
          // Kubernetes refuses an `except` equal to its `cidr` (0.0.0.0/0): every instance would fail.
          .refine((cidr) => !cidr.endsWith('/0'), { error: (issue) => `${String(issue.input)} would leave instances no address at all` }),
      ),
    ),
    STORAGE_CLASS: z.string().optional(),
    SHARED_ACCESS_MODE: z.enum(['ReadWriteMany', 'ReadWriteOnce']).default('ReadWriteMany'),
    INSTANCE_RUN_AS_USER: envInt(1000),
    /** Instances provisioned at once by one provisioner. */
    PROVISION_CONCURRENCY: envInt(4),
    /** How often the reconciler runs (0: never). */
    RECONCILE_INTERVAL_SECONDS: envInt(60),
    /** A job whose worker stops renewing its lock this long is handed to another worker. */
    JOB_LOCK_SECONDS: envInt(60),
    STALLED_INTERVAL_SECONDS: envInt(30),
    /**
     * How long an instance whose provisioning failed keeps its container (Docker: stopped, for
     * `docker logs`/`inspect`/`cp`) or pod (Kubernetes: as it is, for `kubectl describe`/`logs`),
     * its network and workspace volume; then the reconciler's next pass removes them (a delete at
     * once). 0: removed at the failure. At most 7 days.
     */
    FAILED_INSTANCE_KEEP_SECONDS: envInt(600).pipe(z.number().max(604_800, 'at most 604800 (7 days)')),
    /** How long a deleted instance's record stays readable. */
    DELETED_RECORD_TTL_SECONDS: envInt(86_400),
  });

export type ProvisionerConfig = z.infer<typeof schema>;
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): ProvisionerConfig => parseConfig(schema, env, 'provisioner');
