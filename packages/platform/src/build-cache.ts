import { BUILD_IMAGE_REPOSITORY, launchConfigSchema, redisKeys, type LaunchConfig, type PropertyWarning } from '@codebay/contracts';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { RegistryClient } from './registry.ts';

/** What a builder records when it has pushed a build key's image. */
export const builtImageSchema = z.object({
  /** Manifest digest the registry answered at push (`sha256:…`). */
  digest: z.string().regex(/^sha256:[a-f0-9]{64}$/),
  launch: launchConfigSchema,
  /** What the image's metadata (its features') asks of the container that codebay does not grant (`metadataWarnings`). */
  warnings: z.array(z.object({ property: z.string(), message: z.string() })).default([]),
  builtAt: z.string(),
  builder: z.string(),
});
export type BuiltImage = z.infer<typeof builtImageSchema>;

/** A verified cache hit: the image to run (by digest) and how to launch it. */
export interface CacheHit {
  /** `<pull registry>/codebay-devcontainer@sha256:…`: pulled by digest, never by tag. */
  image: string;
  digest: string;
  launch: LaunchConfig;
  /** The image's own warnings (its features'), as its builder recorded them. */
  warnings: PropertyWarning[];
}

/** How long a record outlives its last use (the registry keeps the image; nothing else points at it). */
const RECORD_TTL_SECONDS = 30 * 86_400;

/**
 * The build cache: a hit is an image codebay itself built and recorded. The builder writes
 * key → digest (and the launch configuration read from the image it built) into Redis
 * when the push succeeds; a lookup accepts the key only when that record exists and the
 * registry still holds that exact digest, and the instance then pulls by digest. Whatever
 * the registry holds under the key's *tag* (pushed by anyone, or overwritten) is never
 * trusted. Hits cross users only for identical build keys (same config, same files the
 * build reads, same features, same CLI): see docs/security.md.
 */
export class BuildCache {
  constructor(
    private readonly redis: Redis,
    private readonly registry: RegistryClient,
    /** Registry address instances pull from (`REGISTRY`). */
    private readonly pullRegistry: string,
  ) {}

  /** Records the image a builder pushed for `key`. */
  async record(key: string, image: z.input<typeof builtImageSchema>): Promise<void> {
    await this.redis.set(redisKeys.builtImage(key), JSON.stringify(builtImageSchema.parse(image)), 'EX', RECORD_TTL_SECONDS);
  }

  /**
   * The verified image of `key`, or undefined (no record, a malformed one, or the registry
   * no longer has that digest: the record is dropped). A registry that cannot be asked
   * throws TransientError: callers count it as a miss.
   */
  async lookup(key: string): Promise<CacheHit | undefined> {
    const redisKey = redisKeys.builtImage(key);
    const raw = await this.redis.get(redisKey);
    if (!raw) return undefined;
    const parsed = builtImageSchema.safeParse(safeJson(raw));
    if (!parsed.success) {
      await this.redis.del(redisKey);
      return undefined;
    }
    const { digest, launch, warnings } = parsed.data;
    if (!(await this.registry.hasManifest(BUILD_IMAGE_REPOSITORY, digest))) {
      // Only if nobody re-recorded it meanwhile.
      await this.redis.eval(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1, redisKey, raw);
      return undefined;
    }
    await this.redis.expire(redisKey, RECORD_TTL_SECONDS);
    return { image: `${this.pullRegistry}/${BUILD_IMAGE_REPOSITORY}@${digest}`, digest, launch, warnings };
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
