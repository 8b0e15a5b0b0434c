import { UnprocessableError } from '@codebay/contracts';
import { posix } from 'node:path';
import type { DevcontainerConfig } from './parse.ts';
import type { WorkspaceTree } from './workspace-tree.ts';

/** A workspace path a Dockerfile build or a local feature reads, as the config names it. */
export interface BuildPath {
  /** The config property: `build.dockerfile`, `dockerFile`, `build.context`, `context` or `features["./x"]`. */
  property: string;
  /** Its value as written; undefined for a context left to its default (the Dockerfile's folder). */
  value: string | undefined;
  /** A Dockerfile is read as a file; a build context or a local feature as a folder. */
  kind: 'file' | 'dir';
  /**
   * The workspace path the CLI makes of it before any link is followed: joined to the
   * config's folder and normalised lexically (its `path.resolve`); `''` is the root.
   * Undefined when the value is absolute or climbs above the workspace root.
   */
  path: string | undefined;
}

/** `a/b/../c` from the config's folder → `a/c`; undefined when absolute or above the root. */
function lexical(configDir: string, value: string): string | undefined {
  if (value.startsWith('/')) return undefined;
  const norm = posix.normalize(posix.join(configDir, value)).replace(/\/$/, '');
  if (norm === '..' || norm.startsWith('../')) return undefined;
  return norm === '.' ? '' : norm;
}

const folderOf = (path: string | undefined) => (path === undefined ? undefined : posix.dirname(path) === '.' ? '' : posix.dirname(path));

/**
 * Every workspace path a build of `config` reads, relative to the config's folder the way
 * the Dev Containers CLI 0.89 resolves them (`path.resolve(dirname(configPath), value)`):
 * - the Dockerfile (`build.dockerfile`, or legacy `dockerFile`, which the CLI prefers);
 * - its build context (`build.context`, legacy `context`); left out, the CLI takes the
 *   Dockerfile's folder (not the config's, whatever the spec's default of `.` suggests);
 * - local features: `features` keys starting with `./`, `../` (or `/`, which the CLI also
 *   reads as a path).
 * When a config holds both the legacy and the `build` form, both are listed: whichever the
 * CLI takes is covered. Values that are not strings are skipped (the schema refuses them).
 */
export function buildPaths(config: DevcontainerConfig, configPath: string): BuildPath[] {
  const configDir = posix.dirname(configPath);
  const out: BuildPath[] = [];
  const dockerfileBuild = (dockerfile: unknown, context: unknown, prefix: string, dockerfileName: string) => {
    if (typeof dockerfile !== 'string') return;
    const path = lexical(configDir, dockerfile);
    out.push({ property: `${prefix}${dockerfileName}`, value: dockerfile, kind: 'file', path });
    if (typeof context === 'string') out.push({ property: `${prefix}context`, value: context, kind: 'dir', path: lexical(configDir, context) });
    else out.push({ property: `${prefix}context`, value: undefined, kind: 'dir', path: folderOf(path) });
  };
  dockerfileBuild(config.dockerFile, config.context, '', 'dockerFile');
  const build = config.build !== null && typeof config.build === 'object' ? (config.build as Record<string, unknown>) : {};
  dockerfileBuild(build.dockerfile, build.context, 'build.', 'dockerfile');
  const features = config.features !== null && typeof config.features === 'object' && !Array.isArray(config.features) ? Object.keys(config.features) : [];
  for (const ref of features) {
    if (ref.startsWith('./') || ref.startsWith('../') || ref.startsWith('/'))
      out.push({ property: `features["${ref}"]`, value: ref, kind: 'dir', path: lexical(configDir, ref) });
  }
  return out;
}

/**
 * Refuses a workspace whose build would read outside it, or read something other than what
 * codebay checked and hashed: every path of {@link buildPaths} must resolve inside the
 * workspace with symlinks followed ({@link WorkspaceTree.resolve}), the Dockerfile to a
 * file, the context and local features to folders; the config file and every folder on
 * its path (`.devcontainer`) must be real, not symlinks (else the gateway checks one file
 * and the CLI builds another).
 *
 * Throws `UnprocessableError('unsafe_path')` (422) listing every problem in
 * `details.problems`, the first one as message, e.g.
 * `.devcontainer/devcontainer.json: build.context "../../../../artifacts" leaves the workspace`.
 */
export function checkBuildPaths(config: DevcontainerConfig, configPath: string, tree: WorkspaceTree): void {
  const problems: string[] = [];
  const parts = configPath.split('/');
  for (let i = 1; i <= parts.length; i++) {
    const path = parts.slice(0, i).join('/');
    const kind = tree.entry(path)?.kind;
    const isConfig = i === parts.length;
    if (kind === 'symlink') problems.push(`"${path}" is a symbolic link; the config and the folders it sits in must be real`);
    else if (isConfig && kind !== 'file') problems.push(`"${path}" must be a regular file in the workspace`);
    else if (!isConfig && kind !== undefined && kind !== 'dir') problems.push(`"${path}" must be a folder`);
  }
  for (const p of buildPaths(config, configPath)) {
    // A default context is the Dockerfile's folder: the Dockerfile's own check resolves it first.
    if (p.value === undefined) continue;
    // A feature's property is its value (`features["./x"]`); the others name it (`build.context "x"`).
    const named = p.property.startsWith('features[') ? p.property : `${p.property} "${p.value}"`;
    if (p.path === undefined) {
      problems.push(`${named} leaves the workspace`);
      continue;
    }
    const r = tree.resolve(p.path);
    if (!r.ok) problems.push(`${named} leads outside the workspace: ${r.message}`);
    else if (r.kind === 'missing') problems.push(`${named} is not in the workspace ("${r.path}" does not exist)`);
    else if (r.kind !== p.kind) problems.push(`${named} is a ${r.kind === 'dir' ? 'folder' : 'file'}; it must be a ${p.kind === 'dir' ? 'folder' : 'file'}`);
  }
  if (problems.length > 0) {
    const named = problems.map((p) => `${configPath}: ${p}`);
    throw new UnprocessableError('unsafe_path', named[0]!, { problems: named });
  }
}
