import { INSTANCE_STATUSES, instanceRecordSchema, redisKeys, type InstanceRecord, type InstanceStatus } from '@codebay/contracts';
import type { Redis } from 'ioredis';
import { z } from 'zod';

/**
 * Compare-and-set on the status field: the transition happens only when the
 * current status is one of the allowed ones, so a delete can never be
 * overwritten by a build finishing late, and two workers cannot both claim a step.
 * Fields are stored JSON-encoded; ARGV[1] is the JSON array of allowed statuses.
 */
const TRANSITION_LUA = `
local cur = redis.call('HGET', KEYS[1], 'status')
if not cur then return {0, ''} end
local allowed = cjson.decode(ARGV[1])
local ok = false
for _, s in ipairs(allowed) do
  if cur == ('"' .. s .. '"') then ok = true end
end
if not ok then return {0, cur} end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return {1, cur}
`;

/** Creates the record only if no record of that id exists. ARGV[1] is the raw id, then field/value pairs. */
const CREATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
`;

/** Sets fields on an existing record, leaving the status alone. */
const PATCH_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
`;

export type TransitionResult = { ok: true } | { ok: false; current: InstanceStatus | null };

function encode(patch: Partial<InstanceRecord>): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (v !== undefined) args.push(k, JSON.stringify(v));
  }
  return args;
}

/** A stored record that does not parse: another version wrote it, or a hand edit. */
export class MalformedRecordError extends Error {
  override name = 'MalformedRecordError';
}

/** A record read back: each field JSON-decoded, then the whole checked with `instanceRecordSchema`. Throws MalformedRecordError naming the fields. */
function decode(id: string, hash: Record<string, string>): InstanceRecord {
  const out: Record<string, unknown> = {};
  try {
    for (const [k, v] of Object.entries(hash)) out[k] = JSON.parse(v);
  } catch (err) {
    throw new MalformedRecordError(`instance record ${id} holds a field that is not JSON: ${(err as Error).message}`);
  }
  const parsed = instanceRecordSchema.safeParse(out);
  if (!parsed.success) throw new MalformedRecordError(`instance record ${id} is malformed: ${z.prettifyError(parsed.error)}`);
  return parsed.data as InstanceRecord;
}

const statusSchema = z.enum(INSTANCE_STATUSES);

/** Instance records in Redis: one hash per instance plus per-user and global id sets. */
export class InstanceStore {
  constructor(private readonly redis: Redis) {}

  /** Writes a new record; false if the id is taken. */
  async create(record: InstanceRecord): Promise<boolean> {
    const keys = [redisKeys.instance(record.id), redisKeys.userInstances(record.userId), redisKeys.allInstances()];
    const created = await this.redis.eval(CREATE_LUA, keys.length, ...keys, record.id, ...encode(record));
    return created === 1;
  }

  async get(id: string): Promise<InstanceRecord | null> {
    const hash = await this.redis.hgetall(redisKeys.instance(id));
    if (!hash || Object.keys(hash).length === 0) return null;
    return decode(id, hash);
  }

  async transition(id: string, from: readonly InstanceStatus[], to: InstanceStatus, patch: Partial<InstanceRecord> = {}): Promise<TransitionResult> {
    const now = new Date().toISOString();
    const args = encode({ ...patch, status: to, updatedAt: now });
    const [ok, cur] = (await this.redis.eval(TRANSITION_LUA, 1, redisKeys.instance(id), JSON.stringify(from), ...args)) as [number, string];
    if (ok === 1) return { ok: true };
    return { ok: false, current: cur ? statusSchema.parse(JSON.parse(cur)) : null };
  }

  /** Sets fields without touching the status (only on an existing record). */
  async patch(id: string, patch: Partial<InstanceRecord>): Promise<boolean> {
    const { status: _ignored, ...rest } = patch;
    const done = await this.redis.eval(PATCH_LUA, 1, redisKeys.instance(id), ...encode({ ...rest, updatedAt: new Date().toISOString() }));
    return done === 1;
  }

  async idsOfUser(userId: string): Promise<string[]> {
    return this.redis.smembers(redisKeys.userInstances(userId));
  }

  async allIds(): Promise<string[]> {
    return this.redis.smembers(redisKeys.allInstances());
  }

  /** The records of `ids` that exist and parse, in order (a malformed one is left out; `get` names its problem). */
  async many(ids: string[]): Promise<InstanceRecord[]> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(redisKeys.instance(id));
    const results = (await pipeline.exec()) ?? [];
    const out: InstanceRecord[] = [];
    for (const [i, [err, hash]] of results.entries()) {
      if (err || !hash || Object.keys(hash as object).length === 0) continue;
      // One malformed record must not hide every other: it is left out here (get() names its problem).
      try {
        out.push(decode(ids[i]!, hash as Record<string, string>));
      } catch (e) {
        if (!(e instanceof MalformedRecordError)) throw e;
      }
    }
    return out;
  }

  /** Just the status of each id (one pipelined HGET each; cheaper than whole records). */
  async statuses(ids: string[]): Promise<InstanceStatus[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(redisKeys.instance(id), 'status');
    const results = (await pipeline.exec()) ?? [];
    return results.flatMap(([err, v]) => {
      const status = !err && typeof v === 'string' ? statusSchema.safeParse(JSON.parse(v)) : undefined;
      return status?.success ? [status.data] : [];
    });
  }

  /** Status and last change of each id that has a record (one pipelined HMGET each): for gauges. */
  async summaries(ids: string[]): Promise<{ status: InstanceStatus; updatedAt: string | null }[]> {
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(redisKeys.instance(id), 'status', 'updatedAt');
    const results = (await pipeline.exec()) ?? [];
    return results.flatMap(([err, v]) => {
      const json = (x: string | null): unknown => {
        try {
          return typeof x === 'string' ? JSON.parse(x) : null;
        } catch {
          return null;
        }
      };
      const [status, updatedAt] = (err ? [] : (v as (string | null)[])).map(json);
      const parsed = statusSchema.safeParse(status);
      return parsed.success ? [{ status: parsed.data, updatedAt: typeof updatedAt === 'string' ? updatedAt : null }] : [];
    });
  }

  /** Keeps a deleted instance's record visible for a while, then lets Redis drop it. */
  async expireDeleted(id: string, userId: string, seconds: number): Promise<void> {
    await this.redis.multi().expire(redisKeys.instance(id), seconds).srem(redisKeys.userInstances(userId), id).srem(redisKeys.allInstances(), id).exec();
  }
}
