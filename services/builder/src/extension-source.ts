import { NO_EXTENSION_SOURCE, type PropertyWarning } from '@codebay/contracts';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import yauzl from 'yauzl';

/** Where a baked image holds its extensions (the .vsix files and INDEX_FILE); the launcher reads the same path. */
export const BAKED_EXTENSIONS_DIR = '/usr/local/share/codebay/extensions';
/** The index in BAKED_EXTENSIONS_DIR: JSON `BakedIndex`. */
export const INDEX_FILE = 'index.json';
/**
 * The label of a baked image: JSON `{"baked":[{id,version}],"missing":[ids],"source":fingerprint}`
 * (see `extensionWarnings`, `bakedFrom`).
 */
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

/** An extension chosen from the source: its manifest, the .vsix's absolute path and the sha256 of its content (hex). */
export interface ChosenExtension extends VsixManifest {
  path: string;
  sha256: string;
}

/** What `scan` found: the extension chosen for each id, files skipped and why, and the source's fingerprint. */
export interface SourceScan {
  chosen: Map<string, ChosenExtension>;
  skipped: Array<{ file: string; reason: string }>;
  /** See `sourceFingerprint`. */
  fingerprint: string;
}

/** What `resolve` found: chosen extensions (in the wanted order), ids the source lacks, files it skipped and why, and the fingerprint of the source they came from. */
export interface Resolution {
  found: ChosenExtension[];
  missing: string[];
  skipped: Array<{ file: string; reason: string }>;
  fingerprint: string;
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
 * The fingerprint of an extension source: sha256 (hex) over the extension chosen for each id —
 * `<id>@<version> <sha256 of the file>` lines, sorted by id. Exactly what a build can bake: an
 * older version added beside a newer one, a renamed file, a file that cannot be read or a copy
 * with another modification time changes nothing; a new id, a new highest version, or new bytes
 * under the same version change it. The same folder content gives the same fingerprint on every
 * builder.
 */
export function sourceFingerprint(chosen: Iterable<Pick<ChosenExtension, 'id' | 'version' | 'sha256'>>): string {
  const lines = [...chosen].map((e) => `${e.id}@${e.version} ${e.sha256}\n`).sort();
  return createHash('sha256')
    .update(`codebay extension source v1\n${lines.join('')}`)
    .digest('hex');
}

interface KnownFile {
  /** What the file was known by when read: size, inode, modification and change times. */
  stamp: string;
  manifest?: VsixManifest;
  sha256?: string;
  reason?: string;
}

/**
 * The operator's extension source: a folder of .vsix files (EXTENSION_SOURCE_DIR; only its own
 * entries, not sub-folders). Each file is known by the manifest inside it; what was read (the
 * manifest and the sha256 of the content) is remembered by path, size, inode, modification and change time, so
 * a scan lists the folder and stats each file, and reads only new or changed files.
 */
export class ExtensionSource {
  private readonly known = new Map<string, KnownFile>();

  constructor(readonly dir: string) {}

  /**
   * The folder now: the highest version of each id it holds (equal versions: the first file name
   * in order), the files skipped with their reason, and the fingerprint (`sourceFingerprint`).
   * Throws when the folder cannot be listed.
   */
  async scan(): Promise<SourceScan> {
    const names = (await readdir(this.dir, { withFileTypes: true }))
      .filter((d) => /\.vsix$/i.test(d.name) && (d.isFile() || d.isSymbolicLink()))
      .map((d) => d.name)
      .sort();
    const chosen = new Map<string, ChosenExtension>();
    const skipped: SourceScan['skipped'] = [];
    const seen = new Set<string>();
    for (const name of names) {
      const path = join(this.dir, name);
      seen.add(path);
      const read = await this.read(path);
      if (read.reason !== undefined) {
        skipped.push({ file: name, reason: read.reason });
        continue;
      }
      const m = read.manifest!;
      const current = chosen.get(m.id);
      if (!current || compareVersions(m.version, current.version) > 0) chosen.set(m.id, { ...m, path, sha256: read.sha256! });
    }
    for (const path of this.known.keys()) if (!seen.has(path)) this.known.delete(path);
    return { chosen, skipped, fingerprint: sourceFingerprint(chosen.values()) };
  }

  /**
   * The .vsix for each wanted id (lower-case, see `wantedExtensionIds`) from a fresh `scan`, in
   * the wanted order, the ids the folder lacks, the files skipped, and the scan's fingerprint.
   * Throws when the folder cannot be listed.
   */
  async resolve(wanted: readonly string[]): Promise<Resolution> {
    const { chosen, skipped, fingerprint } = await this.scan();
    const found = wanted.flatMap((id) => (chosen.has(id) ? [chosen.get(id)!] : []));
    return { found, missing: wanted.filter((id) => !chosen.has(id)), skipped, fingerprint };
  }

  private async read(path: string): Promise<KnownFile> {
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      return { stamp: '', reason: (err as Error).message };
    }
    const stamp = `${info.size}:${info.ino}:${info.mtimeMs}:${info.ctimeMs}`;
    if (!info.isFile()) return { stamp, reason: 'not a file' };
    const cached = this.known.get(path);
    if (cached?.stamp === stamp) return cached;
    let entry: KnownFile;
    try {
      entry = { stamp, manifest: await readVsixManifest(path), sha256: await sha256File(path) };
    } catch (err) {
      entry = { stamp, reason: (err as Error).message };
    }
    this.known.set(path, entry);
    return entry;
  }
}

/** The sha256 (hex) of a file's content, streamed. */
function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
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
 * The extension source an image's extensions came from, for its build cache record
 * (`BuiltImage.extensionSource`): null when `wanted` (the ids its configuration asks for,
 * `wantedExtensionIds`) is empty, the fingerprint in its EXTENSIONS_LABEL when it was baked, and
 * NO_EXTENSION_SOURCE when it was not (built without a source). Undefined for a label written
 * before codebay recorded the source.
 */
export function bakedFrom(labels: Record<string, string>, wanted: readonly string[]): string | null | undefined {
  if (wanted.length === 0) return null;
  const raw = labels[EXTENSIONS_LABEL];
  if (!raw) return NO_EXTENSION_SOURCE;
  try {
    const { source } = JSON.parse(raw) as { source?: unknown };
    return typeof source === 'string' ? source : undefined;
  } catch {
    return undefined;
  }
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
