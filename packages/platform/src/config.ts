import { z } from 'zod';

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
  CODEBAY_QUEUE_PREFIX: z.string().min(1).default('codebay:bull'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  /** Content-addressed upload store shared by gateway and builders. */
  CODEBAY_ARTIFACT_DIR: z.string().min(1).default('/var/lib/codebay/artifacts'),
});
export type CommonConfig = z.infer<typeof commonEnvSchema>;

/**
 * The registry images go to. Instances pull from `REGISTRY`; builders push to
 * `REGISTRY_PUSH` when that differs (inside a cluster); gateway and builders ask its
 * HTTP API at `REGISTRY_API_URL` (default `http://<push address>`).
 */
export const registryEnvSchema = z.object({
  REGISTRY: z.string().default('localhost:32000'),
  REGISTRY_PUSH: z.string().optional(),
  REGISTRY_API_URL: z.string().url().optional(),
});

export function registrySettings(c: z.infer<typeof registryEnvSchema>): { pull: string; push: string; apiUrl: string } {
  const push = c.REGISTRY_PUSH ?? c.REGISTRY;
  return { pull: c.REGISTRY, push, apiUrl: c.REGISTRY_API_URL ?? (/^https?:\/\//.test(push) ? push : `http://${push}`) };
}
