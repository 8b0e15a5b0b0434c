import { posix } from 'node:path';
import { INSTANCE_WORKSPACE_FOLDER, UnprocessableError, substituteInstanceVariables, type PropertyWarning, type WorkspacePlacement } from '@codebay/contracts';
import type { DevcontainerConfig } from './parse.ts';

/**
 * Paths an instance's workspace volume may not be mounted at or above: the system's own folders
 * (mounting there would hide the image's programs or the kernel's interfaces), codebay's mounts
 * (the editor and launcher at /opt/codebay, the user's /shared) and their parents.
 */
const RESERVED = [
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/opt/codebay',
  '/proc',
  '/run',
  '/sbin',
  '/shared',
  '/sys',
  '/usr',
  '/var/run',
];

/** Where a workspaceFolder may never be: the kernel's own file systems. */
const KERNEL_FILE_SYSTEMS = ['/proc', '/sys', '/dev'];

/** Longest path accepted for workspaceMount's target or workspaceFolder (characters). */
const MAX_PATH = 1024;

/**
 * The keys of a `workspaceMount` string, read as the reference CLI reads `--mount` values
 * (devcontainers/cli `parseMount`: split at `,` then at `=`; `src` → source, `dst`/`destination` →
 * target).
 */
function parseMount(value: string): Record<string, string | undefined> {
  const aliases: Record<string, string> = { src: 'source', dst: 'target', destination: 'target' };
  const out: Record<string, string | undefined> = {};
  for (const part of value.split(',')) {
    const [key = '', val] = part.split('=');
    out[aliases[key] ?? key] = val;
  }
  return out;
}

function checkPath(property: string, value: string, name: string): string {
  const refuse = (why: string) => {
    throw new UnprocessableError('unsupported_devcontainer', `${name}: ${property} ${JSON.stringify(value.slice(0, 200))}: ${why}`, {
      problems: [{ property, message: why }],
    });
  };
  if (value.length > MAX_PATH) refuse(`longer than ${MAX_PATH} characters`);
  if (!value.startsWith('/')) refuse('must be an absolute path in the container');
  if (/[\0-\x1f\x7f]/.test(value)) refuse('holds a control character');
  const path = posix.normalize(value).replace(/(.)\/+$/, '$1');
  if (value.split('/').some((s) => s === '..' || s === '.')) refuse('must not hold "." or ".." segments');
  return path;
}

function checkTarget(target: string, name: string): void {
  const refuse = (why: string) => {
    throw new UnprocessableError('unsupported_devcontainer', `${name}: workspaceMount: the target ${target}: ${why}`, {
      problems: [{ property: 'workspaceMount', message: why }],
    });
  };
  if (target === '/') refuse('the workspace cannot be mounted over the whole container');
  for (const reserved of RESERVED) {
    if (target === reserved || target.startsWith(`${reserved}/`))
      refuse(`${reserved} is the system's or codebay's own; choose a folder such as /workspaces/app`);
    if (reserved.startsWith(`${target}/`)) refuse(`it would hide ${reserved}, which the instance needs; choose a folder such as /workspaces/app`);
  }
}

/**
 * Where an instance's own workspace volume is mounted and which folder the editor opens, from
 * the config's `workspaceMount` and `workspaceFolder` (containers.dev/implementors/json_reference:
 * "workspaceMount … Supports the same values as the Docker CLI --mount flag", "workspaceFolder
 * … the default path … to open when connecting to the container").
 *
 * An instance has no folder of the user's machine: the instance's own volume (holding the
 * workspace upload, if any) takes the place of `${localWorkspaceFolder}`, mounted at
 * `workspaceMount`'s target — or at /workspace, codebay's default, when there is none. The editor
 * opens `workspaceFolder` (default: the volume's path) and lifecycle commands run there. Variables
 * are substituted first: in both, `${localWorkspaceFolder}` is /workspace and its basename
 * `workspace`; `${containerWorkspaceFolder}` in workspaceMount is /workspace too.
 *
 * Returns the placement (`{target, folder}`, absolute normalised paths) and warnings for what of
 * workspaceMount is not applied as written (another source, `readonly`, other options) and for a
 * folder outside the volume. Throws UnprocessableError (422 `unsupported_devcontainer`, the
 * property named) for a relative path, `.`/`..` segments, control characters, a target at or
 * above the system's folders, /opt/codebay or /shared, or a folder under /proc, /sys or /dev.
 */
export function workspacePlacement(config: DevcontainerConfig, name = 'devcontainer.json'): { placement: WorkspacePlacement; warnings: PropertyWarning[] } {
  const warnings: PropertyWarning[] = [];
  const warn = (property: string, message: string) => warnings.push({ property, message: `${property}: ${message}` });
  const vars = { workspaceFolder: INSTANCE_WORKSPACE_FOLDER, devcontainerId: '${devcontainerId}' };
  let target = INSTANCE_WORKSPACE_FOLDER;
  const mount = config.workspaceMount;
  if (typeof mount === 'string' && mount.trim() !== '') {
    const keys = parseMount(substituteInstanceVariables(mount, vars));
    if (keys.target === undefined || keys.target === '')
      throw new UnprocessableError('unsupported_devcontainer', `${name}: workspaceMount: names no target (target=/path in the container)`, {
        problems: [{ property: 'workspaceMount', message: 'no target' }],
      });
    target = checkPath('workspaceMount', keys.target, name);
    checkTarget(target, name);
    const source = keys.source ?? '';
    if (source !== '' && source !== INSTANCE_WORKSPACE_FOLDER)
      warn('workspaceMount', `the source ${JSON.stringify(source.slice(0, 100))} is not mounted: the instance's own workspace volume is, at ${target}`);
    if (keys.type !== undefined && !['bind', 'volume'].includes(keys.type))
      warn('workspaceMount', `type=${keys.type.slice(0, 20)} is not applied: the workspace is a volume`);
    const others = Object.keys(keys).filter((k) => !['source', 'target', 'type', 'consistency', ''].includes(k));
    if (others.length > 0) warn('workspaceMount', `${others.slice(0, 5).join(', ')} not applied: the workspace volume is mounted read-write`);
  } else if (mount !== undefined && mount !== null && mount !== '') {
    throw new UnprocessableError('unsupported_devcontainer', `${name}: workspaceMount must be a string (--mount syntax)`, {
      problems: [{ property: 'workspaceMount', message: 'not a string' }],
    });
  }
  let folder = target;
  const wanted = config.workspaceFolder;
  if (typeof wanted === 'string' && wanted !== '') {
    folder = checkPath('workspaceFolder', substituteInstanceVariables(wanted, vars), name);
    // The runtime enters it as root before anything of codebay's runs (WorkingDir / workingDir):
    // never the kernel's file systems (a leaked descriptor under /proc/self/fd is a known escape, CVE-2024-21626).
    for (const kernel of KERNEL_FILE_SYSTEMS)
      if (folder === kernel || folder.startsWith(`${kernel}/`))
        throw new UnprocessableError(
          'unsupported_devcontainer',
          `${name}: workspaceFolder ${folder}: ${kernel} is the kernel's; choose a folder such as /workspaces/app`,
          {
            problems: [{ property: 'workspaceFolder', message: `under ${kernel}` }],
          },
        );
    if (folder !== target && !folder.startsWith(`${target}/`))
      warn(
        'workspaceFolder',
        `${folder} is outside the instance's workspace volume (${target}): the editor opens it, but what is written there is lost when the container is replaced; set workspaceMount's target to keep it`,
      );
  }
  return { placement: { target, folder }, warnings };
}
