import { randomBytes } from 'node:crypto';
export { hashToken, sameSecret } from '@codebay/platform';

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
