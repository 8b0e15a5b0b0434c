import {
  InputError,
  NotFoundError,
  TooManyRequestsError,
  newInstanceRecord,
  parseCpu,
  parseMemory,
  type CreateFields,
  type InstanceRecord,
  type LaunchConfig,
  type SourceKind,
} from '@codebay/contracts';
import { enqueueInstanceJob, hashToken, type BuildCache, type BuildLogStream, type CodebayQueues, type InstanceStore, type Logger } from '@codebay/platform';
import type { GatewayConfig } from './config.ts';
import type { Counter } from 'prom-client';
import { mustSee, type Caller } from './identity.ts';
import { newAccessToken, newInstanceId } from './tokens.ts';

export interface NewInstance {
  fields: CreateFields;
  /** The owner, settled from the caller and the request (see ownerFor). */
  userId: string;
  /** What prepare() returned, when the caller already ran it (before storing the upload). */
  prepared?: { vscodeVersion: string };
  source: SourceKind;
  baseImage: string | null;
  artifact: string | null;
  /** The build key of what was uploaded (devcontainer and workspace sources) and the config's own hash (`BuildKey.family`). */
  build?: { key: string; family: string };
}

/** Picks the editor version for a request, or says which ones exist. */
export function resolveVscodeVersion(requested: string | undefined, available: string[]): string {
  if (requested === undefined) return available[0]!;
  const match = available.find((v) => v === requested || v.startsWith(`${requested}.`));
  if (!match) {
    throw new InputError('unsupported_vscode_version', `vscode_version ${requested} is not available; available: ${available.join(', ')}`, {
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

/** The gateway's use-cases on instances: create (record + first job), read, delete. */
export class InstanceService {
  constructor(
    private readonly config: GatewayConfig,
    private readonly store: InstanceStore,
    private readonly queues: CodebayQueues,
    private readonly logger: Logger,
    private readonly cache: BuildCache,
    private readonly logs: BuildLogStream,
    private readonly cacheLookups?: Counter<'result'>,
  ) {}

  /**
   * The image of a build key when a builder built and recorded it and the registry still holds
   * that digest (see BuildCache). A registry that does not answer counts as a miss: the builder checks again.
   */
  private async cached(key: string): Promise<{ image: string; launch: LaunchConfig } | undefined> {
    try {
      const found = await this.cache.lookup(key);
      this.cacheLookups?.inc({ result: found ? 'hit' : 'miss' });
      return found;
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, key }, 'build cache lookup failed; queueing a build');
      return undefined;
    }
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

  /** Validates what is left to validate and checks the user's quotas; call before storing anything. */
  async prepare(fields: CreateFields, userId: string, source: SourceKind): Promise<{ vscodeVersion: string }> {
    checkResources(fields, this.config);
    const vscodeVersion = resolveVscodeVersion(fields.vscode_version, this.config.CODEBAY_VSCODE_VERSIONS);
    const live = (await this.store.many(await this.store.idsOfUser(userId))).filter((r) => !['Failed', 'Deleting', 'Deleted'].includes(r.status));
    if (live.length >= this.config.MAX_INSTANCES_PER_USER) {
      throw new TooManyRequestsError(
        `user ${userId} already has ${live.length} instances (the limit is ${this.config.MAX_INSTANCES_PER_USER}); delete one first`,
      );
    }
    const queued = live.filter((r) => r.status === 'Queued' || r.status === 'Building').length;
    if (source !== 'simple' && queued >= this.config.MAX_QUEUED_BUILDS_PER_USER) {
      throw new TooManyRequestsError(`user ${userId} already has ${queued} builds waiting or running (the limit is ${this.config.MAX_QUEUED_BUILDS_PER_USER})`);
    }
    return { vscodeVersion };
  }

  async create(input: NewInstance): Promise<InstanceRecord> {
    const { vscodeVersion } = input.prepared ?? (await this.prepare(input.fields, input.userId, input.source));
    const now = new Date().toISOString();
    const { user_id: _u, vscode_version: _v, ...resources } = input.fields;
    const user_id = input.userId;
    const hit = input.build ? await this.cached(input.build.key) : undefined;
    let record: InstanceRecord | undefined;
    const build = input.build && { key: input.build.key, family: this.familyTag(user_id, input.build.family) };
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
          vscodeVersion,
        },
        now,
      );
      if (build) candidate.build = { ...build, cache: hit ? 'hit' : 'miss' };
      if (hit) Object.assign(candidate, { status: 'Cached', devcontainerImage: hit.image, launch: hit.launch });
      if (await this.store.create(candidate)) record = candidate;
    }
    if (!record) throw new Error('could not allocate a unique instance id');
    if (hit) {
      await this.logs.append(record.id, [`codebay: build key ${input.build!.key}: already built as ${hit.image}; nothing to build`]);
      await this.logs.end(record.id, 'cached');
    }
    try {
      const kind = input.source === 'simple' || hit ? 'provision' : 'build';
      const retry = kind === 'build' ? { attempts: this.config.BUILD_ATTEMPTS, backoffMs: this.config.BUILD_BACKOFF_SECONDS * 1000 } : undefined;
      await enqueueInstanceJob(this.queues, kind, record.id, retry);
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

  /** Marks the instance Deleting and hands the teardown to the provisioner. Idempotent. */
  async delete(id: string, caller: Caller): Promise<InstanceRecord> {
    const record = await this.get(id, caller);
    if (record.status === 'Deleted' || record.status === 'Deleting') return record;
    const moved = await this.store.transition(id, ['Queued', 'Building', 'Built', 'Cached', 'Provisioning', 'Running', 'Failed'], 'Deleting');
    if (!moved.ok && moved.current !== 'Deleting' && moved.current !== 'Deleted') throw new NotFoundError(`instance ${id}`);
    await enqueueInstanceJob(this.queues, 'deprovision', id);
    this.logger.info({ instanceId: id }, 'instance deletion queued');
    return this.get(id, caller);
  }
}
