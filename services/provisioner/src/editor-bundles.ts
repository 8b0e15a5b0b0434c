import { PermanentError } from '@codebay/contracts';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface EditorBundle {
  dir: string;
  vscode: string;
  codeServer: string;
}

/** The editor bundles on this machine, found by their `bundle.json`. */
export class EditorBundles {
  constructor(private readonly root: string) {}

  async list(): Promise<EditorBundle[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const out: EditorBundle[] = [];
    for (const name of names) {
      try {
        const meta = JSON.parse(await readFile(join(this.root, name, 'bundle.json'), 'utf8')) as { vscode: string; codeServer: string };
        out.push({ dir: join(this.root, name), vscode: meta.vscode, codeServer: meta.codeServer });
      } catch {
        // not a finished bundle (a build in progress, or something else)
      }
    }
    return out;
  }

  async forVscode(version: string): Promise<EditorBundle> {
    const bundles = await this.list();
    const match = bundles.find((b) => b.vscode === version);
    if (!match) {
      const have = bundles.map((b) => b.vscode).join(', ') || 'none';
      throw new PermanentError(`no editor bundle for VS Code ${version} under ${this.root} (have: ${have})`);
    }
    return match;
  }
}
