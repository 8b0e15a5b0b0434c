import { redisKeys } from '@codebay/contracts';
import type { Redis } from '@codebay/platform';

const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const CLAIM = `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return holder`;

/**
 * One build per build key across every builder: the instance whose builder holds
 * `codebay:build-lock:<key>` builds; builders of other instances with the same key wait
 * for it and then take the image from the registry. The lock lapses when its holder stops
 * renewing it (a killed builder), and a retried job of the holding instance takes it back.
 */
export class BuildLocks {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs: number,
  ) {}

  /** Claims the key for `instanceId`, or says which instance holds it. */
  async claim(key: string, instanceId: string): Promise<{ ok: true } | { ok: false; holder: string }> {
    const holder = (await this.redis.eval(CLAIM, 1, redisKeys.buildLock(key), instanceId, String(this.ttlMs))) as string;
    return holder === instanceId ? { ok: true } : { ok: false, holder };
  }

  async release(key: string, instanceId: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, redisKeys.buildLock(key), instanceId);
  }

  /** Renews the claim every third of its lifetime until the returned function is called. */
  keepAlive(key: string, instanceId: string): () => void {
    const timer = setInterval(() => void this.claim(key, instanceId).catch(() => undefined), Math.max(1000, Math.floor(this.ttlMs / 3)));
    return () => clearInterval(timer);
  }
}
