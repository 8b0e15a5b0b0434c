import type { PropertyWarning } from '@codebay/contracts';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import yauzl from 'yauzl';

/** Where a baked image holds its extensions (the .vsix files and INDEX_FILE); the launcher reads the same path. */
export const BAKED_EXTENSIONS_DIR = '/usr/local/share/codebay/extensions';
/** The index in BAKED_EXTENSIONS_DIR: JSON `BakedIndex`. */
export const INDEX_FILE = 'index.json';
/** The label of a baked image: JSON `{"baked":[{id,version}],"missing":[ids]}` (see `extensionWarnings`). */
export const EXTENSIONS_LABEL = 'codebay.extensions';
/** The property extension warnings are about. */
export const EXTENSIONS_PROPERTY = 'customizations.vscode.extensions';
/** A .vsix larger than this is skipped (bytes). */
export const MAX_VSIX_BYTES = 256 * 1024 * 1024;
/** An `extension/package.json` larger than this (uncompressed, bytes) is skipped. */
export const MAX_MANIFEST_BYTES = 1024 * 1024;
/** At most this many entries are read from one .vsix's central directory looking for the manifest. */
const MAX_ZIP_ENTRIES = 100_000;
/** Ids listed in one warning; the rest are counted. */
const MAX_LISTED = 20;

/** One extension a .vsix holds, as its manifest says. */
export interface VsixManifest {
  /** `publisher.name`, lower-case (extension ids compare case-insensitively). */
  id: string;
  publisher: string;
  name: string;
  version: string;
}

/** An extension chosen from the source: its manifest and the .vsix's absolute path. */
export interface ChosenExtension extends VsixManifest {
  path: string;
}

/** What `resolve` found: chosen extensions (in the wanted order), ids the source lacks, files it skipped and why. */
export interface Resolution {
  found: ChosenExtension[];
  missing: string[];
  skipped: Array<{ file: string; reason: string }>;
}

/** The index a baked image holds (BAKED_EXTENSIONS_DIR/INDEX_FILE): `file` is a name in that folder. */
export interface BakedIndex {
  extensions: Array<{ id: string; version: string; file: string }>;
  /** Wanted ids the source did not have (the build warned about them; the launcher does not look for them elsewhere). */
  missing: string[];
}

/**
 * The extension ids a merged `customizations.vscode.extensions` list asks for, lower-case, in
 * order: blanks and duplicates dropped, a `-publisher.name` entry removes that id listed before
 * it, and .vsix paths (the launcher installs those from the workspace) left out. The same rules
 * as the launcher's `normalizeExtensions` (packages/editor/launcher/helpers.mjs; a test holds
 * them together).
 */
export function wantedExtensionIds(list: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of list) {
    if (typeof raw !== 'string') continue;
    const e = raw.trim();
    if (!e || /\.vsix$/i.test(e)) continue;
    if (e.startsWith('-')) {
      const id = e.slice(1).toLowerCase();
      for (let i = out.length - 1; i >= 0; i--) if (out[i] === id) out.splice(i, 1);
      continue;
    }
    const id = e.toLowerCase();
    if (!out.includes(id)) out.push(id);
  }
  return out;
}

/**
 * Orders two extension versions (`1.2.10` after `1.2.9`; a pre-release `1.2.0-next` before
 * `1.2.0`): negative, 0 or positive. Parts that are not numbers compare as text.
 */
export function compareVersions(a: string, b: string): number {
  const [coreA, preA] = splitVersion(a);
  const [coreB, preB] = splitVersion(b);
  for (let i = 0; i < Math.max(coreA.length, coreB.length); i++) {
    const x = coreA[i] ?? '0';
    const y = coreB[i] ?? '0';
    const order = /^\d+$/.test(x) && /^\d+$/.test(y) ? Number(x) - Number(y) : x.localeCompare(y);
    if (order !== 0) return order;
  }
  if (preA === preB) return 0;
  if (preA === undefined) return 1;
  if (preB === undefined) return -1;
  return preA.localeCompare(preB, undefined, { numeric: true });
}

function splitVersion(v: string): [string[], string | undefined] {
  const dash = v.indexOf('-');
  const core = dash === -1 ? v : v.slice(0, dash);
  return [core.split('.'), dash === -1 ? undefined : v.slice(dash + 1)];
}

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const VERSION = /^\d+(\.\d+)*([-+][0-9A-Za-z.+-]*)?$/;

/**
 * The extension a .vsix holds, from its `extension/package.json` (read from the zip, never from
 * the file's name). Throws an Error naming what is wrong: larger than MAX_VSIX_BYTES, not a zip,
 * no manifest, a manifest over MAX_MANIFEST_BYTES or without a valid publisher, name and version.
 */
export async function readVsixManifest(file: string): Promise<VsixManifest> {
  const size = (await stat(file)).size;
  if (size > MAX_VSIX_BYTES) throw new Error(`larger than ${MAX_VSIX_BYTES / 1024 / 1024} MiB`);
  const zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, strictFileNames: false });
  let text: string;
  try {
    text = await readEntry(zip, 'extension/package.json');
  } finally {
    zip.close();
  }
  let pkg: unknown;
  try {
    pkg = JSON.parse(text);
  } catch {
    throw new Error('extension/package.json is not JSON');
  }
  const { publisher, name, version } = (pkg ?? {}) as Record<string, unknown>;
  if (typeof publisher !== 'string' || !SEGMENT.test(publisher)) throw new Error('extension/package.json has no valid "publisher"');
  if (typeof name !== 'string' || !SEGMENT.test(name)) throw new Error('extension/package.json has no valid "name"');
  if (typeof version !== 'string' || !VERSION.test(version)) throw new Error('extension/package.json has no valid "version"');
  return { id: `${publisher}.${name}`.toLowerCase(), publisher, name, version };
}

/** One entry's text (UTF-8), at most MAX_MANIFEST_BYTES; throws when the zip has no such entry. */
function readEntry(zip: yauzl.ZipFile, wanted: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = 0;
    zip.on('error', reject);
    zip.on('end', () => reject(new Error(`no ${wanted} in it`)));
    zip.on('entry', (entry: yauzl.Entry) => {
      if (++seen > MAX_ZIP_ENTRIES) return reject(new Error(`more than ${MAX_ZIP_ENTRIES} entries before ${wanted}`));
      if (entry.fileName !== wanted) return zip.readEntry();
      if (entry.uncompressedSize > MAX_MANIFEST_BYTES) return reject(new Error(`${wanted} is larger than ${MAX_MANIFEST_BYTES / 1024} KiB`));
      zip.openReadStream(entry, (err, stream) => {
        if (err) return reject(err);
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('error', reject);
        stream.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      });
    });
    zip.readEntry();
  });
}

/**
 * The operator's extension source: a folder of .vsix files (EXTENSION_SOURCE_DIR; only its own
 * entries, not sub-folders). Each file is known by the manifest inside it; what was read is
 * remembered by path, size and modification time, so a build reads only new or changed files.
 */
export class ExtensionSource {
  private readonly known = new Map<string, { size: number; mtimeMs: number; manifest?: VsixManifest; reason?: string }>();

  constructor(readonly dir: string) {}

  /**
   * The .vsix for each wanted id (lower-case, see `wantedExtensionIds`): the highest version the
   * folder holds (equal versions: the first file name in order). Files that cannot be read are
   * skipped with their reason. Throws when the folder cannot be listed.
   */
  async resolve(wanted: readonly string[]): Promise<Resolution> {
    const names = (await readdir(this.dir, { withFileTypes: true }))
      .filter((d) => /\.vsix$/i.test(d.name) && (d.isFile() || d.isSymbolicLink()))
      .map((d) => d.name)
      .sort();
    const best = new Map<string, ChosenExtension>();
    const skipped: Resolution['skipped'] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      const read = await this.read(path);
      if (read.reason !== undefined) {
        skipped.push({ file: name, reason: read.reason });
        continue;
      }
      const m = read.manifest!;
      const current = best.get(m.id);
      if (!current || compareVersions(m.version, current.version) > 0) best.set(m.id, { ...m, path });
    }
    const found = wanted.flatMap((id) => (best.has(id) ? [best.get(id)!] : []));
    return { found, missing: wanted.filter((id) => !best.has(id)), skipped };
  }

  private async read(path: string): Promise<{ manifest?: VsixManifest; reason?: string }> {
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      return { reason: (err as Error).message };
    }
    if (!info.isFile()) return { reason: 'not a file' };
    const cached = this.known.get(path);
    if (cached && cached.size === info.size && cached.mtimeMs === info.mtimeMs) return cached;
    let entry: { size: number; mtimeMs: number; manifest?: VsixManifest; reason?: string };
    try {
      entry = { size: info.size, mtimeMs: info.mtimeMs, manifest: await readVsixManifest(path) };
    } catch (err) {
      entry = { size: info.size, mtimeMs: info.mtimeMs, reason: (err as Error).message };
    }
    this.known.set(path, entry);
    return entry;
  }
}

/** The file name a chosen extension has in a baked image: `<publisher.name>-<version>.vsix` (both checked by `readVsixManifest`). */
export function bakedFileName(e: VsixManifest): string {
  return `${e.id}-${e.version}.vsix`;
}

/** The index and the label value for a baked image of `resolution`. */
export function bakedIndex(resolution: Resolution): BakedIndex {
  return {
    extensions: resolution.found.map((e) => ({ id: e.id, version: e.version, file: bakedFileName(e) })),
    missing: resolution.missing,
  };
}

/**
 * The warning for a baked image's missing extensions, from its EXTENSIONS_LABEL (none without
 * the label, or when nothing is missing): one per property, as every warning on an instance.
 */
export function extensionWarnings(labels: Record<string, string>): PropertyWarning[] {
  const raw = labels[EXTENSIONS_LABEL];
  if (!raw) return [];
  let missing: string[];
  try {
    const parsed = JSON.parse(raw) as { missing?: unknown };
    missing = Array.isArray(parsed.missing) ? parsed.missing.filter((m): m is string => typeof m === 'string') : [];
  } catch {
    return [];
  }
  if (missing.length === 0) return [];
  const listed = missing.slice(0, MAX_LISTED).join(', ') + (missing.length > MAX_LISTED ? ` and ${missing.length - MAX_LISTED} more` : '');
  return [{ property: EXTENSIONS_PROPERTY, message: `${EXTENSIONS_PROPERTY}: ${listed}: not in this deployment’s extension source; not installed` }];
}
