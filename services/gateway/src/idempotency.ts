import { ConflictError, InputError, redisKeys } from '@codebay/contracts';
import type { Redis } from 'ioredis';
import type { Caller } from './identity.ts';

const PENDING = '<pending>';
const TTL_SECONDS = 86_400;
const KEY_RE = /^[\x21-\x7e]{1,200}$/;

export type Claim = { kind: 'new'; release: (instanceId?: string) => Promise<void> } | { kind: 'replay'; instanceId: string };

/**
 * `Idempotency-Key` on creates: the first request with a key creates the instance; a
 * retry with the same key (same caller) gets that instance back instead of a second one.
 * Keys live a day. A retry while the first is still in flight gets 409.
 */
export class IdempotencyKeys {
  constructor(private readonly redis: Redis) {}

  private redisKey(caller: Caller, key: string): string {
    return redisKeys.idempotency(caller.role === 'admin' ? 'admin' : `user:${caller.userId}`, key);
  }

  async claim(caller: Caller, key: string | undefined): Promise<Claim | undefined> {
    if (key === undefined) return undefined;
    if (!KEY_RE.test(key)) throw new InputError('invalid_idempotency_key', 'Idempotency-Key must be 1 to 200 visible ASCII characters');
    const rk = this.redisKey(caller, key);
    const won = await this.redis.set(rk, PENDING, 'EX', TTL_SECONDS, 'NX');
    if (won === 'OK') {
      return {
        kind: 'new',
        // Record the instance made, or forget the key when the request failed (so it can be retried).
        release: async (instanceId) => {
          if (instanceId) await this.redis.set(rk, instanceId, 'EX', TTL_SECONDS);
          else await this.redis.del(rk);
        },
      };
    }
    const existing = await this.redis.get(rk);
    if (!existing || existing === PENDING)
      throw new ConflictError('request_in_progress', 'a request with this Idempotency-Key is still being processed; retry shortly');
    return { kind: 'replay', instanceId: existing };
  }
}
