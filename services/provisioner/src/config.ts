import { commonEnvSchema, envInt, parseConfig } from '@codebay/platform';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const defaultLauncherDir = fileURLToPath(new URL('../../../packages/editor/launcher', import.meta.url));

const schema = commonEnvSchema.extend({
  CODEBAY_RUNTIME: z.enum(['docker', 'kubernetes']).default('docker'),
  /** The Docker daemon instances run on. */
  DOCKER_HOST: z.string().default('unix:///run/codebay-docker/docker.sock'),
  /** Folder of editor bundles (`<root>/<name>/bundle.json` says which VS Code each holds). */
  CODEBAY_EDITOR_ROOT: z.string().default('/var/cache/codebay/editor'),
  /** The in-instance launcher (mounted read-only beside the bundle). */
  CODEBAY_LAUNCHER_DIR: z.string().default(defaultLauncherDir),
  /** Address the editor port is published on (never 0.0.0.0: only the gateway may reach it). */
  EDITOR_PUBLISH_HOST: z.string().default('127.0.0.1'),
  READY_TIMEOUT_SECONDS: envInt(180),
  METRICS_HOST: z.string().default('127.0.0.1'),
  METRICS_PORT: envInt(9102),
  // Kubernetes runtime (KUBECONFIG, or the in-cluster service account, says where the cluster is).
  KUBERNETES_NAMESPACE: z.string().default('vscode-system'),
  BASE_DOMAIN: z.string().default('vscode.local'),
  REGISTRY: z.string().default('localhost:32000'),
  CODEBAY_TLS_SECRET: z.string().default('codebay-tls'),
  INGRESS_CLASS: z.string().default('public'),
  INGRESS_NAMESPACE: z.string().default('ingress'),
  GATEWAY_INTERNAL_URL: z.string().url().default('http://codebay-gateway.vscode-system.svc.cluster.local:8080'),
  /** Editor images (bundle + launcher), tagged by VS Code version; defaults to REGISTRY/codebay-editor. */
  CODEBAY_EDITOR_IMAGE_REPO: z.string().optional(),
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
  /** How long a deleted instance's record stays readable. */
  DELETED_RECORD_TTL_SECONDS: envInt(86_400),
});

export type ProvisionerConfig = z.infer<typeof schema>;
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): ProvisionerConfig => parseConfig(schema, env, 'provisioner');
