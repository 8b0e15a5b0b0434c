import canonicalizeModule from 'canonicalize';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { posix } from 'node:path';
import type { DevcontainerConfig } from './parse.ts';

const require = createRequire(import.meta.url);
// RFC 8785 JSON canonicalisation; a CommonJS function whose typings declare it as an ES default export.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

/** The Dev Containers CLI every builder runs (one lockfile): part of every build key. */
export const DEVCONTAINER_CLI_VERSION: string = (require('@devcontainers/cli/package.json') as { version: string }).version;

/** A workspace entry as the build sees it: regular files by content, links by target. */
export interface WorkspaceFile {
  /** Normalised path inside the workspace (`a/b`, no leading `./`). */
  path: string;
  kind: 'file' | 'symlink' | 'hardlink' | 'dir';
  /** sha256 of a regular file's bytes. */
  sha256?: string;
  /** Executable bits matter to a build (feature install.sh); nothing else of the mode does. */
  executable?: boolean;
  linkTarget?: string;
}

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

function isUnder(path: string, dir: string): boolean {
  return dir === '' || dir === '.' || path === dir || path.startsWith(`${dir}/`);
}

/** The workspace folders and files a build of `config` reads: its build context, Dockerfile and local features. */
export function buildInputs(config: DevcontainerConfig, configPath: string): { dirs: string[]; files: string[] } {
  const configDir = posix.dirname(configPath);
  const rel = (p: string) => {
    const n = posix.normalize(posix.join(configDir, p)).replace(/\/$/, '');
    return n === '.' ? '' : n;
  };
  const dirs: string[] = [];
  const files: string[] = [];
  const build = (config.build ?? {}) as { dockerfile?: unknown; context?: unknown };
  const dockerfile = typeof build.dockerfile === 'string' ? build.dockerfile : typeof config.dockerFile === 'string' ? config.dockerFile : undefined;
  if (dockerfile) {
    const context = typeof build.context === 'string' ? build.context : typeof config.context === 'string' ? config.context : '.';
    dirs.push(rel(context));
    files.push(rel(dockerfile));
  }
  const features = config.features && typeof config.features === 'object' ? Object.keys(config.features) : [];
  for (const ref of features) if (ref.startsWith('./') || ref.startsWith('../')) dirs.push(rel(ref));
  return { dirs, files };
}

/**
 * The build key: sha256 of the normalised config (comments, order and spacing do not
 * count), the content of every workspace file the build reads (context, Dockerfile, local
 * features; by content and executable bit, links by target), the feature references with
 * their options (in the config) and the Dev Containers CLI version.
 */
export function buildKey(input: BuildKeyInput): BuildKey {
  const config = canonicalize(input.config) ?? '{}';
  const inputs: string[] = [];
  const files: unknown[] = [];
  if (input.configPath && input.files) {
    const { dirs, files: named } = buildInputs(input.config, input.configPath);
    const wanted = (path: string) => named.includes(path) || dirs.some((d) => isUnder(path, d));
    for (const f of [...input.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
      if (f.kind === 'dir' || !wanted(f.path)) continue;
      inputs.push(f.path);
      files.push([f.path, f.kind, f.sha256 ?? null, f.executable ?? false, f.linkTarget ?? null]);
    }
  }
  const material = canonicalize({ v: 1, cli: input.cliVersion ?? DEVCONTAINER_CLI_VERSION, config, files })!;
  return { key: sha256(material), family: sha256(config).slice(0, 16), inputs };
}
