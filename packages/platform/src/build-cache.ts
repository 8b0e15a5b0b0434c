import { BUILD_IMAGE_REPOSITORY, launchConfigSchema, redisKeys, type LaunchConfig, type PropertyWarning } from '@codebay/contracts';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { ExtensionSourceBoard } from './extension-source-board.ts';
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
  /**
   * The fingerprint of the extension source the image's extensions were baked from (the
   * builder's at bake time; NO_EXTENSION_SOURCE when it had none), or null when the build wanted
   * no extensions (the source does not matter to it). Absent in records written before codebay
   * recorded it.
   */
  extensionSource: z.string().nullable().optional(),
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

/** Options of `BuildCache.lookup`. */
export interface LookupOptions {
  /**
   * The extension source fingerprint a hit must have been baked from (a builder passes its own).
   * Default: the one the deployment's builders published (`ExtensionSourceBoard`), if any.
   */
  extensionSource?: string;
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
 *
 * The build key does not cover the extension source (a folder on the builders): the record
 * says which source fingerprint its image was baked from, and an image that wanted extensions
 * is a hit only while that is the deployment's current fingerprint (see `lookup`).
 */
export class BuildCache {
  constructor(
    private readonly redis: Redis,
    private readonly registry: RegistryClient,
    /** Registry address instances pull from (`REGISTRY`). */
    private readonly pullRegistry: string,
    /** Where the deployment's builders publish their extension source fingerprint; without it no record is stale for its source. */
    private readonly extensionSources?: ExtensionSourceBoard,
  ) {}

  /** Records the image a builder pushed for `key`. */
  async record(key: string, image: z.input<typeof builtImageSchema>): Promise<void> {
    await this.redis.set(redisKeys.builtImage(key), JSON.stringify(builtImageSchema.parse(image)), 'EX', RECORD_TTL_SECONDS);
  }

  /**
   * The verified image of `key`, or undefined (no record, a malformed one, or the registry
   * no longer has that digest: the record is dropped). An image whose build wanted extensions
   * (or whose record predates the fingerprint and whose launch lists extensions) is a hit only
   * when it was baked from `opts.extensionSource`, by default the published fingerprint (none
   * published: any); otherwise it is a miss and its record stays (the rebuild replaces it, and
   * a source put back as it was makes it a hit again). A registry that cannot be asked throws
   * TransientError, Redis its own errors: callers count either as a miss.
   */
  async lookup(key: string, opts: LookupOptions = {}): Promise<CacheHit | undefined> {
    const redisKey = redisKeys.builtImage(key);
    const raw = await this.redis.get(redisKey);
    if (!raw) return undefined;
    const parsed = builtImageSchema.safeParse(safeJson(raw));
    if (!parsed.success) {
      await this.redis.del(redisKey);
      return undefined;
    }
    const { digest, launch, warnings } = parsed.data;
    if (await this.bakedFromAnotherSource(parsed.data, opts)) return undefined;
    if (!(await this.registry.hasManifest(BUILD_IMAGE_REPOSITORY, digest))) {
      // Only if nobody re-recorded it meanwhile.
      await this.redis.eval(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1, redisKey, raw);
      return undefined;
    }
    await this.redis.expire(redisKey, RECORD_TTL_SECONDS);
    return { image: `${this.pullRegistry}/${BUILD_IMAGE_REPOSITORY}@${digest}`, digest, launch, warnings };
  }

  /** Whether the record's image wanted extensions and was baked from a source other than the current one. */
  private async bakedFromAnotherSource(record: BuiltImage, opts: LookupOptions): Promise<boolean> {
    const recorded = record.extensionSource;
    if (recorded === null || (recorded === undefined && record.launch.extensions.length === 0)) return false;
    const current = opts.extensionSource ?? (await this.extensionSources?.read())?.fingerprint;
    return current !== undefined && current !== recorded;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
