import { NO_EXTENSION_SOURCE, type PublishedExtensionSource } from '@codebay/contracts';
import type { Logger } from '@codebay/platform';
import { describe, expect, it } from 'vitest';
import { ExtensionSourceWatch } from './extension-source-watch.ts';
import type { SourceScan } from './extension-source.ts';

/** A board in memory (one deployment's key) that counts its writes. */
function memoryBoard() {
  let value: PublishedExtensionSource | undefined;
  const board = {
    writes: 0,
    publish(fingerprint: string, extensions: number, publisher: string) {
      const before = value;
      value = { fingerprint, extensions, publisher, published_at: 'now' };
      board.writes++;
      return Promise.resolve(before);
    },
    read: () => Promise.resolve(value),
    clear: () => (value = undefined),
  };
  return board;
}

function logger() {
  const warnings: string[] = [];
  return { warnings, log: { info: () => undefined, warn: (_o: unknown, msg: string) => warnings.push(msg) } as unknown as Logger };
}

const scanOf = (fingerprint: string): SourceScan => ({ chosen: new Map(), skipped: [], fingerprint });

describe('ExtensionSourceWatch', () => {
  it('publishes at start, again only when the folder’s fingerprint changes or the board lost it', async () => {
    const board = memoryBoard();
    let fp = 'a'.repeat(64);
    const watch = new ExtensionSourceWatch({
      source: { scan: () => Promise.resolve(scanOf(fp)) },
      board,
      logger: logger().log,
      builder: 'b1',
      intervalMs: 60_000,
    });
    expect(await watch.start()).toBe(fp);
    expect(board.writes).toBe(1);
    expect(await watch.current()).toBe(fp);
    expect(board.writes).toBe(1);
    fp = 'b'.repeat(64);
    expect(await watch.current()).toBe(fp);
    expect((await board.read())?.fingerprint).toBe(fp);
    expect(board.writes).toBe(2);
    board.clear();
    await watch.current();
    expect((await board.read())?.fingerprint).toBe(fp);
    watch.stop();
  });

  it('without a source: publishes none', async () => {
    const board = memoryBoard();
    const watch = new ExtensionSourceWatch({ board, logger: logger().log, builder: 'b1', intervalMs: 60_000 });
    expect(await watch.start()).toBe(NO_EXTENSION_SOURCE);
    expect((await board.read())?.fingerprint).toBe(NO_EXTENSION_SOURCE);
  });

  it('two builders that disagree: the board holds the last that changed, each keeps its own for its builds, and the other warns once', async () => {
    const board = memoryBoard();
    const one = logger();
    const two = logger();
    const a = new ExtensionSourceWatch({
      source: { scan: () => Promise.resolve(scanOf('a'.repeat(64))) },
      board,
      logger: one.log,
      builder: 'b1',
      intervalMs: 60_000,
    });
    const b = new ExtensionSourceWatch({
      source: { scan: () => Promise.resolve(scanOf('b'.repeat(64))) },
      board,
      logger: two.log,
      builder: 'b2',
      intervalMs: 60_000,
    });
    await a.start();
    await b.start();
    expect((await board.read())?.fingerprint).toBe('b'.repeat(64));
    expect(await a.current()).toBe('a'.repeat(64));
    await a.current();
    expect(one.warnings).toHaveLength(1);
    expect(one.warnings[0]).toMatch(/another builder published a different fingerprint/);
    expect((await board.read())?.fingerprint).toBe('b'.repeat(64));
    a.stop();
    b.stop();
  });

  it('a scan that fails: undefined (the caller goes by the published one), logged', async () => {
    const board = memoryBoard();
    const l = logger();
    let fail = false;
    const watch = new ExtensionSourceWatch({
      source: { scan: () => (fail ? Promise.reject(new Error('EACCES')) : Promise.resolve(scanOf('a'.repeat(64)))) },
      board,
      logger: l.log,
      builder: 'b1',
      intervalMs: 60_000,
    });
    await watch.start();
    fail = true;
    expect(await watch.current()).toBeUndefined();
    expect(l.warnings).toEqual(['extension source: scan or publish failed']);
    watch.stop();
  });
});
