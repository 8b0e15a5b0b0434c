import { MAX_WARNINGS, UnprocessableError, type PropertyWarning } from '@codebay/contracts';
import { hostRequirementsOf, mergeHostRequirements } from './host-requirements.ts';
import type { DevcontainerConfig } from './parse.ts';
import { forwardedPorts } from './ports.ts';
import { workspacePlacement } from './workspace-placement.ts';

/**
 * What codebay does with the devcontainer.json properties it accepts but does not apply as
 * the reference tools do (the Dev Containers spec, containers.dev/implementors/json_reference):
 * each becomes a warning on the instance and in its build log, so nothing is silently ignored.
 * Properties whose absence would make the instance wrong are refused instead (`checkRefused`).
 * The full table, one row per property with its test, is docs/conformance.md.
 */

const isSet = (v: unknown) => v !== undefined && v !== null;
/** A name from the upload as it goes into a warning: at most 100 characters. */
const short = (name: string) => (name.length > 100 ? `${name.slice(0, 99)}…` : name);
/** Set to something: a number, true, or a non-empty string, array or object. */
const nonEmpty = (v: unknown) =>
  typeof v === 'number' ||
  v === true ||
  (Array.isArray(v) ? v.length > 0 : typeof v === 'string' ? v.length > 0 : isSet(v) && typeof v === 'object' && Object.keys(v).length > 0);

interface Rule {
  property: string;
  /** True when the config's value is one codebay does not apply. */
  applies: (value: unknown) => boolean;
  message: string;
}

/** Properties of a devcontainer.json (or a feature's or image's metadata) that codebay accepts and does not apply. */
const IGNORED: readonly Rule[] = [
  {
    property: 'appPort',
    applies: nonEmpty,
    message:
      'not published on a host: every port of the instance is reachable at its own origin, <id>-<port>.<domain>; list it in forwardPorts to see it on the instance',
  },
  {
    property: 'mounts',
    applies: nonEmpty,
    message: 'not mounted: an instance has its own /workspace and its user’s /shared, nothing else (no host path, no other volume)',
  },
  { property: 'runArgs', applies: nonEmpty, message: 'not passed: instances run with codebay’s own container settings, not docker run flags' },
  {
    property: 'capAdd',
    applies: nonEmpty,
    message: 'not granted: instances run with the runtime’s default capabilities (a debugger that needs SYS_PTRACE to attach to another process cannot)',
  },
  { property: 'securityOpt', applies: nonEmpty, message: 'not applied: instances keep the runtime’s default seccomp and AppArmor profiles' },
  {
    property: 'init',
    applies: (v) => v === true,
    message: 'not applied: the instance’s first process is codebay’s launcher, which reaps its children; no separate init is added',
  },
  {
    property: 'initializeCommand',
    applies: nonEmpty,
    message: 'not run: it runs on the user’s own machine before the container starts, and codebay has none; put what the container needs in onCreateCommand',
  },
  { property: 'shutdownAction', applies: isSet, message: 'not applicable: an instance runs until it is deleted (DELETE /api/instances/<id>)' },
  {
    property: 'overrideCommand',
    applies: (v) => v === false,
    message: 'not applied: the container’s command is always codebay’s launcher (it starts the editor); the image’s own CMD does not run',
  },
  {
    property: 'updateRemoteUserUID',
    applies: (v) => v === true,
    message: 'not applicable: no folder of the user’s machine is mounted, so there is no UID to match; the user keeps the image’s UID',
  },
  {
    property: 'userEnvProbe',
    applies: (v) => typeof v === 'string' && v !== 'none',
    message: 'not probed: the environment is the image’s plus containerEnv and remoteEnv, not a login shell’s',
  },
  { property: 'secrets', applies: nonEmpty, message: 'not provided: codebay has no secret store for instances; the user sets them in the instance' },
];

/** `hostRequirements.gpu: "optional"`: the instance starts, without one. `who`: what said it is optional. */
const gpuOptionalMessage = (who: string) => `no GPU: codebay offers no GPUs, so the instance runs without one (${who} says it is optional)`;

/** Feature metadata properties (devcontainer-feature.json) a feature may ask of the container, with what codebay does. */
const FEATURE_CONTAINER_PROPERTIES: readonly Rule[] = [
  {
    property: 'privileged',
    applies: (v) => v === true,
    message: 'not granted: instances never run privileged, so what the feature needs it for (a Docker daemon inside, …) will not work',
  },
  {
    property: 'entrypoint',
    applies: nonEmpty,
    message: 'not run: the container’s entrypoint is codebay’s launcher, so what the feature starts there (a daemon, …) does not run',
  },
  ...IGNORED.filter((r) => ['capAdd', 'securityOpt', 'init', 'mounts'].includes(r.property)),
];

/** The config was checked (`checkRefused`): a placement that throws gives no warnings here. */
function safeWorkspaceWarnings(config: DevcontainerConfig): PropertyWarning[] {
  try {
    return workspacePlacement(config).warnings;
  } catch {
    return [];
  }
}

/**
 * The warnings for a user's devcontainer.json: every property codebay accepts without applying
 * it as written (`[{property, message}]`, in the config's order). Pure; never throws.
 */
export function configWarnings(config: DevcontainerConfig): PropertyWarning[] {
  // What of workspaceMount/workspaceFolder and the port properties is not applied as written, in the config's order.
  const derived = [...safeWorkspaceWarnings(config), ...forwardedPorts(config).warnings];
  const warnings: PropertyWarning[] = [];
  for (const key of Object.keys(config)) {
    warnings.push(...derived.filter((w) => w.property === key));
    const rule = IGNORED.find((r) => r.property === key);
    if (rule?.applies(config[key])) warnings.push({ property: key, message: `${key}: ${rule.message}` });
    // cpus, memory and storage become the instance's minimums (the gateway); gpu: true is refused (checkRefused).
    if (key === 'hostRequirements' && hostRequirementsOf(config).gpu === 'optional')
      warnings.push({ property: 'hostRequirements.gpu', message: `hostRequirements.gpu: ${gpuOptionalMessage('the config')}` });
  }
  const customizations = config.customizations;
  if (customizations && typeof customizations === 'object' && !Array.isArray(customizations)) {
    // One warning for them all (a config may name any number of tools), naming the first few.
    const tools = Object.keys(customizations).filter((t) => t !== 'vscode');
    if (tools.length === 1)
      warnings.push({
        property: `customizations.${short(tools[0]!)}`,
        message: `customizations.${short(tools[0]!)}: for another tool; codebay reads customizations.vscode`,
      });
    else if (tools.length > 1)
      warnings.push({
        property: 'customizations',
        message: `customizations: ${tools.slice(0, 10).map(short).join(', ')}${tools.length > 10 ? ` and ${tools.length - 10} more` : ''} are for other tools; codebay reads customizations.vscode`,
      });
  }
  return warnings.slice(0, MAX_WARNINGS);
}

/**
 * The warnings for what the image's metadata (`devcontainer.metadata`: the base image's entries,
 * then one per feature, then the config's own) asks of the container that codebay does not
 * grant. Entries with an `id` are features' and are named: `features["ghcr.io/…/docker-in-docker:2"].privileged`.
 * The config's own entry is covered by `configWarnings` (and `privileged` there by `checkRefused`).
 * `hostRequirements.gpu: "optional"` in any entry (the base image's: `mergeHostRequirements`) is a
 * warning too, as in the config (a required one stops the instance: `applyImageHostRequirements`).
 */
export function metadataWarnings(entries: readonly Record<string, unknown>[]): PropertyWarning[] {
  const warnings: PropertyWarning[] = [];
  if (mergeHostRequirements(entries).gpu === 'optional')
    warnings.push({ property: 'hostRequirements.gpu', message: `hostRequirements.gpu: ${gpuOptionalMessage("the image's metadata")}` });
  for (const entry of entries) {
    if (typeof entry.id !== 'string') continue;
    for (const rule of FEATURE_CONTAINER_PROPERTIES) {
      if (!rule.applies(entry[rule.property])) continue;
      const property = `features["${short(entry.id)}"].${rule.property}`;
      warnings.push({ property, message: `${property}: ${rule.message}` });
      if (warnings.length >= MAX_WARNINGS) return warnings;
    }
  }
  return warnings;
}

/**
 * Refuses (422 `unsupported_devcontainer`, `details.problems: [{property, message}]`) what an
 * instance cannot run without: `privileged: true` (instances share their node with other users'
 * and never run privileged, so what asks for it would not work), and a GPU the config requires
 * (`hostRequirements.gpu`: `true` or `{cores, memory}`; codebay offers none, and the spec's
 * hostRequirements are minimums). A workspaceMount target or workspaceFolder the workspace cannot be placed at
 * (`workspacePlacement`) too. `dockerComposeFile` is refused by `checkSupported`; cpus, memory
 * and storage above what the operator allows by the gateway (`applyHostRequirements`).
 */
export function checkRefused(config: DevcontainerConfig, name = 'devcontainer.json'): void {
  // A workspaceMount target or workspaceFolder codebay cannot place the workspace at.
  workspacePlacement(config, name);
  if (config.privileged === true)
    throw new UnprocessableError(
      'unsupported_devcontainer',
      `${name}: privileged: instances never run privileged (they share their node with other users' instances); remove it, and what needs it (a Docker daemon inside, …) with it`,
      { problems: [{ property: 'privileged', message: 'instances never run privileged' }] },
    );
  if (hostRequirementsOf(config).gpu === 'required')
    throw new UnprocessableError(
      'unsupported_devcontainer',
      `${name}: hostRequirements.gpu: a GPU is required, and codebay offers none; remove it, or write "gpu": "optional" if the container also works without one`,
      { problems: [{ property: 'hostRequirements.gpu', message: 'a GPU is required, and codebay offers none' }] },
    );
}
