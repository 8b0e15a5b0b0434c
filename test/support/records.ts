import { redisKeys } from '@codebay/contracts';
import { createRedis } from '@codebay/platform';
import { components } from './components.ts';
import { readSse } from './sse.ts';
import type { Stack } from './stack.ts';

/**
 * Removes a suite's own instance records (each test user is random, so nothing else is
 * touched): the records, the per-user sets and the ids in the global set.
 */
export async function forgetUsers(...users: string[]): Promise<void> {
  const redis = createRedis(components().redisUrl, 'test-forget');
  try {
    for (const user of users) {
      const ids = await redis.smembers(redisKeys.userInstances(user));
      if (ids.length > 0) await redis.srem(redisKeys.allInstances(), ...ids);
      await redis.del(redisKeys.userInstances(user), ...ids.map((id) => redisKeys.instance(id)));
    }
  } finally {
    await redis.quit();
  }
}

/** An instance's build log as its lines (the JSON form of GET …/build-logs). */
export async function buildLogLines(stack: Stack, id: string): Promise<string[]> {
  const body = (await (await stack.api(`/api/instances/${id}/build-logs`)).json()) as { lines: { text: string }[] };
  return body.lines.map((l) => l.text);
}

/** The end event of an instance's build log, followed over SSE. */
export async function buildLogEnd(stack: Stack, id: string): Promise<{ outcome: string; reason: string | null }> {
  const events = await readSse(await stack.api(`/api/instances/${id}/build-logs?follow=1`), (e) => e.event === 'end', 120_000);
  return JSON.parse(events.at(-1)!.data) as { outcome: string; reason: string | null };
}
