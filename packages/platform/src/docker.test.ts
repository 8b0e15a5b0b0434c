import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Docker, demuxDockerLog, followProgress } from './docker.ts';

// dockerode's own progress parser, over a stream this test writes: no daemon involved.
const docker = new Docker({ socketPath: '/nonexistent.sock' });

describe('followProgress', () => {
  it('resolves with the events of a stream that ends', async () => {
    const stream = new PassThrough();
    const done = followProgress(docker, stream, undefined, 1_000);
    stream.write(`${JSON.stringify({ status: 'Pulling fs layer', id: 'a' })}\n`);
    stream.end(`${JSON.stringify({ status: 'Digest: sha256:x' })}\n`);
    expect(await done).toHaveLength(2);
  });

  it('rejects with the error event a registry sends', async () => {
    const stream = new PassThrough();
    const done = followProgress(docker, stream, undefined, 1_000);
    stream.end(`${JSON.stringify({ error: 'unauthorized', errorDetail: { message: 'unauthorized: authentication required' } })}\n`);
    await expect(done).rejects.toThrow('unauthorized: authentication required');
  });

  it('ends a stream that goes quiet for the idle limit, however long it has run', async () => {
    const stream = new PassThrough();
    const started = Date.now();
    const done = followProgress(docker, stream, undefined, 300);
    // Progress keeps it alive past the limit …
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 150));
      stream.write(`${JSON.stringify({ status: 'Downloading', id: 'a' })}\n`);
    }
    // … silence ends it.
    await expect(done).rejects.toThrow('no progress for 0.3 s');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(stream.destroyed).toBe(true);
  });
});

/** One frame of Docker's multiplexed log stream: [stream, 0, 0, 0, uint32 BE length] + payload. */
const frame = (stream: 1 | 2, payload: Buffer | string) => {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(body.length, 4);
  return Buffer.concat([head, body]);
};

describe('demuxDockerLog', () => {
  it('joins the payloads of stdout and stderr frames in order, without a byte of their headers', () => {
    // 41-byte lines: each header's last byte is 0x29, ")", printable — it used to leak into reasons.
    const a = `codebay-frame-check-one-${'x'.repeat(16)}\n`;
    const b = `codebay-frame-check-two-${'y'.repeat(16)}\n`;
    expect(a.length).toBe(41);
    expect(demuxDockerLog(Buffer.concat([frame(1, a), frame(2, b), frame(1, 'last\n')]), false)).toBe(`${a}${b}last\n`);
  });

  it('keeps a character whose bytes are split across two frames whole', () => {
    const euro = Buffer.from('€\n');
    expect(demuxDockerLog(Buffer.concat([frame(1, euro.subarray(0, 1)), frame(1, euro.subarray(1))]), false)).toBe('€\n');
  });

  it('returns a TTY container’s bytes as they are', () => {
    const raw = Buffer.from('\u0001\u0000\u0000\u0000 not a frame: a TTY log\n');
    expect(demuxDockerLog(raw, true)).toBe(raw.toString('utf8'));
  });

  it('keeps what is not a frame as text, drops a cut-off header, clamps a cut-off payload', () => {
    expect(demuxDockerLog(Buffer.from('plain text, no frames\n'), false)).toBe('plain text, no frames\n');
    expect(demuxDockerLog(Buffer.concat([frame(1, 'one\n'), Buffer.from('raw tail')]), false)).toBe('one\nraw tail');
    expect(demuxDockerLog(Buffer.concat([frame(1, 'one\n'), frame(2, 'two\n').subarray(0, 5)]), false)).toBe('one\n');
    expect(demuxDockerLog(frame(1, 'truncated payload').subarray(0, 12), false)).toBe('trun');
    expect(demuxDockerLog(Buffer.alloc(0), false)).toBe('');
  });
});
