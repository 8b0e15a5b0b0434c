import { newInstanceRecord, redisKeys, resourcesSchema, type InstanceRecord } from '@codebay/contracts';
import { BuildLogStream, InstanceStore, LogFollowers, MalformedRecordError, createRedis, type LogEntry, type Redis } from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';

function record(id: string, userId: string): InstanceRecord {
  return newInstanceRecord({
    id,
    userId,
    source: 'devcontainer',
    accessTokenHash: 'h',
    accessTokenSealed: 's',
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
    const keys = [
      ...(await redis.keys(redisKeys.instance(`${user}-*`))),
      ...(await redis.keys(redisKeys.buildLogs(`${user}-*`))),
      redisKeys.userInstances(user),
    ];
    const ids = await redis.smembers(redisKeys.userInstances(user));
    if (ids.length > 0) await redis.srem(redisKeys.allInstances(), ...ids);
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

  it('parses records when it reads them: a malformed one is refused naming the field, and left out of lists', async () => {
    const good = `${user}-m1`;
    const bad = `${user}-m2`;
    await store.create(record(good, user));
    await store.create(record(bad, user));
    await redis.hset(redisKeys.instance(bad), 'status', JSON.stringify('Exploded'), 'resources', JSON.stringify({ memory_limit: 7 }));
    await expect(store.get(bad)).rejects.toThrow(MalformedRecordError);
    await expect(store.get(bad)).rejects.toThrow(/status[\s\S]*resources/);
    expect((await store.many([good, bad])).map((r) => r.id)).toEqual([good]);
    await redis.hset(redisKeys.instance(bad), 'runtime', '{not json');
    await expect(store.get(bad)).rejects.toThrow(`instance record ${bad} holds a field that is not JSON`);
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
    expect(await redis.exists(redisKeys.instance(`${user}-nope`))).toBe(0);
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
    const followers = new LogFollowers(redis);
    const seen: string[] = [];
    await new Promise<void>((resolve) => {
      followers.subscribe(id, (entries[0] as { line: { id: string } }).line.id, (batch) => {
        for (const e of batch) {
          seen.push(e.kind === 'line' ? e.line.text.slice(0, 3) : `end:${e.end.outcome}`);
          if (e.kind === 'end') resolve();
        }
      });
    });
    await followers.close();
    expect(seen).toEqual(['two', 'xxx', 'end:success']);
    expect(await redis.ttl(redisKeys.buildLogs(id))).toBeGreaterThan(0);
  });

  it('feeds many followers of many streams from one blocking connection, each in order from its own cursor', async () => {
    const logs = new BuildLogStream(redis);
    const name = `test-followers-${randomBytes(3).toString('hex')}`;
    const own = createRedis(components().redisUrl, name);
    // A long block: a follower that joined without waking the pending XREAD would time the test out.
    const followers = new LogFollowers(own, { blockMs: 60_000 });
    const ids = [`${user}-f1`, `${user}-f2`, `${user}-f3`];
    await logs.append(ids[0]!, ['a0', 'a1']);
    const first = await logs.read(ids[0]!);
    const seen = new Map<string, string[]>();
    const done: Promise<void>[] = [];
    const follow = (key: string, instanceId: string, after: string) =>
      done.push(
        new Promise<void>((resolve) => {
          seen.set(key, []);
          followers.subscribe(instanceId, after, (batch: LogEntry[]) => {
            for (const e of batch) {
              seen.get(key)!.push(e.kind === 'line' ? e.line.text : `end:${e.end.outcome}`);
              if (e.kind === 'end') resolve();
            }
          });
        }),
      );
    for (let i = 0; i < 50; i++) follow(`s1-${i}`, ids[0]!, '0');
    follow('s1-resumed', ids[0]!, first[0]!.kind === 'line' ? first[0]!.line.id : '0');
    for (let i = 0; i < 20; i++) follow(`s2-${i}`, ids[1]!, '0');
    await logs.append(ids[1]!, ['b0']);
    // Joining while the shared XREAD is blocked.
    await new Promise((r) => setTimeout(r, 200));
    follow('s3', ids[2]!, '0');
    await logs.append(ids[2]!, ['c0', 'c1']);
    // Nothing else is written until s3 has its lines: only the wake can have fed it.
    for (let i = 0; i < 250 && seen.get('s3')!.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen.get('s3')).toEqual(['c0', 'c1']);
    await logs.append(ids[0]!, ['a2']);
    await Promise.all([logs.end(ids[0]!, 'success'), logs.end(ids[1]!, 'failure', 'boom'), logs.end(ids[2]!, 'success')]);
    await Promise.race([Promise.all(done), new Promise((_, reject) => setTimeout(() => reject(new Error('followers not fed within 10 s')), 10_000))]);

    for (let i = 0; i < 50; i++) expect(seen.get(`s1-${i}`)).toEqual(['a0', 'a1', 'a2', 'end:success']);
    expect(seen.get('s1-resumed')).toEqual(['a1', 'a2', 'end:success']);
    for (let i = 0; i < 20; i++) expect(seen.get(`s2-${i}`)).toEqual(['b0', 'end:failure']);
    expect(seen.get('s3')).toEqual(['c0', 'c1', 'end:success']);
    expect(followers.size).toBe(0);
    const clients = ((await redis.client('LIST')) as string).split('\n').filter((l) => l.includes(`name=${name}`));
    expect(clients).toHaveLength(2); // the command connection and the one blocking reader
    await followers.close();
    own.disconnect();
  });

  it('stops feeding a closed follower and keeps feeding the others', async () => {
    const logs = new BuildLogStream(redis);
    const followers = new LogFollowers(redis, { blockMs: 60_000 });
    const id = `${user}-closing`;
    const a: string[] = [];
    const b: string[] = [];
    const text = (e: LogEntry) => (e.kind === 'line' ? e.line.text : 'end');
    const sub = followers.subscribe(id, '0', (batch) => a.push(...batch.map(text)));
    const ended = new Promise<void>((resolve) =>
      followers.subscribe(id, '0', (batch) => {
        b.push(...batch.map(text));
        if (batch.at(-1)?.kind === 'end') resolve();
      }),
    );
    await logs.append(id, ['one']);
    for (let i = 0; i < 100 && a.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    sub.close();
    await logs.append(id, ['two']);
    await logs.end(id, 'success');
    await ended;
    expect(a).toEqual(['one']);
    expect(b).toEqual(['one', 'two', 'end']);
    await followers.close();
  });
});
