import { commonEnvSchema, envInt, parseConfig } from '@codebay/platform';
import { z } from 'zod';

const schema = commonEnvSchema.extend({
  /** This builder's own Docker daemon: one build at a time runs on it. */
  DOCKER_HOST: z.string().default('unix:///run/codebay-docker/docker.sock'),
  /** Registry the builder pushes to (MicroK8s' built-in registry by default). */
  REGISTRY: z.string().default('localhost:32000'),
  /** Push address when it differs from REGISTRY (e.g. inside a cluster). */
  REGISTRY_PUSH: z.string().optional(),
  CODEBAY_BUILD_DIR: z.string().default('/var/lib/codebay/builds'),
  BUILD_TIMEOUT_SECONDS: envInt(1800),
  /** Docker client the Dev Containers CLI calls. */
  DOCKER_PATH: z.string().default('docker'),
  METRICS_HOST: z.string().default('127.0.0.1'),
  METRICS_PORT: envInt(9101),
});

export type BuilderConfig = z.infer<typeof schema>;
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): BuilderConfig => parseConfig(schema, env, 'builder');
