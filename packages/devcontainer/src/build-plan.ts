import { checkBuildPaths } from './build-paths.ts';
import { buildKey, type BuildKey, type WorkspaceFile } from './build-key.ts';
import type { DevcontainerConfig } from './parse.ts';
import type { BuildPolicy } from './policy.ts';
import { validateDevcontainer } from './validate.ts';
import { WorkspaceTree, checkWorkspaceLayout } from './workspace-tree.ts';

/** What is about to be built: a lone devcontainer.json, or a workspace's files and the config found in them. */
export interface BuildSource {
  configText: string;
  /** Where the config sits in the workspace (`.devcontainer/devcontainer.json`); absent for a lone devcontainer.json. */
  configPath?: string;
  /** Every entry of the workspace (an archive's, or an unpacked folder's as scanWorkspace reads it). */
  files?: readonly WorkspaceFile[];
}

export interface BuildPlan {
  config: DevcontainerConfig;
  key: BuildKey;
}

/**
 * Every check of what a tenant asks to build, and its build key — one function for the
 * gateway (on the archive's entries, before anything is queued) and the builder (on the
 * folder it unpacked, before the CLI runs), so the file checked and keyed is the file built:
 * the workspace's layout (no link leaves it, nothing under a linked folder), the config
 * (syntax, supported forms, schema, feature references, build policy), every path the build
 * reads (symlinks followed, inside the workspace), then the key over what the build reads.
 * Throws the typed errors of those checks (400 / 422).
 */
export function planBuild(source: BuildSource, policy: BuildPolicy): BuildPlan {
  if (source.configPath === undefined) {
    const config = validateDevcontainer(source.configText, { hasContext: false }, policy);
    return { config, key: buildKey({ config }) };
  }
  const files = [...(source.files ?? [])];
  const tree = new WorkspaceTree(files);
  checkWorkspaceLayout(tree);
  const config = validateDevcontainer(source.configText, { hasContext: true }, policy, source.configPath);
  checkBuildPaths(config, source.configPath, tree);
  return { config, key: buildKey({ config, configPath: source.configPath, files }) };
}
