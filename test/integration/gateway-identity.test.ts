import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { forgetUsers } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { addApiToken } from '../support/tenants.ts';
import { waitFor } from '../support/wait.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SAMPLE = join(ROOT, 'samples/simple-devcontainer.json');

/** Per-user API tokens against the real gateway and Redis: each user sees and touches only their own instances. */
describe('gateway identity: per-user tokens', () => {
  let stack: Stack;
  const tag = randomBytes(3).toString('hex');
  const alice = `alice-${tag}`;
  const bob = `bob-${tag}`;
  const file = join(mkdtempSync(join(tmpdir(), 'codebay-tokens-')), 'tokens.json');
  const addToken = (user: string) => addApiToken(file, user);
  let aliceToken: string;
  let bobToken: string;
  let aliceInstance: InstanceResponse;

  beforeAll(async () => {
    aliceToken = addToken(alice);
    bobToken = addToken(bob);
    stack = await startStack({ name: 'identity', services: ['gateway'], env: { CODEBAY_TOKENS_FILE: file } });
  });
  afterAll(async () => {
    await stack?.stop();
    // This suite's records only (no provisioner ran, so nothing else exists for them).
    await forgetUsers(alice, bob, `carol-${tag}`);
  });

  const as =
    (token: string) =>
    (path: string, init: RequestInit = {}) =>
      stack.api(path, { ...init, token });
  const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  it('serves its OpenAPI document and page without a token', async () => {
    const doc = (await (await fetch(`${stack.url}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/instances/{id}/build-logs');
    const page = await fetch(`${stack.url}/api/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
  });

  it('sends no CORS headers unless origins are configured', async () => {
    const res = await fetch(`${stack.url}/api/instances`, {
      method: 'OPTIONS',
      headers: { origin: 'https://ui.example', 'access-control-request-method': 'GET' },
    });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('stores tokens only as hashes', () => {
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(aliceToken);
    expect(text).not.toContain(bobToken);
    expect(JSON.parse(text).tokens).toHaveLength(2);
  });

  it("a user's create takes their own user_id, implied or given, and refuses another's", async () => {
    const implied = await as(aliceToken)('/api/instances/simple', json({ base_image: 'debian:bookworm' }));
    expect(implied.status).toBe(202);
    aliceInstance = (await implied.json()) as InstanceResponse;
    expect(aliceInstance.user_id).toBe(alice);
    expect(aliceInstance.instance_id.startsWith(`${alice}-`)).toBe(true);
    expect((await as(aliceToken)('/api/instances/simple', json({ user_id: alice, base_image: 'debian:bookworm' }))).status).toBe(202);
    const other = await as(aliceToken)('/api/instances/simple', json({ user_id: bob, base_image: 'debian:bookworm' }));
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe('forbidden_user');
    const form = new FormData();
    form.set('user_id', bob);
    form.set('devcontainer_json', new Blob([readFileSync(SAMPLE)]), 'devcontainer.json');
    expect((await as(aliceToken)('/api/instances/devcontainer', { method: 'POST', body: form })).status).toBe(403);
  });

  it("someone else's instance is 404 on every route, under /api and bare", async () => {
    const id = aliceInstance.instance_id;
    for (const prefix of ['/api', '']) {
      for (const [method, path] of [
        ['GET', `/instances/${id}`],
        ['GET', `/instances/${id}/build-logs`],
        ['GET', `/instances/${id}/build-status`],
        ['DELETE', `/instances/${id}`],
      ] as const) {
        const res = await as(bobToken)(`${prefix}${path}`, { method });
        expect(res.status, `${method} ${prefix}${path}`).toBe(404);
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
      }
    }
    // Bob's failed delete changed nothing.
    expect(((await (await as(aliceToken)(`/api/instances/${id}`)).json()) as InstanceResponse).status).not.toMatch(/Delet/);
  });

  it('lists only the caller’s instances; the admin sees everyone’s and can filter', async () => {
    await as(bobToken)('/api/instances/simple', json({ base_image: 'debian:bookworm' }));
    const mine = (await (await as(bobToken)(`/api/instances?user_id=${alice}`)).json()) as { instances: InstanceResponse[] };
    expect(mine.instances.length).toBeGreaterThan(0);
    expect(mine.instances.every((i) => i.user_id === bob)).toBe(true);
    const all = (await (await stack.api('/api/instances')).json()) as { instances: InstanceResponse[] };
    expect(all.instances.some((i) => i.user_id === alice) && all.instances.some((i) => i.user_id === bob)).toBe(true);
    const filtered = (await (await stack.api(`/api/instances?user_id=${alice}`)).json()) as { instances: InstanceResponse[] };
    expect(filtered.instances.every((i) => i.user_id === alice)).toBe(true);
  });

  it('the owner can delete; an admin create must name the user', async () => {
    expect((await as(aliceToken)(`/api/instances/${aliceInstance.instance_id}`, { method: 'DELETE' })).status).toBe(202);
    const missing = await stack.api('/api/instances/simple', json({ base_image: 'debian:bookworm' }));
    expect(missing.status).toBe(400);
  });

  it('picks up a token added while running, and refuses unknown tokens', async () => {
    const carol = `carol-${tag}`;
    const carolToken = addToken(carol);
    await waitFor('the new token', async () => ((await as(carolToken)('/api/instances')).status === 200 ? true : undefined), 15_000, 500);
    expect((await as(`${carolToken}x`)('/api/instances')).status).toBe(401);
  });
});
