import canonicalizeModule from 'canonicalize';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import { buildPaths } from './build-paths.ts';
import type { DevcontainerConfig } from './parse.ts';
import { WorkspaceTree, type WorkspaceFile } from './workspace-tree.ts';

export type { WorkspaceFile } from './workspace-tree.ts';

const require = createRequire(import.meta.url);
// RFC 8785 JSON canonicalisation; a CommonJS function whose typings declare it as an ES default export.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** The Dev Containers CLI every builder runs (one lockfile): part of every build key. */
export const DEVCONTAINER_CLI_VERSION: string = (require('@devcontainers/cli/package.json') as { version: string }).version;

export interface BuildKeyInput {
  config: DevcontainerConfig;
  /** Where the config sits in the workspace (`.devcontainer/devcontainer.json`); absent for a bare devcontainer.json. */
  configPath?: string;
  files?: WorkspaceFile[];
  cliVersion?: string;
}

export interface BuildKey {
  /** sha256 over everything the build reads: same key, same image. */
  key: string;
  /** sha256 of the config alone (first 16 hex): builds of one config share layers (`--cache-from`). */
  family: string;
  /** The workspace paths the key covers (for the build log: what a change must touch to rebuild). */
  inputs: string[];
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * The workspace folders and files a build of `config` names (see {@link buildPaths}): its
 * build contexts, Dockerfiles and local features, as lexical workspace paths (`''` is the
 * root). Paths that leave the workspace are left out: {@link checkBuildPaths} refuses them.
 * Links are not followed here; {@link buildKey} follows them.
 */
export function buildInputs(config: DevcontainerConfig, configPath: string): { dirs: string[]; files: string[] } {
  const dirs: string[] = [];
  const files: string[] = [];
  let localFeatures = false;
  for (const p of buildPaths(config, configPath)) {
    if (p.property.startsWith('features')) localFeatures = true;
    if (p.path === undefined) continue;
    const list = p.kind === 'dir' ? dirs : files;
    if (!list.includes(p.path)) list.push(p.path);
  }
  // A local feature's own `dependsOn` can name further local features, which the CLI installs
  // too (always from `.devcontainer/`): with any local feature, the whole config folder counts.
  const configDir = posix.dirname(configPath) === '.' ? '' : posix.dirname(configPath);
  if (localFeatures && !dirs.includes(configDir)) dirs.push(configDir);
  return { dirs, files };
}

/** The features lockfile the CLI reads beside the config (`devcontainer-lock.json`, `.devcontainer-lock.json` beside `.devcontainer.json`). */
function lockfileOf(configPath: string): string {
  const dir = posix.dirname(configPath);
  const name = posix.basename(configPath).startsWith('.') ? '.devcontainer-lock.json' : 'devcontainer-lock.json';
  return dir === '.' ? name : `${dir}/${name}`;
}

/**
 * The entries a build really reads, links followed ({@link WorkspaceTree.reach}): the named
 * Dockerfiles and folders (context, local features) and whatever their links name, plus the
 * Dockerfile's `<Dockerfile>.dockerignore`, named and resolved (BuildKit reads it beside the
 * Dockerfile, wherever the context is) and the features lockfile. Paths that do not resolve
 * inside add nothing: {@link checkBuildPaths} and {@link WorkspaceTree.problems} refuse them.
 */
function readClosure(tree: WorkspaceTree, config: DevcontainerConfig, configPath: string): string[] {
  const { dirs, files } = buildInputs(config, configPath);
  const paths = [...files, ...dirs, lockfileOf(configPath)];
  for (const file of files) {
    paths.push(`${file}.dockerignore`);
    const r = tree.resolve(file);
    if (r.ok && r.kind === 'file' && r.path !== file) paths.push(`${r.path}.dockerignore`);
  }
  return tree.reach(paths);
}

/**
 * The build key: sha256 of the normalised config (comments, order and spacing do not
 * count), the content of every workspace entry the build reads with links followed (see
 * `readClosure`: Dockerfile, context, local features, what their links name; files by
 * content and executable bit, links by target), the feature references with their options
 * (in the config) and the Dev Containers CLI version. Computed alike from the archive's entry
 * list and from the unpacked folder, where hard links are plain files.
 */
export function buildKey(input: BuildKeyInput): BuildKey {
  const config = canonicalize(input.config) ?? '{}';
  const inputs: string[] = [];
  const files: unknown[] = [];
  if (input.configPath && input.files) {
    const tree = new WorkspaceTree(input.files);
    for (const path of [...readClosure(tree, input.config, input.configPath)].sort()) {
      const f = tree.entry(path)!;
      if (f.kind === 'dir') continue;
      inputs.push(f.path);
      files.push([f.path, f.kind, f.sha256 ?? null, f.executable ?? false, f.linkTarget ?? null]);
    }
  }
  const material = canonicalize({ v: 1, cli: input.cliVersion ?? DEVCONTAINER_CLI_VERSION, config, files })!;
  return { key: sha256(material), family: sha256(config).slice(0, 16), inputs };
}
