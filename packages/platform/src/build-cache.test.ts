import { launchConfigSchema, type PublishedExtensionSource } from '@codebay/contracts';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { BuildCache, type BuiltImage } from './build-cache.ts';
import type { ExtensionSourceBoard } from './extension-source-board.ts';
import type { RegistryClient } from './registry.ts';

const DIGEST = `sha256:${'d'.repeat(64)}`;
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

/** A map standing in for Redis (the commands BuildCache uses). */
function fakeRedis(): Redis {
  const data = new Map<string, string>();
  return {
    get: (k: string) => Promise.resolve(data.get(k) ?? null),
    set: (k: string, v: string) => Promise.resolve(void data.set(k, v)),
    del: (k: string) => Promise.resolve(Number(data.delete(k))),
    expire: () => Promise.resolve(1),
    eval: () => Promise.resolve(0),
  } as unknown as Redis;
}

const registry = { hasManifest: () => Promise.resolve(true) } as unknown as RegistryClient;

function setup(published?: string) {
  const board = { read: () => Promise.resolve(published === undefined ? undefined : ({ fingerprint: published } as PublishedExtensionSource)) };
  const cache = new BuildCache(fakeRedis(), registry, 'pull', board as ExtensionSourceBoard);
  const record = (extensionSource: BuiltImage['extensionSource'], extensions: string[] = ['a.b']) =>
    cache.record('key', {
      digest: DIGEST,
      launch: launchConfigSchema.parse({ extensions }),
      builtAt: 'now',
      builder: 'b',
      ...(extensionSource === undefined ? {} : { extensionSource }),
    });
  return { cache, record };
}

describe('BuildCache and the extension source', () => {
  it('an image baked from the published source is a hit; from another, a miss that keeps the record', async () => {
    const { cache, record } = setup(A);
    await record(A);
    expect((await cache.lookup('key'))?.digest).toBe(DIGEST);
    await record(B);
    expect(await cache.lookup('key')).toBeUndefined();
    // A builder's own fingerprint overrides the published one; the record is still there.
    expect((await cache.lookup('key', { extensionSource: B }))?.digest).toBe(DIGEST);
  });

  it('a build that wanted no extensions hits whatever the source', async () => {
    const { cache, record } = setup(B);
    await record(null, []);
    expect((await cache.lookup('key'))?.digest).toBe(DIGEST);
  });

  it('built without a source (none), then a source published: a miss', async () => {
    const { cache, record } = setup(A);
    await record('none');
    expect(await cache.lookup('key')).toBeUndefined();
    expect((await setupAndRecord('none', 'none'))?.digest).toBe(DIGEST);
  });

  it('a record from before the fingerprint: a miss when its launch lists extensions and a source is published, a hit otherwise', async () => {
    const withExtensions = setup(A);
    await withExtensions.record(undefined);
    expect(await withExtensions.cache.lookup('key')).toBeUndefined();
    const without = setup(A);
    await without.record(undefined, []);
    expect((await without.cache.lookup('key'))?.digest).toBe(DIGEST);
  });

  it('nothing published (no builder has started since): the record is trusted', async () => {
    const { cache, record } = setup(undefined);
    await record(A);
    expect((await cache.lookup('key'))?.digest).toBe(DIGEST);
  });
});

async function setupAndRecord(published: string, recorded: string) {
  const { cache, record } = setup(published);
  await record(recorded);
  return cache.lookup('key');
}
