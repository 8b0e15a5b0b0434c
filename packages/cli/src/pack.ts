import ignore from 'ignore';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as tarCreate } from 'tar';
import { UsageError } from './errors.ts';

/** Never uploaded, whatever the ignore files say. */
const ALWAYS_EXCLUDED = ['.git/'];

export interface PackedWorkspace {
  file: string;
  bytes: number;
  entries: number;
  excludedBy: string[];
}

/**
 * Packs a workspace folder as tar.gz the way the gateway wants it (paths relative to the
 * folder), leaving out what its `.gitignore` and `.dockerignore` (at the folder's root,
 * gitignore syntax) exclude, and `.git/`.
 */
export async function packWorkspace(dir: string): Promise<PackedWorkspace> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--workspace-dir ${dir} is not a folder`);
  if (!existsSync(join(dir, '.devcontainer', 'devcontainer.json')) && !existsSync(join(dir, '.devcontainer.json'))) {
    throw new UsageError(`${dir} has no .devcontainer/devcontainer.json or .devcontainer.json`);
  }
  const rules = ignore().add(ALWAYS_EXCLUDED);
  const excludedBy: string[] = [];
  for (const name of ['.gitignore', '.dockerignore']) {
    const path = join(dir, name);
    if (existsSync(path)) {
      rules.add(readFileSync(path, 'utf8'));
      excludedBy.push(name);
    }
  }
  const file = join(mkdtempSync(join(tmpdir(), 'codebay-cli-')), 'workspace.tar.gz');
  let entries = 0;
  await tarCreate(
    {
      gzip: true,
      file,
      cwd: dir,
      portable: true,
      filter: (path, stat) => {
        const rel = path.replace(/^\.\/?/, '');
        if (rel === '') return true;
        const keep = !rules.ignores('isDirectory' in stat && stat.isDirectory() ? `${rel}/` : rel);
        if (keep) entries++;
        return keep;
      },
    },
    ['.'],
  );
  return { file, bytes: statSync(file).size, entries, excludedBy };
}
