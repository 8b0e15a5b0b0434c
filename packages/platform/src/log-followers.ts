import { redisKeys, type LogKind } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { logKey, toLogEntry, type LogEntry } from './build-log.ts';

/** A follower's handle: `close()` stops delivery (idempotent). */
export interface LogSubscription {
  close(): void;
}

interface Follower {
  key: string;
  cursor: string;
  deliver: (entries: LogEntry[]) => void;
}

/** Stream ids as [ms, seq]: '0' and '0-0' are the start. */
function parseId(id: string): [bigint, bigint] {
  const [ms, seq] = id.split('-');
  return [BigInt(ms ?? '0'), BigInt(seq ?? '0')];
}

export function compareStreamIds(a: string, b: string): number {
  const [am, as] = parseId(a);
  const [bm, bs] = parseId(b);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

const WAKE_TTL_SECONDS = 3600;

/**
 * Every build-log follower of one process shares one blocking Redis connection: a single
 * XREAD BLOCK over all followed streams (each from its slowest follower's cursor) feeds
 * them all, so 1,000 SSE clients cost 1,000 sockets to the clients and one to Redis.
 *
 * A new follower wakes the pending XREAD through a wake stream of this process's own,
 * which the loop always reads too: no window in which a follower can be missed.
 */
export class LogFollowers {
  private readonly followers = new Set<Follower>();
  private readonly wakeKey = redisKeys.logFollowersWake(randomBytes(8).toString('hex'));
  private wakeCursor = '0';
  private blocking: Redis | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;
  private readonly closing = new AbortController();

  constructor(
    private readonly redis: Redis,
    private readonly options: { blockMs?: number; count?: number; onError?: (err: unknown) => void } = {},
  ) {}

  get size(): number {
    return this.followers.size;
  }

  /** Aborts when `close()` begins: whoever serves a follower ends its response (the client resumes elsewhere). */
  get closed(): AbortSignal {
    return this.closing.signal;
  }

  /** Followers of one instance's log (of `kind`) right now. */
  count(instanceId: string, kind: LogKind = 'build'): number {
    const key = logKey(kind, instanceId);
    let n = 0;
    for (const f of this.followers) if (f.key === key) n++;
    return n;
  }

  /**
   * Delivers the entries of `instanceId`'s log (its build's, or its container's: `kind`) after `afterId` (exclusive; '0' = from the start),
   * in order, each once, in batches as they are read, until the end entry (the last of its
   * batch; the subscription then closes itself) or `close()`. Followers of one stream get
   * the same entry objects: a caller may cache what it derives from them.
   */
  subscribe(instanceId: string, afterId: string, deliver: (entries: LogEntry[]) => void, kind: LogKind = 'build'): LogSubscription {
    if (this.stopped) throw new Error('log followers are closed');
    const follower: Follower = { key: logKey(kind, instanceId), cursor: afterId, deliver };
    this.followers.add(follower);
    this.start();
    this.wake();
    return { close: () => void this.followers.delete(follower) };
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.closing.abort();
    this.followers.clear();
    this.blocking?.disconnect();
    await this.loop?.catch(() => undefined);
    await this.redis.del(this.wakeKey).catch(() => undefined);
  }

  private wake(): void {
    this.redis
      .multi()
      .xadd(this.wakeKey, 'MAXLEN', '~', '16', '*', 'w', '1')
      .expire(this.wakeKey, WAKE_TTL_SECONDS)
      .exec()
      .catch((err: unknown) => this.options.onError?.(err));
  }

  private start(): void {
    if (this.loop) return;
    this.blocking ??= this.redis.duplicate();
    this.loop = this.run().finally(() => {
      this.loop = undefined;
      // A follower that arrived as the loop wound down still needs one.
      if (!this.stopped && this.followers.size > 0) this.start();
    });
  }

  /** The slowest cursor of each followed stream. */
  private cursors(): Map<string, string> {
    const out = new Map<string, string>();
    for (const f of this.followers) {
      const known = out.get(f.key);
      if (known === undefined || compareStreamIds(f.cursor, known) < 0) out.set(f.key, f.cursor);
    }
    return out;
  }

  private async run(): Promise<void> {
    const blocking = this.blocking!;
    while (!this.stopped && this.followers.size > 0) {
      const cursors = this.cursors();
      const keys = [this.wakeKey, ...cursors.keys()];
      const ids = [this.wakeCursor, ...cursors.values()];
      let res: [string, [string, string[]][]][] | null;
      try {
        res = (await blocking.xread('COUNT', this.options.count ?? 500, 'BLOCK', this.options.blockMs ?? 5_000, 'STREAMS', ...keys, ...ids)) as
          [string, [string, string[]][]][] | null;
      } catch (err) {
        if (this.stopped) return;
        this.options.onError?.(err);
        await new Promise((resolve) => setTimeout(resolve, 500));
        continue;
      }
      for (const [key, rows] of res ?? []) {
        if (key === this.wakeKey) {
          const last = rows.at(-1);
          if (last) this.wakeCursor = last[0];
          continue;
        }
        this.dispatch(key, rows);
      }
    }
  }

  private dispatch(key: string, rows: [string, string[]][]): void {
    const entries = rows.map(([id, fields]) => toLogEntry(id, fields));
    const ids = rows.map(([id]) => id);
    for (const f of [...this.followers]) {
      if (f.key !== key) continue;
      // The first entry after the follower's cursor; the batch is in stream order.
      let from = 0;
      while (from < ids.length && compareStreamIds(ids[from]!, f.cursor) <= 0) from++;
      if (from === ids.length) continue;
      // Up to and including an end entry: nothing follows it.
      let to = from;
      while (to < entries.length && entries[to]!.kind !== 'end') to++;
      to = Math.min(to + 1, entries.length);
      f.cursor = ids[to - 1]!;
      if (entries[to - 1]!.kind === 'end') this.followers.delete(f);
      try {
        f.deliver(entries.slice(from, to));
      } catch (err) {
        this.followers.delete(f);
        this.options.onError?.(err);
      }
    }
  }
}
