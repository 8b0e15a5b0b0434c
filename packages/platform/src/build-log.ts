import { MAX_LOG_ENTRIES, MAX_LOG_LINE, redisKeys, type BuildLogEnd, type BuildLogLine, type BuildOutcome, type LogKind } from '@codebay/contracts';
import type { Redis } from 'ioredis';

export type LogEntry = { kind: 'line'; line: BuildLogLine } | { kind: 'end'; end: BuildLogEnd };

/** Lines an instance log keeps (its newest; each at most 1 KiB as the provisioner mirrors them): about 3 MB of Redis at most. */
const MAX_INSTANCE_LOG_ENTRIES = 2_000;

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

/** The Redis stream of an instance's log of `kind`. */
export function logKey(kind: LogKind, instanceId: string): string {
  return kind === 'build' ? redisKeys.buildLogs(instanceId) : redisKeys.instanceLogs(instanceId);
}

function clip(text: string): string {
  return text.length > MAX_LOG_LINE ? `${text.slice(0, MAX_LOG_LINE)} …[line cut at ${MAX_LOG_LINE} characters]` : text;
}

/**
 * One Redis stream per build (`codebay:build:<id>:logs`), or per instance's container
 * (`kind` `instance`: `codebay:instance:<id>:logs`): line entries, then one end entry with the
 * outcome. Capped with MAXLEN ~, expired after the end.
 */
export class BuildLogStream {
  /** Approximate cap on one stream's entries (XADD MAXLEN ~): an instance log keeps its last 10,000 lines. */
  private readonly maxEntries: string;

  constructor(
    private readonly redis: Redis,
    readonly kind: LogKind = 'build',
  ) {
    this.maxEntries = String(kind === 'build' ? MAX_LOG_ENTRIES : MAX_INSTANCE_LOG_ENTRIES);
  }

  private key(instanceId: string): string {
    return logKey(this.kind, instanceId);
  }

  /**
   * Appends lines; `at` (optional, one per line) is where each line came from in its source
   * (the container log's RFC 3339 timestamp), kept so a reader that resumes knows where it was.
   */
  async append(instanceId: string, lines: string[], at?: string[]): Promise<void> {
    if (lines.length === 0) return;
    const key = this.key(instanceId);
    const pipeline = this.redis.pipeline();
    lines.forEach((line, i) => {
      const fields = at?.[i] ? ['line', clip(line), 'at', at[i]!] : ['line', clip(line)];
      pipeline.xadd(key, 'MAXLEN', '~', this.maxEntries, '*', ...fields);
    });
    await pipeline.exec();
  }

  /** The `at` of the last line appended with one (undefined when none was, or the log ended). */
  async lastAt(instanceId: string): Promise<string | undefined> {
    const [last] = await this.redis.xrevrange(this.key(instanceId), '+', '-', 'COUNT', 1);
    if (!last) return undefined;
    const fields = last[1];
    const i = fields.indexOf('at');
    return i >= 0 && i % 2 === 0 ? fields[i + 1] : undefined;
  }

  /** Appends the end entry (`outcome`, `reason`); the stream expires `ttlSeconds` later (a week by default). */
  async end(instanceId: string, outcome: BuildOutcome, reason?: string, ttlSeconds = LOG_TTL_SECONDS): Promise<void> {
    const key = this.key(instanceId);
    const fields = reason ? ['end', outcome, 'reason', clip(reason)] : ['end', outcome];
    await this.redis
      .multi()
      .xadd(key, 'MAXLEN', '~', this.maxEntries, '*', ...fields)
      .expire(key, ttlSeconds)
      .exec();
  }

  /** Entries after `afterId` (exclusive); '0' reads from the start. */
  async read(instanceId: string, afterId = '0', count = 10_000): Promise<LogEntry[]> {
    const start = afterId === '0' ? '-' : `(${afterId}`;
    const rows = await this.redis.xrange(this.key(instanceId), start, '+', 'COUNT', count);
    return rows.map(([id, fields]) => toLogEntry(id, fields));
  }

  async exists(instanceId: string): Promise<boolean> {
    return (await this.redis.exists(this.key(instanceId))) === 1;
  }
}
