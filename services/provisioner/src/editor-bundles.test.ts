import { PermanentError, type EditorVersion } from '@codebay/contracts';
import { createLogger } from '@codebay/platform';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EditorBundles, EditorVersionsPublisher } from './editor-bundles.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** An editor root with a finished bundle per [folder, vscode, codeServer], and one build in progress. */
function root(bundles: Array<[string, string, string]>): string {
  const dir = mkdtempSync(join(tmpdir(), 'codebay-bundles-'));
  dirs.push(dir);
  for (const [name, vscode, codeServer] of bundles) {
    mkdirSync(join(dir, name));
    writeFileSync(join(dir, name, 'bundle.json'), JSON.stringify({ codeServer, vscode, node: '24.0.0' }));
  }
  mkdirSync(join(dir, '.code-server-9.9.9.tmp.abc'));
  return dir;
}

describe('EditorBundles', () => {
  it('lists finished bundles as versions, newest VS Code first', async () => {
    const bundles = new EditorBundles(
      root([
        ['code-server-4.100.3', '1.100.3', '4.100.3'],
        ['code-server-4.139.1', '1.139.1', '4.139.1'],
      ]),
    );
    expect(await bundles.versions()).toEqual([
      { vscode_version: '1.139.1', code_server_version: '4.139.1' },
      { vscode_version: '1.100.3', code_server_version: '4.100.3' },
    ]);
    expect((await bundles.forVscode('1.100.3')).codeServer).toBe('4.100.3');
    await expect(bundles.forVscode('1.99.0')).rejects.toThrow(PermanentError);
    await expect(bundles.forVscode('1.99.0')).rejects.toThrow('have: ');
  });

  it('has no versions when the root does not exist', async () => {
    expect(await new EditorBundles('/nonexistent/codebay-editor-root').versions()).toEqual([]);
  });
});

describe('EditorVersionsPublisher', () => {
  it('publishes the bundles at start with a TTL of three rounds', async () => {
    const published: Array<{ versions: EditorVersion[]; ttl: number }> = [];
    const publisher = new EditorVersionsPublisher({
      bundles: new EditorBundles(root([['code-server-4.139.1', '1.139.1', '4.139.1']])),
      board: {
        publish: async (versions, by, ttl) => {
          published.push({ versions, ttl });
          return { versions, publisher: by, published_at: new Date().toISOString() };
        },
      },
      logger: createLogger('test', 'silent'),
      intervalMs: 30_000,
    });
    try {
      expect(await publisher.start()).toEqual([{ vscode_version: '1.139.1', code_server_version: '4.139.1' }]);
      expect(published).toEqual([{ versions: [{ vscode_version: '1.139.1', code_server_version: '4.139.1' }], ttl: 90 }]);
    } finally {
      publisher.stop();
    }
  });
});
