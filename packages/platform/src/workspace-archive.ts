import { InputError, PayloadTooLargeError, listProblems } from '@codebay/contracts';
import type { WorkspaceFile } from '@codebay/devcontainer';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import { Parser, type ReadEntry } from 'tar';

export interface WorkspaceLimits {
  /** Sum of the sizes of all entries once unpacked. */
  maxUnpackedBytes: number;
  maxEntries: number;
}

export interface WorkspaceSummary {
  entries: number;
  unpackedBytes: number;
  /** Path of the devcontainer config inside the archive (normalised). */
  configPath: string;
  /** Its text. */
  configText: string;
  /**
   * Every entry (last one wins for a repeated path), files with the sha256 of their bytes:
   * the build key's input, and the layout `WorkspaceTree` (@codebay/devcontainer) checks.
   */
  files: ArchiveFile[];
}

/** One entry as unpacked: what the builder's disk scan produces for the unpacked folder too. */
export type ArchiveFile = WorkspaceFile;

const KINDS: Record<string, ArchiveFile['kind']> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'dir',
  SymbolicLink: 'symlink',
  Link: 'file',
};

const CONFIG_PATHS = ['.devcontainer/devcontainer.json', '.devcontainer.json'];
const ALLOWED_TYPES = new Set(['File', 'OldFile', 'ContiguousFile', 'Directory', 'SymbolicLink', 'Link']);
const MAX_CONFIG_BYTES = 1024 * 1024;

/** `./a/b` → `a/b`; undefined when the path is absolute or climbs out with `..`. */
export function normaliseEntryPath(raw: string): string | undefined {
  if (raw.startsWith('/') || /^[a-zA-Z]:[\\/]/.test(raw)) return undefined;
  const segments = raw.split('/');
  if (segments.includes('..')) return undefined;
  const norm = posix
    .normalize(raw)
    .replace(/^(\.\/)+/, '')
    .replace(/\/$/, '');
  return norm === '.' ? '' : norm;
}

/** True when a link target, seen from `entryPath`, stays inside the archive root. */
export function linkStaysInside(entryPath: string, linkpath: string, hard: boolean): boolean {
  if (linkpath.startsWith('/')) return false;
  const resolved = hard ? posix.normalize(linkpath) : posix.normalize(posix.join(posix.dirname(entryPath), linkpath));
  return !(resolved === '..' || resolved.startsWith('../'));
}

/**
 * Reads a workspace tar.gz once, streaming, and refuses what must never be unpacked:
 * entries outside the root (absolute, `..`), links pointing outside, hard links to anything
 * but an earlier file entry, devices and fifos, too many entries, too many bytes once
 * unpacked (a gzip bomb stops at the limit). Returns the devcontainer config found in it
 * and every entry, files hashed on the way.
 *
 * A hard link is recorded as a regular file with its target's sha256 and executable bit:
 * unpacked (tar unlinks a multiply-linked file before replacing it) it is the target's
 * inode as it was then, so a key computed from this list equals one computed from the
 * unpacked folder. Layout checks over the whole list (symlink chains, entries under links)
 * are the caller's: `WorkspaceTree` in @codebay/devcontainer.
 *
 * Every unsafe entry is reported, not only the first: the archive is read to its end and
 * `unsafe_archive` names them all (the first MAX_LISTED_PROBLEMS in the message and in
 * `details.problems`, `details.count` all of them). Limits (413), an unreadable archive and a
 * config that is not a regular file stop the read at once.
 *
 * Throws `InputError` (`unsafe_archive`, `invalid_archive`, `invalid_workspace`,
 * `missing_devcontainer`; 400) or `PayloadTooLargeError` (413).
 */
export async function inspectWorkspaceArchive(file: string, limits: WorkspaceLimits): Promise<WorkspaceSummary> {
  let entries = 0;
  let unpackedBytes = 0;
  const configs = new Map<string, string>();
  const files = new Map<string, ArchiveFile>();
  // Hard links and the file entry whose bytes they share (its sha256 is known once its data ends).
  const hardLinks: Array<{ file: ArchiveFile; source: ArchiveFile }> = [];
  const sourceOf = new Map<ArchiveFile, ArchiveFile>();
  // Unsafe entries, each in one sentence; the read goes on to find them all.
  const unsafe: string[] = [];

  await new Promise<void>((resolve, reject) => {
    const input = createReadStream(file);
    let failed = false;
    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      input.destroy();
      parser.abort(err);
      reject(err);
    };
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry: ReadEntry) => {
        if (failed) return entry.resume();
        entries += 1;
        unpackedBytes += entry.size ?? 0;
        const path = normaliseEntryPath(entry.path);
        if (entries > limits.maxEntries) return fail(new PayloadTooLargeError(`workspace has more than ${limits.maxEntries} entries`));
        if (unpackedBytes > limits.maxUnpackedBytes) return fail(new PayloadTooLargeError(`workspace unpacks to more than ${limits.maxUnpackedBytes} bytes`));
        const refuse = (problem: string) => {
          unsafe.push(problem);
          entry.resume();
        };
        if (path === undefined) return refuse(`workspace entry "${entry.path}" would land outside the workspace`);
        if (!ALLOWED_TYPES.has(entry.type)) return refuse(`workspace entry "${entry.path}" is a ${entry.type}, which is not allowed`);
        if ((entry.type === 'SymbolicLink' || entry.type === 'Link') && !linkStaysInside(path, entry.linkpath ?? '', entry.type === 'Link'))
          return refuse(`workspace link "${entry.path}" points outside the workspace`);
        const kind = KINDS[entry.type]!;
        const file: ArchiveFile = { path, kind };
        if (kind === 'symlink') file.linkTarget = entry.linkpath ?? '';
        if (kind === 'file') file.executable = ((entry.mode ?? 0) & 0o111) !== 0;
        if (CONFIG_PATHS.includes(path) && kind !== 'dir' && (kind !== 'file' || entry.type === 'Link'))
          return fail(new InputError('invalid_workspace', `${path} must be a regular file`));
        if (entry.type === 'Link') {
          const target = normaliseEntryPath(entry.linkpath ?? '');
          const earlier = target === undefined || target === path ? undefined : files.get(target);
          if (earlier?.kind !== 'file') return refuse(`workspace hard link "${entry.path}" -> "${entry.linkpath ?? ''}" does not name an earlier file entry`);
          const source = sourceOf.get(earlier) ?? earlier;
          file.executable = earlier.executable;
          sourceOf.set(file, source);
          hardLinks.push({ file, source });
        }
        if (path !== '') files.set(path, file);
        if (CONFIG_PATHS.includes(path) && kind === 'file' && (entry.size ?? 0) > MAX_CONFIG_BYTES)
          return fail(new PayloadTooLargeError(`${path} is larger than ${MAX_CONFIG_BYTES} bytes`));
        if (kind !== 'file' || entry.type === 'Link') return entry.resume();
        const hash = createHash('sha256');
        const keep = CONFIG_PATHS.includes(path) ? ([] as Buffer[]) : undefined;
        entry.on('data', (c: Buffer) => {
          hash.update(c);
          keep?.push(c);
        });
        entry.on('end', () => {
          file.sha256 = hash.digest('hex');
          if (keep) configs.set(path, Buffer.concat(keep).toString('utf8'));
        });
      },
    });
    parser.on('error', (err: Error) => fail(new InputError('invalid_archive', `workspace is not a readable tar.gz: ${err.message}`)));
    parser.on('warn', (code: string, message: string | Error) => {
      if (code === 'TAR_ENTRY_INVALID' || code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ABORT')
        fail(new InputError('invalid_archive', `workspace is not a readable tar.gz: ${String(message)}`));
    });
    parser.on('end', () => {
      if (!failed) resolve();
    });
    input.on('error', fail);
    input.pipe(parser);
  });

  if (unsafe.length > 0) {
    const { message, listed, count } = listProblems(unsafe, 'unsafe workspace entries');
    throw new InputError('unsafe_archive', message, { problems: listed, count });
  }
  for (const { file, source } of hardLinks) file.sha256 = source.sha256;
  if (entries === 0) throw new InputError('invalid_archive', 'workspace archive is empty or not a tar.gz');
  const configPath = CONFIG_PATHS.find((p) => configs.has(p));
  if (!configPath) throw new InputError('missing_devcontainer', 'workspace must contain .devcontainer/devcontainer.json or .devcontainer.json');
  return { entries, unpackedBytes, configPath, configText: configs.get(configPath)!, files: [...files.values()] };
}
