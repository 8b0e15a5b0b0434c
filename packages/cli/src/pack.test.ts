import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { list } from 'tar';
import { describe, expect, it } from 'vitest';
import { packWorkspace } from './pack.ts';

function workspace(): string {
  const dir = mkdtempSync(join(tmpdir(), 'codebay-pack-'));
  mkdirSync(join(dir, '.devcontainer'));
  writeFileSync(join(dir, '.devcontainer/devcontainer.json'), '{}');
  for (const f of ['src/a.ts', 'src/gen/b.js', 'node_modules/x/i.js', '.git/HEAD', 'app.log', 'dist/out']) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), f);
  }
  return dir;
}

async function entries(file: string): Promise<string[]> {
  const out: string[] = [];
  await list({ file, onReadEntry: (e) => void out.push(e.path) });
  return out.map((p) => p.replace(/^\.\//, '')).filter((p) => p && !p.endsWith('/'));
}

describe('packWorkspace', () => {
  it('leaves out what .gitignore and .dockerignore list, and .git always', async () => {
    const dir = workspace();
    writeFileSync(join(dir, '.gitignore'), 'node_modules/\n*.log\n');
    writeFileSync(join(dir, '.dockerignore'), 'dist\nsrc/gen/\n');
    const packed = await packWorkspace(dir);
    expect((await entries(packed.file)).sort()).toEqual(['.devcontainer/devcontainer.json', '.dockerignore', '.gitignore', 'src/a.ts']);
    expect(packed.excludedBy).toEqual(['.gitignore', '.dockerignore']);
  });

  it('packs everything but .git without ignore files', async () => {
    const packed = await packWorkspace(workspace());
    expect((await entries(packed.file)).sort()).toEqual([
      '.devcontainer/devcontainer.json',
      'app.log',
      'dist/out',
      'node_modules/x/i.js',
      'src/a.ts',
      'src/gen/b.js',
    ]);
  });

  it('refuses a folder without a devcontainer config', async () => {
    await expect(packWorkspace(mkdtempSync(join(tmpdir(), 'codebay-pack-')))).rejects.toThrow(/no .devcontainer\/devcontainer.json/);
  });
});
