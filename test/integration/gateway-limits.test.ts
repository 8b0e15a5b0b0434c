import { redisKeys, type InstanceResponse } from '@codebay/contracts';
import { createRedis } from '@codebay/platform';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { forgetUsers } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';

/** Idempotent creates and per-user quotas, against the real gateway and Redis. */
describe('gateway: Idempotency-Key and quotas', () => {
  let stack: Stack;
  const tag = randomBytes(3).toString('hex');
  const users = { idem: `idem-${tag}`, other: `other-${tag}`, quota: `quota-${tag}`, builds: `builds-${tag}`, hashA: `hash-a-${tag}`, hashB: `hash-b-${tag}` };

  beforeAll(async () => {
    stack = await startStack({
      name: 'limits',
      services: ['gateway'],
      env: { MAX_INSTANCES_PER_USER: '2', MAX_QUEUED_BUILDS_PER_USER: '1', CORS_ORIGINS: 'https://ui.example' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await forgetUsers(...Object.values(users));
    const redis = createRedis(components().redisUrl, 'test-limits');
    for (const key of await redis.keys(redisKeys.idempotency('*', `*${tag}*`))) await redis.del(key);
    await redis.quit();
  });

  const simple = (user: string, key?: string) =>
    stack.api('/api/instances/simple', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) },
      body: JSON.stringify({ user_id: user, base_image: 'debian:bookworm' }),
    });
  const count = async (user: string) => ((await (await stack.api(`/api/instances?user_id=${user}`)).json()) as { instances: unknown[] }).instances.length;

  it('answers CORS only for the configured origins', async () => {
    const preflight = (origin: string) =>
      fetch(`${stack.url}/api/instances`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
    const allowed = await preflight('https://ui.example');
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://ui.example');
    expect((await preflight('https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('a retried create with the same Idempotency-Key returns the same instance and creates nothing more', async () => {
    const key = `create-${tag}`;
    const first = await simple(users.idem, key);
    expect(first.status).toBe(202);
    const a = (await first.json()) as InstanceResponse;
    const again = await simple(users.idem, key);
    expect(again.status).toBe(202);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(((await again.json()) as InstanceResponse).instance_id).toBe(a.instance_id);
    expect(await count(users.idem)).toBe(1);
  });

  it('concurrent retries make one instance (the others replay it or are told to retry)', async () => {
    const key = `burst-${tag}`;
    const results = await Promise.all(Array.from({ length: 8 }, () => simple(users.other, key)));
    const ok = results.filter((r) => r.status === 202);
    expect(results.every((r) => r.status === 202 || r.status === 409)).toBe(true);
    const ids = new Set(await Promise.all(ok.map(async (r) => ((await r.json()) as InstanceResponse).instance_id)));
    expect(ids.size).toBe(1);
    expect(await count(users.other)).toBe(1);
  });

  it('a failed create frees its key, and a malformed key is refused', async () => {
    const key = `bad-${tag}`;
    const bad = await stack.api('/api/instances/simple', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ user_id: users.idem, base_image: 'not an image' }),
    });
    expect(bad.status).toBe(400);
    expect((await simple(users.idem, key)).status).toBe(202);
    const res = await simple(users.idem, 'spaces are not allowed');
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_idempotency_key');
  });

  it('refuses a user past the instance quota with 429, creating nothing', async () => {
    expect((await simple(users.quota)).status).toBe(202);
    expect((await simple(users.quota)).status).toBe(202);
    const over = await simple(users.quota);
    expect(over.status).toBe(429);
    const body = (await over.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('quota_exceeded');
    expect(body.error.message).toMatch(/limit is 2/);
    expect(await count(users.quota)).toBe(2);
  });

  it('refuses a second queued build for a user with 429 and stores no upload', async () => {
    // A configuration no one has built (else the first create is a cache hit, not a queued build).
    const config = JSON.stringify({ image: 'debian:bookworm', containerEnv: { QUOTA_TEST: `${tag}-${Date.now()}` } });
    const form = () => {
      const f = new FormData();
      f.set('user_id', users.builds);
      f.set('devcontainer_json', new Blob([config]), 'devcontainer.json');
      return f;
    };
    expect((await stack.api('/api/instances/devcontainer', { method: 'POST', body: form() })).status).toBe(202);
    const stored = readdirSync(join(stack.artifactDir, 'sha256')).length;
    const over = await stack.api('/api/instances/devcontainer', { method: 'POST', body: form() });
    expect(over.status).toBe(429);
    expect(readdirSync(join(stack.artifactDir, 'incoming'))).toHaveLength(0);
    expect(readdirSync(join(stack.artifactDir, 'sha256'))).toHaveLength(stored);
    expect(await count(users.builds)).toBe(1);
  });

  it('stores an upload under the sha256 of its bytes, hashed as it streamed in, once for identical uploads', async () => {
    const bytes = Buffer.from(JSON.stringify({ image: 'debian:bookworm', name: `hash ${tag}` }));
    const digest = createHash('sha256').update(bytes).digest('hex');
    for (const user of [users.hashA, users.hashB]) {
      const f = new FormData();
      f.set('user_id', user);
      f.set('devcontainer_json', new Blob([bytes]), 'devcontainer.json');
      expect((await stack.api('/api/instances/devcontainer', { method: 'POST', body: f })).status).toBe(202);
    }
    expect(readFileSync(join(stack.artifactDir, 'sha256', digest)).equals(bytes)).toBe(true);
    expect(readdirSync(join(stack.artifactDir, 'sha256')).filter((name) => name === digest)).toHaveLength(1);
    expect(readdirSync(join(stack.artifactDir, 'incoming'))).toHaveLength(0);
  });
});
