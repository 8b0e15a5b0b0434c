import { TransientError } from '@codebay/contracts';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeVsix } from '../../../test/support/vsix.ts';
import { bakeExtensions } from './extension-bake.ts';
import { ExtensionSource } from './extension-source.ts';
import type { ImageStore } from './images.ts';

/** The build context as ImageStore.build received it (read before bakeExtensions removes it). */
interface Received {
  tag: string;
  files: string[];
  labels: Record<string, string>;
  dockerfile: string;
  index: unknown;
  modes: number[];
}

function fakeImages(received: Received[]): ImageStore {
  return {
    build: (context: string, files: string[], tag: string, labels: Record<string, string>) => {
      received.push({
        tag,
        files,
        labels,
        dockerfile: readFileSync(join(context, 'Dockerfile'), 'utf8'),
        index: JSON.parse(readFileSync(join(context, 'extensions/index.json'), 'utf8')) as unknown,
        modes: files.map((f) => statSync(join(context, f)).mode & 0o777),
      });
      return Promise.resolve('sha256:baked');
    },
  } as unknown as ImageStore;
}

describe('bakeExtensions', () => {
  let dir: string;
  let work: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'codebay-bake-src-'));
    work = mkdtempSync(join(tmpdir(), 'codebay-bake-work-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('builds FROM the image with the chosen files and the index, labelled, as the push ref; the scratch folder goes', async () => {
    makeVsix(join(dir, 'one.vsix'), { publisher: 'acme', name: 'tool', version: '2.0.0' });
    const received: Received[] = [];
    const lines: string[] = [];
    const baked = await bakeExtensions(
      { source: new ExtensionSource(dir), images: fakeImages(received) },
      { from: 'sha256:cli', tag: 'push/codebay-devcontainer:key', wanted: ['acme.tool', 'no.such'], workDir: join(work, 'x'), log: (l) => lines.push(l) },
    );
    expect(baked.imageId).toBe('sha256:baked');
    expect(received).toEqual([
      {
        tag: 'push/codebay-devcontainer:key',
        files: ['extensions/acme.tool-2.0.0.vsix', 'extensions/index.json'],
        labels: {
          'codebay.extensions': JSON.stringify({ baked: [{ id: 'acme.tool', version: '2.0.0' }], missing: ['no.such'], source: baked.resolution.fingerprint }),
        },
        dockerfile: 'FROM sha256:cli\nCOPY extensions/ /usr/local/share/codebay/extensions/\n',
        index: { extensions: [{ id: 'acme.tool', version: '2.0.0', file: 'acme.tool-2.0.0.vsix' }], missing: ['no.such'] },
        modes: [0o644, 0o644],
      },
    ]);
    expect(lines).toContain('codebay: extension acme.tool 2.0.0: baked into the image');
    expect(lines).toContain(`codebay: extension source ${baked.resolution.fingerprint.slice(0, 12)}…: 1 of 2 wanted extension(s) found`);
    expect(() => statSync(join(work, 'x'))).toThrow();
  });

  it('a source that cannot be read is the builder’s fault (transient), not the config’s', async () => {
    const gone = join(dir, 'gone');
    const err = await bakeExtensions(
      { source: new ExtensionSource(gone), images: fakeImages([]) },
      { from: 'sha256:cli', tag: 't', wanted: ['a.b'], workDir: join(work, 'x'), log: () => undefined },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as Error).message).toBe("this builder's extension source cannot be read (ENOENT)");
  });
});
