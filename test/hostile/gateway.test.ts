import type { InstanceResponse } from '@codebay/contracts';
import { BuildLogStream, createRedis } from '@codebay/platform';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FOLLOWERS_PER_INSTANCE, MAX_UNREAD_BYTES } from '../../services/gateway/src/http/build-logs.ts';
import { components } from '../support/components.ts';
import { startHostileStack, type HostileStack } from '../support/tenants.ts';
import { waitFor } from '../support/wait.ts';
import { salt } from '../support/workspaces.ts';

const sleepFalse = (ms: number) => new Promise<false>((resolve) => setTimeout(() => resolve(false), ms));

/** Resident memory of a process, in bytes (from /proc). */
function rss(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) * 1024;
}

/**
 * A hostile tenant against the gateway every tenant's editor and API go through: its memory
 * (build-log followers that never read) — the real gateway and Redis; the log is written
 * into Redis as a builder would write a build's output.
 */
describe('hostile tenant: the gateway', () => {
  let h: HostileStack;
  let own: InstanceResponse;
  const open: ClientRequest[] = [];
  const c = components();

  beforeAll(async () => {
    h = await startHostileStack('hostile-gateway', {}, ['gateway']);
    // A configuration of its own: no build of it exists, so its log stays open (no builder runs here).
    const res = await h.attacker.createDevcontainer({ image: 'debian:bookworm', containerEnv: { RUN: salt() } });
    expect(res.status).toBe(202);
    own = (await res.json()) as InstanceResponse;
  });
  afterAll(async () => {
    for (const r of open) r.destroy();
    await h?.stop();
  });

  /** A follower of a build log that reads nothing after the headers (its response stays paused, so the socket's buffers fill and stay full). */
  function stalledFollower(instanceId: string): Promise<{ status: number; res: IncomingMessage }> {
    return new Promise((resolve, reject) => {
      const req = request(`${h.stack.url}/api/instances/${instanceId}/build-logs?follow=1`, { headers: { authorization: `Bearer ${h.attacker.token}` } });
      open.push(req);
      req.on('response', (res) => {
        res.pause();
        resolve({ status: res.statusCode ?? 0, res });
      });
      req.on('error', reject);
      req.end();
    });
  }

  it(`a follower that never reads is cut off once ${MAX_UNREAD_BYTES} bytes wait for it, and the gateway's memory stays bounded`, async () => {
    const gateway = h.stack.processes.get('gateway')!.pid!;
    const follower = await stalledFollower(own.instance_id);
    expect(follower.status).toBe(200);
    const before = rss(gateway);
    // A chatty build: 40 MB of log lines, far more than socket buffers hold.
    const redis = createRedis(c.redisUrl, 'test-hostile-logs');
    try {
      const logs = new BuildLogStream(redis);
      const line = 'x'.repeat(8_000);
      for (let batch = 0; batch < 50; batch++) await logs.append(own.instance_id, Array(100).fill(line));
    } finally {
      await redis.quit();
    }
    // Read what was buffered: a follower the gateway cut off ends (no end event: the log has none);
    // one it kept would stay open, sending keep-alives.
    let received = 0;
    const ended = new Promise<void>((resolve) => {
      follower.res.on('data', (c: Buffer) => (received += c.length));
      follower.res
        .on('end', resolve)
        .on('close', resolve)
        .on('error', () => resolve());
    });
    follower.res.resume();
    await waitFor(
      'the gateway to have cut the stalled follower off',
      async () => ((await Promise.race([ended.then(() => true), sleepFalse(250)])) ? true : undefined),
      30_000,
      0,
    );
    expect(received).toBeLessThan(40 * 1024 * 1024);
    expect(rss(gateway) - before).toBeLessThan(64 * 1024 * 1024);
  });

  it(`an instance's log takes at most ${MAX_FOLLOWERS_PER_INSTANCE} followers: the next gets 429`, async () => {
    // An instance of its own with an empty log: no follower is cut off for unread bytes meanwhile.
    const quiet = (await (await h.attacker.createDevcontainer({ image: 'debian:bookworm', containerEnv: { RUN: salt() } })).json()) as InstanceResponse;
    const followers = await Promise.all(Array.from({ length: MAX_FOLLOWERS_PER_INSTANCE }, () => stalledFollower(quiet.instance_id)));
    expect(followers.map((f) => f.status)).toEqual(Array(MAX_FOLLOWERS_PER_INSTANCE).fill(200));
    const extra = await h.attacker.api(`/api/instances/${quiet.instance_id}/build-logs?follow=1`);
    expect(extra.status).toBe(429);
    expect(((await extra.json()) as { error: { code: string } }).error.code).toBe('quota_exceeded');
    // The victim's own API still answers at once.
    const t0 = Date.now();
    expect((await h.victim.api('/api/instances')).status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(2_000);
  });
});
