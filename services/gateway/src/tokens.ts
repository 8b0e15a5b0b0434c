import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const ALPHANUM = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789';

function randomFrom(alphabet: string, length: number): string {
  // Rejection sampling keeps every character equally likely.
  const out: string[] = [];
  const limit = 256 - (256 % alphabet.length);
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < limit && out.length < length) out.push(alphabet[b % alphabet.length]!);
    }
  }
  return out.join('');
}

/** The seed's access tokens are alphanumeric with no hyphens. */
export const newAccessToken = () => randomFrom(ALPHANUM, 40);
/** Instance ids look like `<user_id>-<random>`. */
export const newInstanceId = (userId: string) => `${userId}-${randomFrom(LOWER, 8)}`;

/** sha256 of a token, hex: how API tokens are stored, and what secrets are compared by. */
export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Constant-time comparison of two secrets of any length. */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(Buffer.from(hashToken(a)), Buffer.from(hashToken(b)));
}
