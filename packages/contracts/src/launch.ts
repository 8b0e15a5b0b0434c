import type { LaunchConfig } from './instance.ts';

/** Where every instance's workspace is (its own volume). */
export const INSTANCE_WORKSPACE_FOLDER = '/workspace';

/**
 * The values the spec's variables take in an instance (containers.dev/implementors/json_reference,
 * "Variables in devcontainer.json"). An instance has no local machine: the local workspace folder
 * is the instance's own (`/workspace`), `${localEnv:…}` / `${env:…}` are their default (or empty),
 * and `${devcontainerId}` is the instance's id (stable across restarts, unique).
 */
export interface InstanceVariables {
  workspaceFolder: string;
  devcontainerId: string;
}

const VARIABLE = /\$\{([^}:]+)(?::([^}:]+)(?::([^}]*))?)?\}/g;

/**
 * Substitutes the variables whose values do not depend on the running container —
 * `${localWorkspaceFolder}`, `${localWorkspaceFolderBasename}`, `${containerWorkspaceFolder}`,
 * `${containerWorkspaceFolderBasename}`, `${devcontainerId}`, `${localEnv:NAME[:default]}` and its
 * alias `${env:…}` — and leaves `${containerEnv:…}` and anything unknown as written (the launcher
 * resolves `${containerEnv:…}` in the container). The launcher's `substituteVariables`
 * (packages/editor/launcher/helpers.mjs) gives the same values; a test holds them together.
 */
export function substituteInstanceVariables(value: string, vars: InstanceVariables): string {
  const basename = vars.workspaceFolder.replace(/\/+$/, '').split('/').pop() ?? '';
  return value.replace(VARIABLE, (match, kind: string, name: string | undefined, dflt: string | undefined) => {
    switch (kind) {
      case 'localEnv':
      case 'env':
        return name === undefined ? match : (dflt ?? '');
      case 'localWorkspaceFolder':
      case 'containerWorkspaceFolder':
        return name === undefined ? vars.workspaceFolder : match;
      case 'localWorkspaceFolderBasename':
      case 'containerWorkspaceFolderBasename':
        return name === undefined ? basename : match;
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
 * workspace folder, the editor's port and the instance's id for `${devcontainerId}`.
 */
export function instanceLaunch(launch: LaunchConfig, instanceId: string, port: number): { containerEnv: Record<string, string>; launchJson: string } {
  const vars = { workspaceFolder: INSTANCE_WORKSPACE_FOLDER, devcontainerId: instanceId };
  const containerEnv = Object.fromEntries(Object.entries(launch.containerEnv).map(([k, v]) => [k, substituteInstanceVariables(v, vars)]));
  return {
    containerEnv,
    launchJson: JSON.stringify({ ...launch, containerEnv, workspaceFolder: INSTANCE_WORKSPACE_FOLDER, devcontainerId: instanceId, port }),
  };
}
