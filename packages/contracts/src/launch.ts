import { DEFAULT_WORKSPACE, type LaunchConfig, type WorkspacePlacement } from './instance.ts';

/**
 * The values the spec's variables take in an instance (containers.dev/implementors/json_reference,
 * "Variables in devcontainer.json"). An instance has no local machine: the local workspace folder
 * is the instance's own (`/workspace`), `${localEnv:…}` / `${env:…}` are their default (or empty),
 * and `${devcontainerId}` is the instance's id (stable across restarts, unique).
 */
export interface InstanceVariables {
  /** `${containerWorkspaceFolder}`: the folder the editor opens. */
  workspaceFolder: string;
  /** `${localWorkspaceFolder}`: the instance's workspace volume (default: workspaceFolder). */
  workspaceVolume?: string;
  devcontainerId: string;
}

/**
 * Replaces each `${…}` of `value` with `replace(kind, name, default, match)` — `${kind}`,
 * `${kind:name}`, `${kind:name:default}` (the default may hold `:`), each ending at its first `}`
 * as the reference CLI's `/\$\{(.*?)\}/` does. A linear scan: a value of `${` repeated without a
 * closing brace costs one pass, where a regular expression would rescan it from every `${`.
 */
export function replaceVariables(value: string, replace: (kind: string, name: string | undefined, dflt: string | undefined, match: string) => string): string {
  let out = '';
  let pos = 0;
  for (;;) {
    const start = value.indexOf('${', pos);
    if (start < 0) break;
    const end = value.indexOf('}', start + 2);
    if (end < 0) break;
    const [kind = '', name, ...rest] = value.slice(start + 2, end).split(':');
    out += value.slice(pos, start) + replace(kind, name, rest.length > 0 ? rest.join(':') : undefined, value.slice(start, end + 1));
    pos = end + 1;
  }
  return out + value.slice(pos);
}

/**
 * Substitutes the variables whose values do not depend on the running container —
 * `${localWorkspaceFolder}` (the instance's workspace volume, in the place of the user's folder),
 * `${localWorkspaceFolderBasename}`, `${containerWorkspaceFolder}` (the folder the editor opens),
 * `${containerWorkspaceFolderBasename}`, `${devcontainerId}`, `${localEnv:NAME[:default]}` and its
 * alias `${env:…}` — and leaves `${containerEnv:…}` and anything unknown as written (the launcher
 * resolves `${containerEnv:…}` in the container). The launcher's `substituteVariables`
 * (packages/editor/launcher/helpers.mjs) gives the same values; a test holds them together.
 */
export function substituteInstanceVariables(value: string, vars: InstanceVariables): string {
  const basename = (path: string) => path.replace(/\/+$/, '').split('/').pop() ?? '';
  const local = vars.workspaceVolume ?? vars.workspaceFolder;
  return replaceVariables(value, (kind, name, dflt, match) => {
    switch (kind) {
      case 'localEnv':
      case 'env':
        return name === undefined ? match : (dflt ?? '');
      case 'localWorkspaceFolder':
        return name === undefined ? local : match;
      case 'containerWorkspaceFolder':
        return name === undefined ? vars.workspaceFolder : match;
      case 'localWorkspaceFolderBasename':
        return name === undefined ? basename(local) : match;
      case 'containerWorkspaceFolderBasename':
        return name === undefined ? basename(vars.workspaceFolder) : match;
      case 'devcontainerId':
        return name === undefined ? vars.devcontainerId : match;
      default:
        return match;
    }
  });
}

/**
 * What an instance's container is started with: its `containerEnv` with the variables
 * substituted (the container's own environment: what `docker exec` and `kubectl exec` see), and
 * the launcher's configuration (`CODEBAY_LAUNCH`, JSON) with the same containerEnv, the
 * workspace folder (`workspaceFolder`, what the editor opens) and the volume's path
 * (`workspaceVolume`, where the upload is unpacked and the launcher keeps its state), the
 * editor's port and the instance's id for `${devcontainerId}`.
 */
export function instanceLaunch(
  launch: LaunchConfig,
  instanceId: string,
  port: number,
  workspace: WorkspacePlacement = DEFAULT_WORKSPACE,
): { containerEnv: Record<string, string>; launchJson: string } {
  const vars = { workspaceFolder: workspace.folder, workspaceVolume: workspace.target, devcontainerId: instanceId };
  // hostRequirements are the provisioner's (the instance's resources), not the launcher's.
  const { hostRequirements: _host, ...launcher } = launch;
  const containerEnv = Object.fromEntries(Object.entries(launch.containerEnv).map(([k, v]) => [k, substituteInstanceVariables(v, vars)]));
  return {
    containerEnv,
    launchJson: JSON.stringify({
      ...launcher,
      containerEnv,
      workspaceFolder: workspace.folder,
      workspaceVolume: workspace.target,
      devcontainerId: instanceId,
      port,
    }),
  };
}
