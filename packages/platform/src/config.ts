import { DEFAULT_QUEUE_PREFIX } from '@codebay/contracts';
import { parseSourcePolicy, type BuildPolicy } from '@codebay/devcontainer';
import { z } from 'zod';
import { PlatformKey } from './platform-key.ts';

/**
 * Parses the environment once at boot against a zod schema. Every problem is
 * reported at once and the process exits non-zero: a service never starts half-configured.
 */
export function parseConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env, service = 'codebay'): z.infer<S> {
  const result = schema.safeParse(env);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`).join('\n');
  process.stderr.write(`${service}: invalid configuration\n${problems}\n`);
  process.exit(2);
}

/** Env values that name a duration in seconds, an integer or a boolean. */
export const envInt = (fallback: number) => z.coerce.number().int().nonnegative().default(fallback);
export const envBool = (fallback: boolean) =>
  z
    .enum(['1', '0', 'true', 'false', 'yes', 'no'])
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === '1' || v === 'true' || v === 'yes');

/** A comma-separated list (`a, b`), empty entries dropped. */
export const envList = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((s) =>
      s
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean),
    );

/** Settings every codebay process shares. */
export const commonEnvSchema = z.object({
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6380'),
  CODEBAY_QUEUE_PREFIX: z.string().min(1).default(DEFAULT_QUEUE_PREFIX),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Content-addressed upload store shared by gateway and builders. */
  CODEBAY_ARTIFACT_DIR: z.string().min(1).default('/var/lib/codebay/artifacts'),
  /**
   * On SIGTERM: how long work in progress may go on (a job finishing, open requests ending)
   * before it is handed back (a job returns to its queue, unused attempt) and the process exits.
   * Keep it under the orchestrator's grace period (Kubernetes' terminationGracePeriodSeconds).
   */
  SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().nonnegative().default(20),
});
export type CommonConfig = z.infer<typeof commonEnvSchema>;

/**
 * codebay's image registry. Instances pull from `REGISTRY` with the pull-only credentials
 * `REGISTRY_PULL_AUTH`; builders push to `REGISTRY_PUSH` (a separate, authenticated
 * endpoint; on one machine `localhost:32001`, in a cluster the in-cluster address) with
 * `REGISTRY_PUSH_AUTH`, which only builders hold. Gateway and builders ask its HTTP API at
 * `REGISTRY_API_URL` (default `http://<REGISTRY>`) with the pull credentials.
 * Credentials are `user:password`.
 */
export const registryEnvSchema = z.object({
  REGISTRY: z.string().default('localhost:32000'),
  REGISTRY_PUSH: z.string().optional(),
  REGISTRY_API_URL: z.string().url().optional(),
  REGISTRY_PULL_AUTH: credentials('REGISTRY_PULL_AUTH'),
  REGISTRY_PUSH_AUTH: credentials('REGISTRY_PUSH_AUTH'),
});

/** A registry user: what `docker login` would take. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** `user:password` as a registry user (the password may hold `:`). */
export function parseRegistryCredentials(value: string): RegistryCredentials {
  const i = value.indexOf(':');
  return { username: value.slice(0, i), password: value.slice(i + 1) };
}

/** `user:password`; unset or empty: none (an anonymous registry). */
function credentials(name: string) {
  return z
    .string()
    .optional()
    .refine((v) => !v || /^[^:\s]+:\S+$/.test(v), `${name} must be user:password`)
    .transform((v) => (v ? parseRegistryCredentials(v) : undefined));
}

export interface RegistrySettings {
  /** Where instances (and cache-from pulls) pull from. */
  pull: string;
  /** Where builders push to. */
  push: string;
  /** The registry HTTP API (distribution v2) for lookups, read with `pullAuth`. */
  apiUrl: string;
  pullAuth?: RegistryCredentials;
  pushAuth?: RegistryCredentials;
}

export function registrySettings(c: z.infer<typeof registryEnvSchema>): RegistrySettings {
  const push = c.REGISTRY_PUSH ?? c.REGISTRY;
  return {
    pull: c.REGISTRY,
    push,
    apiUrl: c.REGISTRY_API_URL ?? (/^https?:\/\//.test(c.REGISTRY) ? c.REGISTRY : `http://${c.REGISTRY}`),
    pullAuth: c.REGISTRY_PULL_AUTH,
    pushAuth: c.REGISTRY_PUSH_AUTH,
  };
}

/** A setting parsed further by `parse`, whose errors are reported as that setting's problem. */
function parsedBy<I, T>(parse: (value: I) => T) {
  return (value: I, ctx: z.RefinementCtx): T => {
    try {
      return parse(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  };
}

/**
 * Settings of the build policy that both the gateway (checks at upload, 422) and the
 * builders (checks again, and run the CLI accordingly) read.
 */
export const buildPolicyEnvSchema = z.object({
  /** Builder environment variables `${localEnv:NAME}` may name (comma-separated; none by default). */
  BUILD_LOCAL_ENV_ALLOWLIST: envList(''),
  /**
   * Where features and images may be fetched from (comma-separated): `*` any public host,
   * `host`, `host:port`, `*.domain`. Loopback, link-local and private addresses only when
   * listed by name.
   */
  FEATURE_SOURCES: envList('*').transform(parsedBy(parseSourcePolicy)),
});

/** The build policy a service's settings give (registries and build-policy settings both parsed). */
export function buildPolicy(c: z.infer<typeof registryEnvSchema> & z.infer<typeof buildPolicyEnvSchema>): BuildPolicy {
  const registries = registrySettings(c);
  return { localEnv: c.BUILD_LOCAL_ENV_ALLOWLIST, platformRegistries: [registries.pull, registries.push], sources: c.FEATURE_SOURCES };
}

/** The platform key (see PlatformKey), held by the gateway and the provisioner only. */
export const platformKeyEnvSchema = z.object({
  CODEBAY_SECRET_KEY: z
    .string({ error: 'CODEBAY_SECRET_KEY is required (32 random bytes, base64: `openssl rand -base64 32`)' })
    .min(1)
    .transform(parsedBy((key: string) => new PlatformKey(key))),
});
