import { MAX_LOG_ENTRIES, MAX_LOG_LINE, redisKeys, type BuildLogEnd, type BuildLogLine, type BuildOutcome } from '@codebay/contracts';
import type { Redis } from 'ioredis';

export type LogEntry = { kind: 'line'; line: BuildLogLine } | { kind: 'end'; end: BuildLogEnd };

/** How long a finished build's log stays readable. */
const LOG_TTL_SECONDS = 7 * 86_400;

export function toLogEntry(id: string, fields: string[]): LogEntry {
  const map: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!;
  if (map.end !== undefined) {
    const end: BuildLogEnd = { id, outcome: map.end as BuildOutcome };
    if (map.reason) end.reason = map.reason;
    return { kind: 'end', end };
  }
  return { kind: 'line', line: { id, text: map.line ?? '' } };
}

function clip(text: string): string {
  return text.length > MAX_LOG_LINE ? `${text.slice(0, MAX_LOG_LINE)} …[line cut at ${MAX_LOG_LINE} characters]` : text;
}

/**
 * One Redis stream per build (`codebay:build:<id>:logs`): line entries, then one
 * end entry with the outcome. Capped with MAXLEN ~, expired after the end.
 */
export class BuildLogStream {
  constructor(private readonly redis: Redis) {}

  async append(instanceId: string, lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    const key = redisKeys.buildLogs(instanceId);
    const pipeline = this.redis.pipeline();
    for (const line of lines) pipeline.xadd(key, 'MAXLEN', '~', String(MAX_LOG_ENTRIES), '*', 'line', clip(line));
    await pipeline.exec();
  }

  async end(instanceId: string, outcome: BuildOutcome, reason?: string): Promise<void> {
    const key = redisKeys.buildLogs(instanceId);
    const fields = reason ? ['end', outcome, 'reason', clip(reason)] : ['end', outcome];
    await this.redis
      .multi()
      .xadd(key, 'MAXLEN', '~', String(MAX_LOG_ENTRIES), '*', ...fields)
      .expire(key, LOG_TTL_SECONDS)
      .exec();
  }

  /** Entries after `afterId` (exclusive); '0' reads from the start. */
  async read(instanceId: string, afterId = '0', count = 10_000): Promise<LogEntry[]> {
    const start = afterId === '0' ? '-' : `(${afterId}`;
    const rows = await this.redis.xrange(redisKeys.buildLogs(instanceId), start, '+', 'COUNT', count);
    return rows.map(([id, fields]) => toLogEntry(id, fields));
  }

  async exists(instanceId: string): Promise<boolean> {
    return (await this.redis.exists(redisKeys.buildLogs(instanceId))) === 1;
  }
}
