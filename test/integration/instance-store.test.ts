import { newInstanceRecord, resourcesSchema, type InstanceRecord } from '@codebay/contracts';
import { BuildLogStream, InstanceStore, createRedis, type Redis } from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';

function record(id: string, userId: string): InstanceRecord {
  return newInstanceRecord({
    id,
    userId,
    source: 'devcontainer',
    accessToken: 'token',
    baseImage: 'debian:bookworm',
    artifact: null,
    resources: resourcesSchema.parse({}),
    vscodeVersion: '1.100.3',
  });
}

/** The instance record and build log stream against the real Redis. */
describe('InstanceStore and BuildLogStream on Redis', () => {
  let redis: Redis;
  let store: InstanceStore;
  const user = `store-${randomBytes(3).toString('hex')}`;

  beforeAll(() => {
    redis = createRedis(components().redisUrl, 'test-store');
    store = new InstanceStore(redis);
  });
  afterAll(async () => {
    // This suite's records only: everything keyed by its own random user.
    const keys = [...(await redis.keys(`codebay:instance:${user}-*`)), ...(await redis.keys(`codebay:build:${user}-*`)), `codebay:user:${user}:instances`];
    const ids = await redis.smembers(`codebay:user:${user}:instances`);
    if (ids.length > 0) await redis.srem('codebay:instances', ...ids);
    await redis.del(...keys);
    await redis.quit();
  });

  it('creates once per id and indexes by user', async () => {
    const id = `${user}-a`;
    expect(await store.create(record(id, user))).toBe(true);
    expect(await store.create(record(id, user))).toBe(false);
    expect(await store.idsOfUser(user)).toContain(id);
    expect(await store.get(id)).toMatchObject({ id, userId: user, status: 'Queued', resources: { memory_limit: '2Gi' } });
  });

  it('transitions only from an allowed status: a delete is never overwritten by a late build', async () => {
    const id = `${user}-b`;
    await store.create(record(id, user));
    expect(await store.transition(id, ['Queued'], 'Building')).toEqual({ ok: true });
    expect(await store.transition(id, ['Building'], 'Deleting')).toEqual({ ok: true });
    expect(await store.transition(id, ['Building'], 'Built', { devcontainerImage: 'x' })).toEqual({ ok: false, current: 'Deleting' });
    const r = await store.get(id);
    expect(r?.status).toBe('Deleting');
    expect(r?.devcontainerImage).toBeNull();
    expect(await store.transition(`${user}-missing`, ['Queued'], 'Building')).toEqual({ ok: false, current: null });
  });

  it('lets exactly one of many concurrent claimers win', async () => {
    const id = `${user}-c`;
    await store.create(record(id, user));
    const results = await Promise.all(Array.from({ length: 20 }, () => store.transition(id, ['Queued'], 'Building')));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
  });

  it('patches fields without touching the status, and not at all when the record is gone', async () => {
    const id = `${user}-d`;
    await store.create(record(id, user));
    expect(await store.patch(id, { workspaceSeeded: true })).toBe(true);
    expect((await store.get(id))?.workspaceSeeded).toBe(true);
    expect(await store.patch(`${user}-nope`, { workspaceSeeded: true })).toBe(false);
    expect(await redis.exists(`codebay:instance:${user}-nope`)).toBe(0);
  });

  it('keeps a build log in order, ends it once, and follows it from any id', async () => {
    const logs = new BuildLogStream(redis);
    const id = `${user}-logs`;
    await logs.append(id, ['one', 'two', 'x'.repeat(10_000)]);
    await logs.end(id, 'success');
    const entries = await logs.read(id);
    expect(entries.map((e) => (e.kind === 'line' ? e.line.text.slice(0, 3) : e.end.outcome))).toEqual(['one', 'two', 'xxx', 'success']);
    const long = entries[2]!;
    expect(long.kind === 'line' && long.line.text.length < 10_000 && long.line.text.includes('line cut')).toBe(true);
    // Resuming after the first line yields the rest and stops at the end entry.
    const blocking = redis.duplicate();
    const seen: string[] = [];
    for await (const e of logs.follow(blocking, id, (entries[0] as { line: { id: string } }).line.id, new AbortController().signal)) {
      seen.push(e.kind === 'line' ? e.line.text.slice(0, 3) : `end:${e.end.outcome}`);
    }
    blocking.disconnect();
    expect(seen).toEqual(['two', 'xxx', 'end:success']);
    expect(await redis.ttl(`codebay:build:${id}:logs`)).toBeGreaterThan(0);
  });
});
