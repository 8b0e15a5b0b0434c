import { parseCpu, parseMemory, type EditorOrigins } from '@codebay/contracts';
import type { BuildPolicy } from '@codebay/devcontainer';
import {
  buildPolicy,
  buildPolicyEnvSchema,
  commonEnvSchema,
  envInt,
  envList,
  jobEnvSchema,
  parseConfig,
  platformKeyEnvSchema,
  registryEnvSchema,
} from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

const schema = commonEnvSchema
  .extend(registryEnvSchema.shape)
  .extend(buildPolicyEnvSchema.shape)
  .extend(platformKeyEnvSchema.shape)
  .extend(jobEnvSchema.shape)
  .extend({
    GATEWAY_HOST: z.string().default('127.0.0.1'),
    GATEWAY_PORT: envInt(8080),
    /** Prometheus metrics (`/metrics`) on a port of their own, never the public one: they tell how busy the system is. */
    METRICS_HOST: z.string().default('127.0.0.1'),
    METRICS_PORT: envInt(9103),
    /** Where users reach codebay; instance and log URLs are built from it. */
    PUBLIC_URL: z.string().url().optional(),
    BASE_DOMAIN: z.string().default('vscode.local'),
    /**
     * Parent domain of the instances' own origins (`<id>.<it>`): BASE_DOMAIN on Kubernetes
     * (wildcard DNS record and certificate), `localhost` on one machine (browsers resolve
     * `*.localhost` to loopback without DNS).
     */
    INSTANCE_DOMAIN: z
      .string()
      .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'INSTANCE_DOMAIN must be a domain name')
      .optional(),
    CODEBAY_RUNTIME: z.enum(['docker', 'kubernetes']).default('docker'),
    CODEBAY_ADMIN_TOKEN: z.string().min(16, 'CODEBAY_ADMIN_TOKEN must be at least 16 characters').optional(),
    /** Per-user API tokens, stored hashed (see identity.ts); a mounted Secret works. */
    CODEBAY_TOKENS_FILE: z.string().optional(),
    /**
     * Editor (VS Code) versions the editor bundles provide, the first the default: used until a
     * provisioner publishes what its bundles provide (Docker runtime), and on Kubernetes, where
     * they are the editor images the deployment built.
     */
    CODEBAY_VSCODE_VERSIONS: envList('1.139.1,1.100.3'),
    MAX_DEVCONTAINER_BYTES: envInt(256 * 1024),
    MAX_WORKSPACE_BYTES: envInt(100 * 1024 * 1024),
    MAX_WORKSPACE_UNPACKED_BYTES: envInt(1024 * 1024 * 1024),
    MAX_WORKSPACE_ENTRIES: envInt(20_000),
    /** Browser origins allowed to call the API (comma-separated); none by default: CORS stays off. */
    CORS_ORIGINS: envList(''),
    /** Live (not Failed/Deleted) instances one user may have, and builds waiting or running. */
    MAX_INSTANCES_PER_USER: envInt(10),
    MAX_QUEUED_BUILDS_PER_USER: envInt(3),
    /** The most an instance may have (Kubernetes quantities); one that does not parse stops the gateway (the checks would pass everything). */
    MAX_MEMORY_LIMIT: z
      .string()
      .default('8Gi')
      .refine((v) => (parseMemory(v) ?? 0) > 0, 'MAX_MEMORY_LIMIT must be a memory quantity above 0, e.g. 8Gi'),
    MAX_CPU_LIMIT: z
      .string()
      .default('4000m')
      .refine((v) => (parseCpu(v) ?? 0) > 0, 'MAX_CPU_LIMIT must be a CPU quantity above 0, e.g. 4000m or 4'),
    MAX_STORAGE_SIZE: z
      .string()
      .default('100Gi')
      .refine((v) => (parseMemory(v) ?? 0) > 0, 'MAX_STORAGE_SIZE must be a storage quantity above 0, e.g. 100Gi'),
  });

export type GatewayConfig = z.infer<typeof schema> & {
  adminToken: string;
  adminTokenGenerated: boolean;
  publicUrl: string;
  /** Where each instance's editor lives: `<protocol>//<id>.<domain><port>`. */
  origins: EditorOrigins;
  /** What uploads may ask of the builder (checked at upload, 422). */
  buildPolicy: BuildPolicy;
};

export function loadConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const parsed = parseConfig(schema, env, 'gateway');
  const adminToken = parsed.CODEBAY_ADMIN_TOKEN ?? randomBytes(24).toString('base64url');
  const publicUrl = (
    parsed.PUBLIC_URL ?? (parsed.CODEBAY_RUNTIME === 'kubernetes' ? `https://${parsed.BASE_DOMAIN}` : `http://${parsed.GATEWAY_HOST}:${parsed.GATEWAY_PORT}`)
  ).replace(/\/+$/, '');
  const url = new URL(publicUrl);
  const origins: EditorOrigins = {
    protocol: url.protocol === 'https:' ? 'https:' : 'http:',
    domain: parsed.INSTANCE_DOMAIN ?? (parsed.CODEBAY_RUNTIME === 'kubernetes' ? parsed.BASE_DOMAIN : 'localhost'),
    port: url.port ? `:${url.port}` : '',
  };
  return {
    ...parsed,
    adminToken,
    adminTokenGenerated: parsed.CODEBAY_ADMIN_TOKEN === undefined,
    publicUrl,
    origins,
    buildPolicy: buildPolicy(parsed),
  };
}
