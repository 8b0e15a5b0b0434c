import { PermanentError } from '@codebay/contracts';
import type { WorkspaceFile } from '@codebay/devcontainer';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink, realpath } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/**
 * Lists an unpacked workspace the way `inspectWorkspaceArchive` (@codebay/platform) lists the
 * archive it came from, so `buildKey` and `WorkspaceTree` give the same answers on both:
 * `/`-separated relative paths (unsorted), folders as `dir`, regular files with the sha256
 * of their bytes (streamed) and their executable bit (any x bit), symlinks with their
 * target as written. Walks with lstat and never follows a link; a hard link is the regular
 * file it is on disk.
 *
 * Throws `PermanentError` for anything else in the folder (a socket, fifo or device: an
 * unpacked workspace never holds one); fs errors (ENOENT, EACCES) pass through.
 */
export async function scanWorkspace(dir: string): Promise<WorkspaceFile[]> {
  const out: WorkspaceFile[] = [];
  const walk = async (folder: string, prefix: string): Promise<void> => {
    for (const name of await readdir(folder)) {
      const abs = join(folder, name);
      const path = prefix === '' ? name : `${prefix}/${name}`;
      const st = await lstat(abs);
      if (st.isSymbolicLink()) out.push({ path, kind: 'symlink', linkTarget: await readlink(abs) });
      else if (st.isFile()) out.push({ path, kind: 'file', sha256: await sha256Of(abs), executable: (st.mode & 0o111) !== 0 });
      else if (st.isDirectory()) {
        out.push({ path, kind: 'dir' });
        await walk(abs, path);
      } else throw new PermanentError(`workspace entry "${path}" is neither a file, a folder nor a symbolic link`);
    }
  };
  await walk(dir, '');
  return out;
}

/**
 * The builder's second look at a path the build reads, on disk this time: resolves
 * `relPath` against `dir` as the Dev Containers CLI does (`path.resolve`), then lets the
 * kernel follow every link (`fs.realpath`), and checks the result is `dir` or inside it.
 * Returns the real absolute path.
 *
 * Throws `PermanentError` when it leads outside the workspace, does not exist or loops (the
 * message names `what`, e.g. `build.dockerfile`, and `relPath`, never the host path it
 * reached: it ends up in the tenant's build log); other fs errors (EACCES) pass through.
 */
export async function assertInside(dir: string, relPath: string, what = 'path'): Promise<string> {
  const root = await realpath(dir);
  let real: string;
  try {
    real = await realpath(resolve(root, relPath));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new PermanentError(`${what} "${relPath}" does not exist in the workspace`);
    if (code === 'ELOOP') throw new PermanentError(`${what} "${relPath}" goes through too many symbolic links`);
    throw err;
  }
  const inside = real === root || real.startsWith(root.endsWith(sep) ? root : `${root}${sep}`);
  if (!inside) throw new PermanentError(`${what} "${relPath}" leads outside the workspace`);
  return real;
}
