import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const SEALED = /^v1\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]*)$/;

/**
 * The platform's own secret, `CODEBAY_SECRET_KEY` (32 or more random bytes, base64, base64url
 * or hex). The gateway and the provisioner hold it; builders and instances never do.
 * - seals what must be shown again but not stored in clear (an instance's access token,
 *   which the seed's API returns on every GET): AES-256-GCM, `v1.<iv>.<tag>.<ciphertext>`;
 * - derives per-instance secrets that both sides compute instead of storing them
 *   (HMAC-SHA256 over a purpose and its parts): the editor's own secret, the seeding token,
 *   a user's build-family tag.
 * Rotating the key invalidates sealed tokens and derived secrets (running editors keep
 * theirs until restarted).
 */
export class PlatformKey {
  private readonly encryption: Buffer;
  private readonly mac: Buffer;

  /** @throws Error when the key is shorter than 32 bytes or not base64/hex. */
  constructor(encoded: string) {
    const raw = decodeKey(encoded.trim());
    if (!raw || raw.length < 32) throw new Error('CODEBAY_SECRET_KEY must be at least 32 random bytes, base64 or hex encoded (e.g. `openssl rand -base64 32`)');
    // Two independent subkeys: one for sealing, one for derivation.
    this.encryption = createHmac('sha256', raw).update('codebay seal v1').digest();
    this.mac = createHmac('sha256', raw).update('codebay derive v1').digest();
  }

  /** Encrypts and authenticates `plaintext`. */
  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.encryption, iv);
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `v1.${iv.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}.${body.toString('base64url')}`;
  }

  /** The plaintext of `sealed`. @throws Error when it was not sealed with this key or was altered. */
  open(sealed: string): string {
    const m = SEALED.exec(sealed);
    if (!m) throw new Error('not a sealed value');
    const decipher = createDecipheriv('aes-256-gcm', this.encryption, Buffer.from(m[1]!, 'base64url'));
    decipher.setAuthTag(Buffer.from(m[2]!, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(m[3]!, 'base64url')), decipher.final()]).toString('utf8');
  }

  /** A secret for `purpose` and `parts` (hex, 64 characters); the same inputs always give the same value. */
  derive(purpose: string, ...parts: string[]): string {
    return createHmac('sha256', this.mac)
      .update([purpose, ...parts].join('\0'))
      .digest('hex');
  }
}

function decodeKey(encoded: string): Buffer | undefined {
  if (/^[0-9a-fA-F]+$/.test(encoded) && encoded.length % 2 === 0) return Buffer.from(encoded, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded)) return Buffer.from(encoded.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return undefined;
}

/** sha256 of a token, hex: how tokens that are never shown again are stored, and what secrets are compared by. */
export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Constant-time comparison of two secrets of any length. */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(Buffer.from(hashToken(a)), Buffer.from(hashToken(b)));
}

/** The secrets of one instance that gateway and provisioner both derive from the platform key. */
export const instanceSecrets = {
  /**
   * The editor's own password: code-server runs with `--auth password` and this as its
   * `HASHED_PASSWORD`, and accepts only requests carrying it as the `code-server-session`
   * cookie — which only the gateway adds. Another instance or a build that reaches the
   * editor's port gets the login page, never the workbench.
   */
  editor: (key: PlatformKey, instanceId: string) => key.derive('editor', instanceId),
  /** Bearer token an instance uses to fetch its own workspace upload (`GET /seed/instances/<id>`). */
  seed: (key: PlatformKey, instanceId: string) => key.derive('seed', instanceId),
};
