import { commonEnvSchema, envInt, parseConfig } from '@codebay/platform';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

const defaultLauncherDir = fileURLToPath(new URL('../../../packages/editor/launcher', import.meta.url));

const schema = commonEnvSchema.extend({
  CODEBAY_RUNTIME: z.enum(['docker']).default('docker'),
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
  /** How long a deleted instance's record stays readable. */
  DELETED_RECORD_TTL_SECONDS: envInt(86_400),
});

export type ProvisionerConfig = z.infer<typeof schema>;
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): ProvisionerConfig => parseConfig(schema, env, 'provisioner');
