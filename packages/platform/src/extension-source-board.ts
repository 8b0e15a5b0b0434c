import { publishedExtensionSourceSchema, redisKeys, type PublishedExtensionSource } from '@codebay/contracts';
import type { Redis } from 'ioredis';

/**
 * The fingerprint of a deployment's extension source, as its builders published it in Redis
 * (one key per queue prefix, no expiry: a deployment whose builders are scaled to zero keeps
 * its last word). The builders are the ones that see the folder; the build cache compares the
 * fingerprint an image was baked from with the one published here (see `BuildCache.lookup`).
 */
export class ExtensionSourceBoard {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    queuePrefix: string,
  ) {
    this.key = redisKeys.extensionSource(queuePrefix);
  }

  /**
   * Publishes `fingerprint` (64 hex digits or NO_EXTENSION_SOURCE) with the number of extensions
   * behind it. Returns what was there before (undefined: nothing valid). Throws on a malformed
   * fingerprint (zod) or a Redis fault.
   */
  async publish(fingerprint: string, extensions: number, publisher: string): Promise<PublishedExtensionSource | undefined> {
    const record = publishedExtensionSourceSchema.parse({ fingerprint, extensions, publisher, published_at: new Date().toISOString() });
    const before = await this.redis.set(this.key, JSON.stringify(record), 'GET');
    return parse(before);
  }

  /** What was published last, or undefined when nothing (valid) is there. Throws on a Redis fault. */
  async read(): Promise<PublishedExtensionSource | undefined> {
    return parse(await this.redis.get(this.key));
  }
}

function parse(raw: string | null): PublishedExtensionSource | undefined {
  if (raw === null) return undefined;
  try {
    const parsed = publishedExtensionSourceSchema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}
