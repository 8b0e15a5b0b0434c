import {
  InputError,
  NotFoundError,
  TooManyRequestsError,
  UnprocessableError,
  compareVersions,
  mergeWarnings,
  newInstanceRecord,
  parseCpu,
  parseMemory,
  type CreateFields,
  type InstanceRecord,
  type CreateSimpleRequest,
  type PropertyWarning,
  type ForwardedPort,
  type WorkspacePlacement,
  type QueuePlace,
  type SourceKind,
} from '@codebay/contracts';
import { baseImageOf, configWarnings, forwardedPorts, hostRequirementsOf, imageRefProblem, planBuild, workspacePlacement } from '@codebay/devcontainer';
import { hashToken, inspectWorkspaceArchive, type ArtifactStore, type CachedBuilds, type InstanceStore, type JobQueues, type Logger } from '@codebay/platform';
import { readFile, rm } from 'node:fs/promises';
import type { GatewayConfig } from './config.ts';
import type { EditorVersions } from './editor-versions.ts';
import { applyHostRequirements, type ResourceField } from './host-requirements.ts';
import type { IdempotencyKeys } from './idempotency.ts';
import { mustSee, ownerFor, type Caller } from './identity.ts';
import { newAccessToken, newInstanceId } from './tokens.ts';

/** A create as the API received it (fields parsed, upload on disk), by source. */
export type CreateRequest =
  | { source: 'simple'; fields: CreateSimpleRequest }
  | {
      source: 'devcontainer' | 'workspace';
      fields: CreateFields;
      /**
       * The resource fields the caller sent (the others hold their defaults): the config's
       * hostRequirements raise the others, and refuse these when they are below them.
       */
      given: ReadonlySet<ResourceField>;
      /** The uploaded devcontainer.json or workspace tar.gz, hashed while it streamed to disk. */
      upload: { path: string; sha256: string };
    };

/** What a create returned: the instance, and whether it is an earlier request's (same Idempotency-Key). */
export interface Created {
  record: InstanceRecord;
  replayed: boolean;
}

/** What goes into a new record, once the request is checked. */
interface NewInstance {
  fields: CreateFields;
  userId: string;
  vscodeVersion: string;
  source: SourceKind;
  baseImage: string | null;
  artifact: string | null;
  /** The build key of what was uploaded and the config's own hash (`BuildKey.family`). */
  build?: { key: string; family: string };
  /** The config's properties accepted but not applied as written (`configWarnings`, `applyHostRequirements`). */
  warnings?: PropertyWarning[];
  /** Where the workspace volume is mounted and the folder the editor opens (`workspacePlacement`). */
  workspace?: WorkspacePlacement;
  /** The config's forwardPorts with their labels (`forwardedPorts`). */
  ports?: ForwardedPort[];
}

/**
 * Picks the editor version for a request from `available` (default first): none asked → the
 * default; `1.100.3` → exactly that; `1.100` → the newest 1.100.x. Otherwise a 400 naming the
 * available versions (as the seed answered).
 */
export function resolveVscodeVersion(requested: string | undefined, available: string[]): string {
  const newest = (versions: string[]) => versions.reduce<string | undefined>((a, v) => (a === undefined || compareVersions(v, a) > 0 ? v : a), undefined);
  const match = requested === undefined ? available[0] : newest(available.filter((v) => v === requested || v.startsWith(`${requested}.`)));
  if (match === undefined) {
    const list = available.length > 0 ? available.join(', ') : 'none (this deployment has no editor bundle)';
    throw new InputError('unsupported_vscode_version', `vscode_version ${requested ?? '(default)'} is not available; available: ${list}`, {
      available,
    });
  }
  return match;
}

/** Requests must not exceed limits, and limits must stay within the operator's bounds. */
export function checkResources(fields: CreateFields, config: GatewayConfig): void {
  const problems: string[] = [];
  const mem = (q: string) => parseMemory(q)!;
  const cpu = (q: string) => parseCpu(q)!;
  if (mem(fields.memory_request) > mem(fields.memory_limit)) problems.push('memory_request is above memory_limit');
  if (cpu(fields.cpu_request) > cpu(fields.cpu_limit)) problems.push('cpu_request is above cpu_limit');
  if (mem(fields.memory_limit) > mem(config.MAX_MEMORY_LIMIT)) problems.push(`memory_limit is above the maximum ${config.MAX_MEMORY_LIMIT}`);
  if (cpu(fields.cpu_limit) > cpu(config.MAX_CPU_LIMIT)) problems.push(`cpu_limit is above the maximum ${config.MAX_CPU_LIMIT}`);
  for (const f of ['storage_size', 'shared_storage_size'] as const) {
    if (mem(fields[f]) > mem(config.MAX_STORAGE_SIZE)) problems.push(`${f} is above the maximum ${config.MAX_STORAGE_SIZE}`);
  }
  if (problems.length > 0) throw new InputError('invalid_resources', problems.join('; '), { problems });
}

/** What the instance use-cases work with (wired in main.ts). */
export interface InstanceServiceDeps {
  config: GatewayConfig;
  store: InstanceStore;
  jobs: JobQueues;
  cachedBuilds: CachedBuilds;
  artifacts: ArtifactStore;
  idempotency: IdempotencyKeys;
  /** The editor versions `vscode_version` may name (the provisioners' bundles). */
  editorVersions: Pick<EditorVersions, 'available'>;
  logger: Logger;
  /** `codebay_instance_deletes_total` (optional: tests of other use-cases leave it out). */
  deletes?: { inc(): void };
}

/** The gateway's use-cases on instances: create (checks, upload, record, first job), read, delete. */
export class InstanceService {
  private readonly config: GatewayConfig;
  private readonly store: InstanceStore;
  private readonly jobs: JobQueues;
  private readonly logger: Logger;

  constructor(private readonly deps: InstanceServiceDeps) {
    ({ config: this.config, store: this.store, jobs: this.jobs, logger: this.logger } = deps);
  }

  /**
   * The layer-cache family of a user's config: keyed with the platform key and the user, so
   * nobody can name another user's last image (`FROM …:family-<tag>` would otherwise hand
   * them that user's workspace files).
   */
  private familyTag(userId: string, configHash: string): string {
    return this.config.CODEBAY_SECRET_KEY.derive('family', userId, configHash).slice(0, 32);
  }

  /**
   * The instance's access token, unsealed (records made before sealing kept it in clear);
   * '' when it was sealed with another platform key (CODEBAY_SECRET_KEY was rotated): the
   * record stays readable, its token can no longer be shown.
   */
  accessToken(record: InstanceRecord): string {
    const legacy = (record as { accessToken?: string }).accessToken;
    if (legacy !== undefined) return legacy;
    try {
      return this.config.CODEBAY_SECRET_KEY.open(record.accessTokenSealed);
    } catch {
      return '';
    }
  }

  /** Validates what is left to validate and checks the user's quotas; before anything is stored. */
  private async prepare(fields: CreateFields, userId: string, source: SourceKind): Promise<{ vscodeVersion: string }> {
    checkResources(fields, this.config);
    const vscodeVersion = resolveVscodeVersion(fields.vscode_version, await this.deps.editorVersions.available());
    const ids = await this.store.idsOfUser(userId);
    const records = await this.store.many(ids);
    const live = records.filter((r) => !['Failed', 'Deleting', 'Deleted'].includes(r.status));
    // A record that cannot be read (many() leaves it out) counts as live: a quota never loosens on a guess.
    const instances = live.length + (ids.length - records.length);
    if (instances >= this.config.MAX_INSTANCES_PER_USER) {
      throw new TooManyRequestsError(
        `user ${userId} already has ${instances} instances (the limit is ${this.config.MAX_INSTANCES_PER_USER}); delete one first`,
      );
    }
    const queued = live.filter((r) => r.status === 'Queued' || r.status === 'Building').length;
    if (source !== 'simple' && queued >= this.config.MAX_QUEUED_BUILDS_PER_USER) {
      throw new TooManyRequestsError(`user ${userId} already has ${queued} builds waiting or running (the limit is ${this.config.MAX_QUEUED_BUILDS_PER_USER})`);
    }
    return { vscodeVersion };
  }

  /**
   * Creates an instance, once per Idempotency-Key: a retry with the key gets the first
   * request's instance (`replayed`) and leaves nothing new behind. The owner comes from the
   * caller and `fields.user_id` (`ownerFor`); then the request is checked — base image or
   * build plan against the build policy (`planBuild`: the config, every path the build reads,
   * the build key), the config's hostRequirements applied to the resources
   * (`applyHostRequirements`), resources, quotas — before anything is stored. An upload that is not
   * kept (refused, replayed) is removed. Errors: `CodebayError`s with their status (400, 403,
   * 409 key in flight, 413, 422, 429).
   */
  async create(caller: Caller, request: CreateRequest, idempotencyKey?: string): Promise<Created> {
    const upload = request.source === 'simple' ? undefined : request.upload;
    try {
      // What the request asks for is checked before who may ask (as the API always answered: 422 before 403).
      if (request.source === 'simple') {
        const refused = imageRefProblem(request.fields.base_image, this.config.buildPolicy);
        if (refused) throw new UnprocessableError('forbidden_by_policy', `base_image: ${refused}`);
      }
      const userId = ownerFor(caller, request.fields.user_id);
      const claim = await this.deps.idempotency.claim(caller, idempotencyKey);
      if (claim?.kind === 'replay') {
        await discard(upload);
        return { record: await this.get(claim.instanceId, caller), replayed: true };
      }
      try {
        const record = await this.admit(userId, request);
        await claim?.release(record.id);
        return { record, replayed: false };
      } catch (err) {
        await claim?.release();
        throw err;
      }
    } catch (err) {
      await discard(upload);
      throw err;
    }
  }

  /** Checks a request of `userId` and creates its instance (the upload adopted into the artifact store). */
  private async admit(userId: string, request: CreateRequest): Promise<InstanceRecord> {
    const policy = this.config.buildPolicy;
    if (request.source === 'simple') {
      const { vscodeVersion } = await this.prepare(request.fields, userId, 'simple');
      return this.createRecord({ fields: request.fields, userId, vscodeVersion, source: 'simple', baseImage: request.fields.base_image, artifact: null });
    }
    const { upload, source } = request;
    const limits = { maxEntries: this.config.MAX_WORKSPACE_ENTRIES, maxUnpackedBytes: this.config.MAX_WORKSPACE_UNPACKED_BYTES };
    const plan = planBuild(
      source === 'devcontainer' ? { configText: await readFile(upload.path, 'utf8') } : await inspectWorkspaceArchive(upload.path, limits),
      policy,
    );
    const host = applyHostRequirements(request.fields, request.given, hostRequirementsOf(plan.config), this.config);
    const fields = host.fields;
    const { vscodeVersion } = await this.prepare(fields, userId, source);
    const artifact = await this.deps.artifacts.adopt(upload.path, upload.sha256);
    const build = { key: plan.key.key, family: plan.key.family };
    return this.createRecord({
      fields,
      userId,
      vscodeVersion,
      source,
      baseImage: baseImageOf(plan.config),
      artifact,
      build,
      warnings: mergeWarnings(configWarnings(plan.config), host.warnings),
      workspace: workspacePlacement(plan.config).placement,
      ports: forwardedPorts(plan.config).ports,
    });
  }

  /** Stores the record and queues its first job (a cache hit goes straight to provisioning). */
  private async createRecord(input: NewInstance): Promise<InstanceRecord> {
    const now = new Date().toISOString();
    const { user_id: _u, vscode_version: _v, ...resources } = input.fields;
    const user_id = input.userId;
    const { cachedBuilds } = this.deps;
    const hit = input.build ? await cachedBuilds.lookup(input.build.key) : undefined;
    let record: InstanceRecord | undefined;
    const build = input.build && { key: input.build.key, family: this.familyTag(user_id, input.build.family), cache: 'miss' as const };
    for (let attempt = 0; attempt < 5 && !record; attempt++) {
      const token = newAccessToken();
      const candidate = newInstanceRecord(
        {
          id: newInstanceId(user_id),
          userId: user_id,
          source: input.source,
          accessTokenHash: hashToken(token),
          accessTokenSealed: this.config.CODEBAY_SECRET_KEY.seal(token),
          baseImage: input.baseImage,
          artifact: input.artifact,
          resources,
          vscodeVersion: input.vscodeVersion,
        },
        now,
      );
      if (build) candidate.build = build;
      // What the image's hostRequirements are held to once it is built (the provisioner applies them).
      if (input.source !== 'simple')
        candidate.maxResources = { cpu: this.config.MAX_CPU_LIMIT, memory: this.config.MAX_MEMORY_LIMIT, storage: this.config.MAX_STORAGE_SIZE };
      if (input.warnings?.length) candidate.warnings = input.warnings;
      if (input.workspace) candidate.workspace = input.workspace;
      if (input.ports?.length) candidate.ports = input.ports;
      if (hit && build) {
        Object.assign(candidate, { status: 'Cached', ...cachedBuilds.fields(hit, build, candidate.warnings) });
      }
      if (await this.store.create(candidate)) record = candidate;
    }
    if (!record) throw new Error('could not allocate a unique instance id');
    try {
      if (hit) await cachedBuilds.settle(record.id, input.build!.key, hit, record.warnings ?? []);
      else await this.jobs.enqueue(input.source === 'simple' ? 'provision' : 'build', { instanceId: record.id });
    } catch (err) {
      // The record exists but no job does: say so on the record instead of leaving it waiting forever.
      await this.store
        .transition(record.id, ['Queued', 'Cached'], 'Failed', { failure: { phase: 'build', reason: 'could not enqueue the job' } })
        .catch(() => undefined);
      throw err;
    }
    this.logger.info({ instanceId: record.id, userId: record.userId, source: record.source, build: record.build }, hit ? 'instance cached' : 'instance queued');
    return record;
  }

  /** The instance, if it exists and the caller may see it (else 404 either way). */
  async get(id: string, caller: Caller): Promise<InstanceRecord> {
    const record = await this.store.get(id);
    if (!record) throw new NotFoundError(`instance ${id}`);
    return mustSee(caller, record);
  }

  async list(userId?: string): Promise<InstanceRecord[]> {
    const ids = userId ? await this.store.idsOfUser(userId) : await this.store.allIds();
    const records = await this.store.many(ids);
    return records.filter((r) => r.status !== 'Deleted').sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /**
   * Where a Queued instance's build waits (position, builds ahead, estimated start; see
   * JobQueues.buildQueuePlace): null for any other status, for an instance without a build
   * (simple; cache hits go straight on), for a job not waiting (a retry's backoff, just taken),
   * and when Redis does not answer (the response goes out without it, and a warning is logged).
   */
  async queuePlace(record: InstanceRecord): Promise<QueuePlace | null> {
    if (record.status !== 'Queued' || record.source === 'simple') return null;
    try {
      return (await this.jobs.buildQueuePlace(record.id)) ?? null;
    } catch (err) {
      this.logger.warn({ instanceId: record.id, err: (err as Error).message }, 'could not read the build queue position');
      return null;
    }
  }

  /** Marks the instance Deleting and hands the teardown to the provisioner. Idempotent. */
  async delete(id: string, caller: Caller): Promise<InstanceRecord> {
    const record = await this.get(id, caller);
    if (record.status === 'Deleted' || record.status === 'Deleting') return record;
    const moved = await this.store.transition(id, ['Queued', 'Building', 'Built', 'Cached', 'Provisioning', 'Running', 'Failed'], 'Deleting');
    if (!moved.ok && moved.current !== 'Deleting' && moved.current !== 'Deleted') throw new NotFoundError(`instance ${id}`);
    await this.jobs.enqueue('deprovision', { instanceId: id });
    if (moved.ok) this.deps.deletes?.inc();
    this.logger.info({ instanceId: id }, 'instance deletion queued');
    return this.get(id, caller);
  }
}

/** Removes an upload that is not kept (its request was refused or replayed). */
async function discard(upload: { path: string } | undefined): Promise<void> {
  if (upload) await rm(upload.path, { force: true });
}
