import type { PassThrough, Readable } from 'node:stream';

/** A container log line with the runtime's timestamp (`docker logs --timestamps`, `kubectl logs --timestamps`): `<RFC 3339> <text>`. */
const TIMESTAMPED = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ?(.*)$/s;

/** Longest line passed on, characters (a tenant's output may have no newline at all); the rest is cut (the mirror cuts again, by bytes). */
export const MAX_FOLLOWED_LINE = 2_048;

/**
 * Nanoseconds since the epoch of an RFC 3339 timestamp with up to 9 fraction digits (as Docker
 * and the kubelet write them; `Date.parse` keeps milliseconds only). Undefined when it is not one.
 */
export function timestampNanos(ts: string): bigint | undefined {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(seconds)) return undefined;
  return BigInt(seconds) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0').slice(0, 9));
}

/**
 * Splits a timestamped log stream into lines and calls `onLine(at, text)` for each one after
 * `since` (exclusive). Resolves when the stream ends or errs.
 */
export function readTimestampedLines(stream: Readable | PassThrough, since: string | undefined, onLine: (at: string, text: string) => void): Promise<void> {
  const after = since === undefined ? undefined : timestampNanos(since);
  let pending = '';
  let last = '';
  const emit = (line: string) => {
    const m = TIMESTAMPED.exec(line);
    const at = m ? m[1]! : last;
    const text = (m ? m[2]! : line).replace(/\r$/, '');
    if (!at) return;
    last = at;
    if (after !== undefined && (timestampNanos(at) ?? 0n) <= after) return;
    onLine(at, text.length > MAX_FOLLOWED_LINE ? `${text.slice(0, MAX_FOLLOWED_LINE)} …[line cut]` : text);
  };
  return new Promise((resolve) => {
    stream.on('data', (chunk: Buffer | string) => {
      const parts = (pending + chunk.toString()).split('\n');
      pending = parts.pop()!;
      if (pending.length > MAX_FOLLOWED_LINE * 2) pending = pending.slice(0, MAX_FOLLOWED_LINE * 2);
      for (const line of parts) emit(line);
    });
    const done = () => {
      if (pending) emit(pending);
      pending = '';
      resolve();
    };
    stream.once('end', done);
    stream.once('close', done);
    stream.once('error', done);
  });
}
