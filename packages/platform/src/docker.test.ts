import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Docker, followProgress } from './docker.ts';

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
