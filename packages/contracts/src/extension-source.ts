import { z } from 'zod';

/**
 * The source fingerprint of a builder without an extension source (EXTENSION_SOURCE_DIR unset):
 * its images bake nothing, and instances install extensions from the gallery at start.
 */
export const NO_EXTENSION_SOURCE = 'none';

/**
 * What the builders of one deployment publish at `redisKeys.extensionSource(queuePrefix)`: the
 * fingerprint of their extension source (a wire format: builders write it, the gateway and the
 * builders read it with this schema). `fingerprint` is 64 hex digits (sha256, see the builder's
 * `ExtensionSource.scan`) or NO_EXTENSION_SOURCE.
 */
export const publishedExtensionSourceSchema = z.object({
  fingerprint: z.string().regex(/^([a-f0-9]{64}|none)$/),
  /** How many extensions (ids) the source offers. */
  extensions: z.number().int().nonnegative(),
  /** Who published it (BUILDER_NAME), and when (ISO time). */
  publisher: z.string(),
  published_at: z.string(),
});
export type PublishedExtensionSource = z.infer<typeof publishedExtensionSourceSchema>;
