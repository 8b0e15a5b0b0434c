import { UnprocessableError, launchConfigSchema, type LaunchConfig, type LifecycleCommand } from '@codebay/contracts';
import { mergeHostRequirements } from './host-requirements.ts';

/** One entry of the `devcontainer.metadata` image label (base image, each feature, then the config). */
export type MetadataEntry = Record<string, unknown>;

const LIFECYCLE = [
  ['onCreateCommand', 'onCreateCommands'],
  ['updateContentCommand', 'updateContentCommands'],
  ['postCreateCommand', 'postCreateCommands'],
  ['postStartCommand', 'postStartCommands'],
  ['postAttachCommand', 'postAttachCommands'],
] as const;

/** The spec's `waitFor` values (the lifecycle command the editor waits for). */
const WAIT_FOR = new Set(['initializeCommand', 'onCreateCommand', 'updateContentCommand', 'postCreateCommand', 'postStartCommand']);

function isCommand(v: unknown): v is LifecycleCommand {
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0 && v.every((x) => typeof x === 'string');
  if (v && typeof v === 'object') return Object.values(v).every((x) => typeof x === 'string' || (Array.isArray(x) && x.every((y) => typeof y === 'string')));
  return false;
}

function stringRecord(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  }
  return out;
}

/**
 * Merges the image's metadata entries the way the devcontainer spec does: users,
 * `waitFor` and scalars last-wins, env maps merged key by key, lifecycle commands
 * collected in order, extensions unioned, settings merged, and `hostRequirements` the largest of
 * each field (`mergeHostRequirements`; left out when no entry asks for anything).
 */
export function mergeMetadata(entries: MetadataEntry[]): LaunchConfig {
  const merged: LaunchConfig = launchConfigSchema.parse({});
  const extensions = new Set<string>();
  for (const entry of entries) {
    if (typeof entry.remoteUser === 'string') merged.remoteUser = entry.remoteUser;
    if (typeof entry.containerUser === 'string') merged.containerUser = entry.containerUser;
    if (typeof entry.waitFor === 'string' && WAIT_FOR.has(entry.waitFor)) merged.waitFor = entry.waitFor as LaunchConfig['waitFor'];
    Object.assign(merged.containerEnv, stringRecord(entry.containerEnv));
    Object.assign(merged.remoteEnv, stringRecord(entry.remoteEnv));
    for (const [single, plural] of LIFECYCLE) {
      const cmd = entry[single];
      if (isCommand(cmd)) merged[plural].push(cmd);
    }
    const vscode = (entry.customizations as Record<string, unknown> | undefined)?.vscode as Record<string, unknown> | undefined;
    if (vscode && typeof vscode === 'object') {
      if (Array.isArray(vscode.extensions)) for (const e of vscode.extensions) if (typeof e === 'string') extensions.add(e);
      if (vscode.settings && typeof vscode.settings === 'object') Object.assign(merged.settings, vscode.settings);
    }
  }
  merged.extensions = [...extensions];
  const host = mergeHostRequirements(entries);
  if (host.cpuMillis !== undefined || host.memoryBytes !== undefined || host.storageBytes !== undefined || host.gpu !== 'none') merged.hostRequirements = host;
  return merged;
}

/** The largest `devcontainer.metadata` label read: the image is the tenant's (a Dockerfile's LABEL can set it). */
export const MAX_METADATA_LABEL = 256 * 1024;

/** Parses the `devcontainer.metadata` label (a JSON array, or one object in older CLIs). Throws UnprocessableError when it is over MAX_METADATA_LABEL characters. */
export function parseMetadataLabel(label: string | undefined): MetadataEntry[] {
  if (!label) return [];
  if (label.length > MAX_METADATA_LABEL)
    throw new UnprocessableError(
      'invalid_devcontainer',
      `the image's devcontainer.metadata label is ${label.length} characters; codebay reads at most ${MAX_METADATA_LABEL}`,
    );
  const value: unknown = JSON.parse(label);
  if (Array.isArray(value)) return value.filter((e): e is MetadataEntry => !!e && typeof e === 'object');
  return value && typeof value === 'object' ? [value as MetadataEntry] : [];
}

/** The launch configuration an image built by the Dev Containers CLI carries in its labels. */
export function launchFromImageLabels(labels: Record<string, string>): LaunchConfig {
  return mergeMetadata(parseMetadataLabel(labels['devcontainer.metadata']));
}
