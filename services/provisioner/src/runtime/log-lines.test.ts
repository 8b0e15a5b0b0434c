import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MAX_FOLLOWED_LINE, readTimestampedLines, timestampNanos } from './log-lines.ts';

describe('timestampNanos', () => {
  it('keeps the nanoseconds Docker and the kubelet write', () => {
    expect(timestampNanos('2026-12-01T18:00:00.000000001Z')! - timestampNanos('2026-12-01T18:00:00Z')!).toBe(1n);
    expect(timestampNanos('2026-12-01T18:00:00.5Z')).toBe(timestampNanos('2026-12-01T18:00:00.500000000Z'));
    expect(timestampNanos('2026-12-01T20:00:00+02:00')).toBe(timestampNanos('2026-12-01T18:00:00Z'));
    expect(timestampNanos('yesterday')).toBeUndefined();
  });
});

describe('readTimestampedLines', () => {
  it('splits lines across chunks, leaves out those at or before `since`, cuts endless ones', async () => {
    const stream = new PassThrough();
    const seen: [string, string][] = [];
    const done = readTimestampedLines(stream, '2026-12-01T18:00:00.000000002Z', (at, text) => seen.push([at, text]));
    stream.write('2026-12-01T18:00:00.000000001Z old\n2026-12-01T18:00:00.000000002Z also old\n2026-12-01T18:00:00.0000');
    stream.write('00003Z new one\r\n2026-12-01T18:00:01Z ');
    stream.write(`${'x'.repeat(MAX_FOLLOWED_LINE + 10)}\n2026-12-01T18:00:02Z last, without newline`);
    stream.end();
    await done;
    expect(seen.map(([, t]) => t.slice(0, 20))).toEqual(['new one', 'x'.repeat(20), 'last, without newlin']);
    expect(seen[1]![1]).toMatch(/…\[line cut\]$/);
    expect(seen[0]![0]).toBe('2026-12-01T18:00:00.000000003Z');
  });
});
