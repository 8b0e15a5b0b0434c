import { z } from 'zod';
import { parseCpu, parseMemory } from './quantity.ts';

/**
 * Lifecycle: Queued → Building → Built|Cached → Provisioning → Running,
 * Failed (with phase and reason) from any step, Deleting → Deleted.
 */
export const INSTANCE_STATUSES = ['Queued', 'Building', 'Built', 'Cached', 'Provisioning', 'Running', 'Failed', 'Deleting', 'Deleted'] as const;
export type InstanceStatus = (typeof INSTANCE_STATUSES)[number];

export const TERMINAL_BUILD_STATUSES: readonly InstanceStatus[] = ['Built', 'Cached', 'Provisioning', 'Running', 'Failed', 'Deleting', 'Deleted'];

export type SourceKind = 'simple' | 'devcontainer' | 'workspace';
export type FailurePhase = 'build' | 'push' | 'provision' | 'deprovision';

/**
 * A user id becomes part of instance ids, volume names, Kubernetes object names and labels,
 * so it must be a DNS label (lower case, digits, hyphens) short enough to leave room for a suffix.
 */
export const userIdSchema = z
  .string({ error: 'user_id is required' })
  .min(1, 'user_id is required')
  .max(40, 'user_id must be at most 40 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'user_id must be lower-case letters, digits and inner hyphens (a DNS label)');

export const instanceIdSchema = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'not an instance id');

/** The seed accepted `^[a-zA-Z0-9][-a-zA-Z0-9_./:]*$`; codebay also accepts a digest (`@sha256:…`). */
export const imageRefSchema = z
  .string()
  .max(255, 'base_image is too long')
  .regex(/^[a-zA-Z0-9][-a-zA-Z0-9_./:]*(@sha256:[a-f0-9]{64})?$/, 'base_image is not an image reference');

const memoryQuantity = z.string().refine((q) => parseMemory(q) !== undefined, 'must be a quantity such as 512Mi or 2Gi');
const cpuQuantity = z.string().refine((q) => parseCpu(q) !== undefined, 'must be a quantity such as 200m or 1');

/** How a devcontainer.json's hostRequirements act on a field (services/gateway/src/host-requirements.ts). */
const raisedBy = (property: string) =>
  `; a devcontainer.json's hostRequirements.${property} is its minimum: left out, it is raised to it (a limit: to at least the request); given below it, 422 below_host_requirements. The built image's metadata (devcontainer.metadata: its base image's hostRequirements) raises it too, before the instance starts`;

/**
 * An instance's resources (Kubernetes quantities). For devcontainer and workspace creates, the
 * config's hostRequirements are minimums: the gateway raises the fields left out to them
 * (limits to at least the requests) and refuses given ones below them.
 */
export const resourcesSchema = z.object({
  storage_size: memoryQuantity.default('2Gi').describe(`The workspace volume's size (its PersistentVolumeClaim's request on Kubernetes)${raisedBy('storage')}`),
  shared_storage_size: memoryQuantity.default('5Gi').describe("The user's shared volume's size (made by the user's first instance)"),
  memory_request: memoryQuantity.default('512Mi').describe(`Memory reserved for the instance${raisedBy('memory')}`),
  memory_limit: memoryQuantity.default('2Gi').describe(`The most memory the instance may use (at least memory_request)${raisedBy('memory')}`),
  cpu_request: cpuQuantity.default('200m').describe(`CPU reserved for the instance${raisedBy('cpus')}`),
  cpu_limit: cpuQuantity.default('1000m').describe(`The most CPU the instance may use (at least cpu_request)${raisedBy('cpus')}`),
});
export type Resources = z.infer<typeof resourcesSchema>;

/** Fields every create request takes (JSON or multipart form fields). */
export const createFieldsSchema = resourcesSchema.extend({
  /** Required for admin callers; a user's token implies it (and must match when given). */
  user_id: userIdSchema.optional(),
  vscode_version: z
    .string()
    .regex(/^[0-9]+\.[0-9]+(\.[0-9]+)?$/, 'vscode_version must look like 1.100 or 1.100.3')
    .optional(),
});

export const createSimpleSchema = createFieldsSchema.extend({
  base_image: imageRefSchema.default('ubuntu:22.04'),
});
export type CreateSimpleRequest = z.infer<typeof createSimpleSchema>;
export type CreateFields = z.infer<typeof createFieldsSchema>;

/**
 * The hostRequirements an image's metadata asks for (`mergeHostRequirements` in
 * @codebay/devcontainer: the largest of each field over the `devcontainer.metadata` entries),
 * kept in its launch configuration so the build cache's entry carries them to every instance
 * started from the image.
 */
export const imageHostRequirementsSchema = z.object({
  /** The minimum number of cores, in millicores. */
  cpuMillis: z.number().int().positive().optional(),
  /** The minimum memory, in bytes. */
  memoryBytes: z.number().int().positive().optional(),
  /** The minimum disk space, in bytes. */
  storageBytes: z.number().int().positive().optional(),
  /** `required`: a GPU is needed; `optional`: one is used if there is one; `none`. */
  gpu: z.enum(['required', 'optional', 'none']).default('none'),
});
export type ImageHostRequirements = z.infer<typeof imageHostRequirementsSchema>;

/** The lifecycle part of the merged devcontainer configuration, handed to the in-instance launcher. */
const lifecycleCommand = z.union([z.string(), z.array(z.string()), z.record(z.string(), z.union([z.string(), z.array(z.string())]))]);
export const launchConfigSchema = z.object({
  remoteUser: z.string().optional(),
  containerUser: z.string().optional(),
  containerEnv: z.record(z.string(), z.string()).default({}),
  remoteEnv: z.record(z.string(), z.string()).default({}),
  onCreateCommands: z.array(lifecycleCommand).default([]),
  updateContentCommands: z.array(lifecycleCommand).default([]),
  postCreateCommands: z.array(lifecycleCommand).default([]),
  postStartCommands: z.array(lifecycleCommand).default([]),
  /** Run each time an editor session attaches (the spec's postAttachCommand). */
  postAttachCommands: z.array(lifecycleCommand).default([]),
  /**
   * The lifecycle command the editor waits for (the spec's default: updateContentCommand); the
   * commands after it run with the editor up.
   */
  waitFor: z.enum(['initializeCommand', 'onCreateCommand', 'updateContentCommand', 'postCreateCommand', 'postStartCommand']).optional(),
  settings: z.record(z.string(), z.unknown()).default({}),
  extensions: z.array(z.string()).default([]),
  /**
   * The image's hostRequirements, when its metadata has any (absent: none, or an image recorded
   * before they were read): the provisioner raises the instance's resources to them before it
   * starts it (never passed to the launcher).
   */
  hostRequirements: imageHostRequirementsSchema.optional(),
});
export type LaunchConfig = z.infer<typeof launchConfigSchema>;
export type LifecycleCommand = z.infer<typeof lifecycleCommand>;

/** The port the editor (code-server) listens on inside every instance. */
export const INSTANCE_EDITOR_PORT = 8080;

/** Where an instance's workspace (its own volume) is when its config names no other place. */
export const INSTANCE_WORKSPACE_FOLDER = '/workspace';

/**
 * Where an instance's own workspace volume is mounted (`target`: the config's workspaceMount
 * target, default /workspace) and the folder the editor opens and lifecycle commands run in
 * (`folder`: workspaceFolder, default the target). Absolute normalised paths
 * (`workspacePlacement` in @codebay/devcontainer checks them).
 */
export interface WorkspacePlacement {
  target: string;
  folder: string;
}

/** The placement of an instance whose config says nothing (and of records made before placements). */
export const DEFAULT_WORKSPACE: WorkspacePlacement = { target: INSTANCE_WORKSPACE_FOLDER, folder: INSTANCE_WORKSPACE_FOLDER };

/** Where the runtime driver put the instance. */
export const runtimeInfoSchema = z.object({
  driver: z.enum(['docker', 'kubernetes']),
  /** URL the gateway proxies editor traffic to (never shown to users). */
  endpoint: z.string(),
  containerId: z.string().optional(),
  /** Kubernetes namespace holding the instance's objects. */
  namespace: z.string().optional(),
  /** Docker network the instance's container is alone on. */
  network: z.string().optional(),
});
export type RuntimeInfo = z.infer<typeof runtimeInfoSchema>;

/**
 * What an instance's image is built from and whether it was: same key, same image
 * (`buildImageRef`), built once and started many times.
 */
export interface BuildInfo {
  /** sha256 over the normalised config, the files the build reads, features and the CLI version. */
  key: string;
  /** Builds of the same config share layers through the family's last image. */
  family: string;
  /** `hit`: the registry had the image, nothing was built for this instance. */
  cache: 'hit' | 'miss';
}

/** Where a build key's image lives: one repository, the key as its tag. */
export const BUILD_IMAGE_REPOSITORY = 'codebay-devcontainer';
export const buildImageRef = (registry: string, key: string) => `${registry}/${BUILD_IMAGE_REPOSITORY}:${key}`;
/** The last image built of a config family (the layer cache of its next build). */
export const familyImageRef = (registry: string, family: string) => `${registry}/${BUILD_IMAGE_REPOSITORY}:family-${family}`;

/** What the operator allows one instance, as quantities (`4000m`, `8Gi`, `100Gi`). */
export interface ResourceMaxima {
  /** MAX_CPU_LIMIT. */
  cpu: string;
  /** MAX_MEMORY_LIMIT. */
  memory: string;
  /** MAX_STORAGE_SIZE. */
  storage: string;
}

/**
 * An image on a builder's Docker daemon, named by its image ID: the sha256 of the image's
 * configuration, which names its layers by their content (`rootfs.diff_ids`). Whoever holds an
 * image with this ID holds exactly this image, whatever it is tagged; no tag is ever trusted.
 */
export interface LocalImage {
  /** `sha256:<64 hex>`. */
  id: string;
  /** The builder that built it (its BUILDER_NAME), for logs. */
  builder: string;
}

/**
 * A devcontainer.json property codebay accepted but does not apply as written (or a lifecycle
 * command that failed), said on the instance (`warnings`) and in its build log.
 */
export interface PropertyWarning {
  /** The property as devcontainer.json spells it (`runArgs`, `features["…"].privileged`, `postCreateCommand`). */
  property: string;
  /** One or two sentences: what codebay does instead, and what that means for the user. */
  message: string;
}

/** Warnings one instance carries at most: a config cannot grow its record (read on every request) without bound. */
export const MAX_WARNINGS = 50;

/** `warnings` then `more`, one per property (the first kept), at most MAX_WARNINGS. */
export function mergeWarnings(warnings: readonly PropertyWarning[], more: readonly PropertyWarning[]): PropertyWarning[] {
  const out = warnings.slice(0, MAX_WARNINGS);
  const seen = new Set(out.map((w) => w.property));
  for (const w of more) {
    if (out.length >= MAX_WARNINGS) break;
    if (seen.has(w.property)) continue;
    seen.add(w.property);
    out.push(w);
  }
  return out;
}

/** Where one lifecycle command is: the launcher's `lifecycle {json}` lines, as the provisioner read them. */
export interface LifecycleCommandStatus {
  state: 'running' | 'succeeded' | 'failed' | 'skipped';
  /** The failed command's exit code (128 + signal number when a signal ended it). */
  exitCode?: number | null;
  /** How long it ran, milliseconds (when it ended). */
  durationMs?: number;
  /** When the provisioner saw this state (ISO 8601). */
  at: string;
}

/** The lifecycle of the instance's last container start (the spec's lifecycle commands, containers.dev). */
export interface LifecycleStatus {
  /** The command the editor waited for (`waitFor`; the spec's default updateContentCommand). */
  waitFor: string;
  /** By property name (`postCreateCommand`, …): its last state; commands the config does not have are absent. */
  commands: Record<string, LifecycleCommandStatus>;
  /** True once postStartCommand ended (or was skipped): every command of the start has run. */
  ended: boolean;
  /** False once a command failed (the ones after it are skipped, as the reference CLI does). */
  ok: boolean;
}

/** The instance record as stored in Redis (a hash; each field JSON-encoded). */
export interface InstanceRecord {
  id: string;
  userId: string;
  status: InstanceStatus;
  source: SourceKind;
  /** sha256 (hex) of the access token: what the editor route checks. */
  accessTokenHash: string;
  /** The access token sealed with the platform key (the API shows it again; Redis never holds it in clear). */
  accessTokenSealed: string;
  baseImage: string | null;
  /** Image the builder pushes (or pushed); null for simple instances. */
  devcontainerImage: string | null;
  /** sha256 of the uploaded devcontainer.json or workspace tar.gz. */
  artifact: string | null;
  /** Build key and cache outcome (null for simple instances and records made before build keys). */
  build?: BuildInfo | null;
  resources: Resources;
  /**
   * The most the operator allowed one instance when it was created (the gateway's MAX_CPU_LIMIT,
   * MAX_MEMORY_LIMIT, MAX_STORAGE_SIZE): the image's hostRequirements, known only once it is
   * built, are held to them. Set on devcontainer and workspace instances; absent on records made
   * before it (their image's hostRequirements are not applied).
   */
  maxResources?: ResourceMaxima | null;
  vscodeVersion: string;
  launch: LaunchConfig | null;
  runtime: RuntimeInfo | null;
  failure: { phase: FailurePhase; reason: string } | null;
  /**
   * A Failed instance whose provisioning failed keeps what it was given (Docker: its stopped
   * container; Kubernetes: its objects, the Deployment scaled to 0) for inspection `until` then
   * (`FAILED_INSTANCE_KEEP_SECONDS`). `by` names the runtime that keeps it (`docker:<deployment>`,
   * `kubernetes:<namespace>`; see RuntimeDriver.keeper): only its provisioner's reconciler removes
   * it after the deadline, and sets this back to null. A delete removes it at once.
   */
  kept?: { until: string; by: string } | null;
  /**
   * The image as its builder built it, offered before its push ends: a runtime on that
   * builder's Docker daemon may start the instance from it (by image ID) while the push runs.
   * Set while the instance is `Building`; withdrawn (null) if the build goes back to `Queued`.
   */
  localImage?: LocalImage | null;
  /** Something went wrong that did not stop the instance (an image push that failed after the instance started from it). */
  warning?: string | null;
  /** Properties of the config accepted but not applied as written; lifecycle commands that failed. */
  warnings?: PropertyWarning[];
  /** The lifecycle commands of the last container start, from its log (null until one ran). */
  lifecycle?: LifecycleStatus | null;
  /** Where its workspace volume is mounted and the folder the editor opens (absent: /workspace for both). */
  workspace?: WorkspacePlacement | null;
  /** The config's forwardPorts (each reachable at its own origin; so is any other port). */
  ports?: ForwardedPort[];
  workspaceSeeded: boolean;
  createdAt: string;
  updatedAt: string;
  queuedAt: string | null;
  buildStartedAt: string | null;
  buildEndedAt: string | null;
  pushEndedAt: string | null;
  provisionStartedAt: string | null;
  containerStartedAt: string | null;
  runningAt: string | null;
  deletedAt: string | null;
}

export interface NewInstanceRecord {
  id: string;
  userId: string;
  source: SourceKind;
  accessTokenHash: string;
  accessTokenSealed: string;
  baseImage: string | null;
  artifact: string | null;
  resources: Resources;
  vscodeVersion: string;
}

/** A fresh record in `Queued`, every step's timestamp still empty. */
export function newInstanceRecord(init: NewInstanceRecord, now = new Date().toISOString()): InstanceRecord {
  return {
    ...init,
    status: 'Queued',
    devcontainerImage: null,
    launch: null,
    runtime: null,
    failure: null,
    localImage: null,
    warning: null,
    workspaceSeeded: false,
    createdAt: now,
    updatedAt: now,
    queuedAt: now,
    buildStartedAt: null,
    buildEndedAt: null,
    pushEndedAt: null,
    provisionStartedAt: null,
    containerStartedAt: null,
    runningAt: null,
    deletedAt: null,
  };
}

/**
 * Where a Queued instance's build waits: its place among the waiting builds, in the order
 * builders take them (BullMQ: the wait list oldest first, then prioritized jobs by priority,
 * each FIFO), and when it may start.
 */
export interface QueuePlace {
  /** 1 = the next build a free builder takes. */
  position: number;
  /** Builds waiting, this one included. */
  waiting: number;
  /** Waiting builds ahead of this one (`position - 1`). */
  builds_ahead: number;
  /** Builds running now (builders busy). */
  running: number;
  /**
   * Rough seconds until a builder takes it: position × the mean of recent build jobs' durations
   * ÷ the builds running. Null when it cannot be said: no build has finished lately, or no
   * builder is working (none is up, or all are between jobs).
   */
  estimated_start_seconds: number | null;
}

/** The seed's response shape, kept field for field (plus codebay's additions). */
export interface InstanceResponse {
  instance_id: string;
  user_id: string;
  url: string;
  access_token: string;
  status: InstanceStatus;
  base_image: string | null;
  devcontainer_image: string | null;
  /** The build key and whether the image came from the registry (`hit`) or was built (`miss`). */
  build: { key: string; cache: 'hit' | 'miss' } | null;
  build_logs_url: string;
  /** The instance's own origin (`https://<id>.<BASE_DOMAIN>/`); `url` leads there and sets its cookie. */
  editor_url: string;
  error: string | null;
  phase: FailurePhase | null;
  /**
   * What the instance runs with, as the create fields name it (`storage_size`, `shared_storage_size`,
   * `memory_request`, `memory_limit`, `cpu_request`, `cpu_limit`): the request's, with defaults, raised
   * to the devcontainer.json's hostRequirements where it has them.
   */
  resources: Resources;
  /**
   * A Failed instance only: until when what its failed provisioning left is kept for inspection
   * (Docker: the stopped container, for `docker logs`/`inspect`/`cp`; Kubernetes: its objects and
   * volume, the Deployment scaled to 0); null when nothing is kept. A delete removes it at once.
   */
  kept_until: string | null;
  /** Something that went wrong without stopping the instance (its image's push failed after it started: the image is not in the build cache). */
  warning: string | null;
  /** Properties of the devcontainer.json accepted but not applied as written, and lifecycle commands that failed: `[{property, message}]`. */
  warnings: PropertyWarning[];
  /** The lifecycle commands of the instance's last start: `{wait_for, commands: {postCreateCommand: {state, exit_code, duration_ms, at}}, ended, ok}`. */
  lifecycle: {
    wait_for: string;
    commands: Record<string, { state: LifecycleCommandStatus['state']; exit_code: number | null; duration_ms: number | null; at: string }>;
    ended: boolean;
    ok: boolean;
  } | null;
  /** The instance's own log (launcher, lifecycle commands, editor): JSON, or Server-Sent Events with `?follow=1`. */
  logs_url: string;
  /** The folder the editor opens and lifecycle commands run in (workspaceFolder; default /workspace, the instance's own volume). */
  workspace_folder: string;
  /**
   * The config's forwardPorts, each at its own origin (`<id>-<port>.<domain>`, guarded by the
   * instance's token like the editor): `url` opens it with the token, `origin` is where it lives.
   * Any other port of the instance is reachable the same way.
   */
  ports: { port: number; label: string | null; origin: string; url: string }[];
  vscode_version: string;
  created_at: string;
  timings: Record<string, string | null>;
  /** Only while the instance is Queued and its build waits for a builder; null otherwise (see QueuePlace). */
  queue: QueuePlace | null;
}

/** The seed's instance URL: `https://<BASE_DOMAIN>/instances/<id>?tkn=<token>` (it redirects to the instance's own origin). */
export function instanceUrl(publicUrl: string, id: string, token: string): string {
  return `${publicUrl}/instances/${id}?tkn=${token}`;
}

/**
 * Where instances' editors live: each on an origin of its own, `<id>.<domain>` with the
 * scheme and port users reach codebay on (one origin per instance: browsers keep one
 * instance's pages from reading another's; a cookie path is no such boundary).
 */
export interface EditorOrigins {
  protocol: 'http:' | 'https:';
  /** Parent domain of instance hosts: `BASE_DOMAIN` (wildcard DNS and certificate), or `localhost` on one machine. */
  domain: string;
  /** `:8080`, or '' for the scheme's default port. */
  port: string;
}

/** `http://<id>.localhost:8080` — no trailing slash. */
export function editorOrigin(origins: EditorOrigins, id: string): string {
  return `${origins.protocol}//${id}.${origins.domain}${origins.port}`;
}

/**
 * `http://<id>-3000.localhost:8080` — no trailing slash: the origin of port 3000 in the instance.
 * Unambiguous: an instance id ends in 8 characters after its last `-`, a port in 1–5 digits.
 */
export function portOrigin(origins: EditorOrigins, id: string, port: number): string {
  return `${origins.protocol}//${id}-${port}.${origins.domain}${origins.port}`;
}

/** A port of the config's `forwardPorts`, with its `portsAttributes` label. */
export interface ForwardedPort {
  /** 1–65535, in the instance. */
  port: number;
  label?: string;
}

/**
 * The API's view of an instance; `accessToken` is the record's token, unsealed by the caller;
 * `queue` its place in the build queue, given only while it is Queued (ignored otherwise).
 */
export function toInstanceResponse(
  record: InstanceRecord,
  publicUrl: string,
  origins: EditorOrigins,
  accessToken: string,
  queue: QueuePlace | null = null,
): InstanceResponse {
  return {
    instance_id: record.id,
    user_id: record.userId,
    url: instanceUrl(publicUrl, record.id, accessToken),
    access_token: accessToken,
    status: record.status,
    base_image: record.baseImage,
    devcontainer_image: record.devcontainerImage,
    build: record.build ? { key: record.build.key, cache: record.build.cache } : null,
    build_logs_url: `${publicUrl}/api/instances/${record.id}/build-logs`,
    editor_url: `${editorOrigin(origins, record.id)}/`,
    error: record.failure ? record.failure.reason : null,
    phase: record.failure ? record.failure.phase : null,
    resources: record.resources,
    kept_until: record.status === 'Failed' ? (record.kept?.until ?? null) : null,
    warning: record.warning ?? null,
    warnings: record.warnings ?? [],
    lifecycle: record.lifecycle
      ? {
          wait_for: record.lifecycle.waitFor,
          commands: Object.fromEntries(
            Object.entries(record.lifecycle.commands).map(([k, v]) => [
              k,
              { state: v.state, exit_code: v.exitCode ?? null, duration_ms: v.durationMs ?? null, at: v.at },
            ]),
          ),
          ended: record.lifecycle.ended,
          ok: record.lifecycle.ok,
        }
      : null,
    logs_url: `${publicUrl}/api/instances/${record.id}/logs`,
    workspace_folder: record.workspace?.folder ?? INSTANCE_WORKSPACE_FOLDER,
    ports: (record.ports ?? []).map(({ port, label }) => {
      const origin = portOrigin(origins, record.id, port);
      return { port, label: label ?? null, origin: `${origin}/`, url: `${origin}/?tkn=${encodeURIComponent(accessToken)}` };
    }),
    vscode_version: record.vscodeVersion,
    created_at: record.createdAt,
    timings: {
      queued_at: record.queuedAt,
      build_started_at: record.buildStartedAt,
      build_ended_at: record.buildEndedAt,
      push_ended_at: record.pushEndedAt,
      provision_started_at: record.provisionStartedAt,
      container_started_at: record.containerStartedAt,
      running_at: record.runningAt,
    },
    queue: record.status === 'Queued' ? queue : null,
  };
}
