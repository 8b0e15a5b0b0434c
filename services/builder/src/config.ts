import { buildPolicyEnvSchema, commonEnvSchema, envInt, jobEnvSchema, parseConfig, registryEnvSchema } from '@codebay/platform';
import { accessSync, constants, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';

const schema = commonEnvSchema
  .extend(registryEnvSchema.shape)
  .extend(buildPolicyEnvSchema.shape)
  .extend(jobEnvSchema.shape)
  .extend({
    /** This builder's own Docker daemon: one build at a time runs on it. */
    DOCKER_HOST: z.string().default('unix:///run/codebay-docker/docker.sock'),
    CODEBAY_BUILD_DIR: z.string().default('/var/lib/codebay/builds'),
    /** A build that prints nothing for this long is ended with that reason. */
    BUILD_STALL_SECONDS: envInt(600),
    /** Every fetch the CLI makes (features, image manifests) through the egress proxy: connect, and silence once connected. */
    FETCH_CONNECT_TIMEOUT_SECONDS: envInt(10),
    FETCH_IDLE_TIMEOUT_SECONDS: envInt(60),
    /** Names this builder in build logs and its own log lines. */
    BUILDER_NAME: z.string().default(`${hostname()}-${process.pid}`),
    /** A build job whose builder stops renewing its lock this long is handed to another builder. */
    JOB_LOCK_SECONDS: envInt(60),
    STALLED_INTERVAL_SECONDS: envInt(30),
    /**
     * Pushes of an image an instance already runs (it started from the image on this daemon
     * while the push ran): attempts in all, and the delay before the second (doubling). Until
     * an instance runs it, a failed push fails the build attempt and the job retries the build.
     */
    PUSH_ATTEMPTS: envInt(3),
    PUSH_BACKOFF_SECONDS: envInt(5),
    /** Images of finished builds kept on this builder's daemon (bytes); the oldest go first. */
    BUILDER_MAX_IMAGE_BYTES: envInt(20 * 1024 ** 3),
    /** BuildKit's build cache kept on this builder's daemon besides the images (bytes); the least recently used goes first. */
    BUILDER_MAX_BUILD_CACHE_BYTES: envInt(10 * 1024 ** 3),
    /** Docker client the Dev Containers CLI calls. */
    DOCKER_PATH: z.string().default('docker'),
    /**
     * A folder of .vsix files (the operator's extension source): `customizations.vscode.extensions`
     * found there are baked into each image built, and instances install them from the image,
     * never from the network. Unset: instances install extensions at start from the gallery
     * code-server reaches. Must be an absolute path to a folder this builder can read.
     */
    EXTENSION_SOURCE_DIR: z
      .string()
      .optional()
      .transform((v) => (v?.trim() ? v.trim() : undefined))
      .refine((v) => v === undefined || readableDir(v), 'EXTENSION_SOURCE_DIR must be an absolute path to a folder the builder can read'),
    /**
     * How often the extension source is scanned for changes (a listing and a stat per file; new
     * or changed files are read and hashed), and its fingerprint published for the build cache.
     */
    EXTENSION_SOURCE_SCAN_SECONDS: envInt(10),
    METRICS_HOST: z.string().default('127.0.0.1'),
    METRICS_PORT: envInt(9101),
  });

/** Whether `path` is absolute and names a folder this process can list. */
function readableDir(path: string): boolean {
  try {
    accessSync(path, constants.R_OK | constants.X_OK);
    return path.startsWith('/') && statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export type BuilderConfig = z.infer<typeof schema>;
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): BuilderConfig => parseConfig(schema, env, 'builder');
