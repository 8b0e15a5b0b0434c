import { JOBS, redisKeys, type InstanceResponse } from '@codebay/contracts';
import { JobQueues } from '@codebay/platform';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { createFromDevcontainer, createFromWorkspace, getInstance, waitForStatus } from '../support/instances.ts';
import { forgetUsers } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { buildStepsRunning, salt, workspaceTarball } from '../support/workspaces.ts';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A build's place in the queue, read from real Redis and BullMQ: the positions JobQueues gives
 * are the order a real BullMQ worker takes the jobs in.
 */
describe('build queue position: JobQueues on real Redis and BullMQ', () => {
  const prefix = `codebay-test:queue-${randomBytes(4).toString('hex')}`;
  let redis: Redis;
  let jobs: JobQueues;
  let worker: Worker | undefined;

  beforeAll(() => {
    redis = new Redis(components().redisUrl, { maxRetriesPerRequest: null, connectionName: 'codebay-test-queue-position' });
    jobs = new JobQueues(redis, prefix);
  });
  afterAll(async () => {
    await worker?.close(true);
    await jobs.queue('build').obliterate({ force: true });
    await redis.del(redisKeys.recentBuildSeconds(prefix));
    await jobs.close();
    await redis.quit();
  });

  it('gives 1-based positions in the order a worker takes the jobs (FIFO, then prioritized by priority), the running builds and an estimate', async () => {
    const ids = ['qa-a', 'qa-b', 'qa-c'];
    for (const id of ids) await jobs.enqueue('build', { instanceId: id });
    // Jobs with a priority go to BullMQ's prioritized set, taken only when the wait list is empty (lower number first).
    const queue = jobs.queue('build');
    await queue.add('build', { instanceId: 'qa-p5' }, { jobId: JOBS.build.id({ instanceId: 'qa-p5' }), priority: 5 });
    await queue.add('build', { instanceId: 'qa-p1' }, { jobId: JOBS.build.id({ instanceId: 'qa-p1' }), priority: 1 });

    // No builder working, no build finished: places, no estimate.
    expect(await jobs.buildQueuePlace('qa-a')).toEqual({ position: 1, waiting: 5, builds_ahead: 0, running: 0, estimated_start_seconds: null });
    expect((await jobs.buildQueuePlace('qa-c'))?.position).toBe(3);
    expect((await jobs.buildQueuePlace('qa-p1'))?.position).toBe(4);
    expect((await jobs.buildQueuePlace('qa-p5'))?.position).toBe(5);
    expect(await jobs.buildQueuePlace('qa-none')).toBeUndefined();

    // A worker takes one job and holds it; recent builds took 10 s and 20 s (mean 15 s).
    await jobs.recordBuildDuration(10);
    await jobs.recordBuildDuration(20);
    const taken: string[] = [];
    // Each job is held until the test lets it go: the worker (concurrency 1) takes the next one then.
    const releases: Array<() => void> = [];
    worker = new Worker(
      JOBS.build.queue,
      async (job) => {
        taken.push((job.data as { instanceId: string }).instanceId);
        await new Promise<void>((resolve) => releases.push(resolve));
      },
      { connection: redis.duplicate(), prefix, concurrency: 1 },
    );
    await waitFor('the worker to take the first job', () => (releases.length === 1 ? true : undefined), 10_000, 20);
    expect(taken).toEqual(['qa-a']);
    expect(await jobs.buildQueuePlace('qa-a')).toBeUndefined(); // running, no longer waiting
    // qa-c is 2nd of 4 with one builder busy: 2 × 15 s ÷ 1.
    expect(await jobs.buildQueuePlace('qa-c')).toEqual({ position: 2, waiting: 4, builds_ahead: 1, running: 1, estimated_start_seconds: 30 });

    // Predicted places of the waiting ones, then the order the worker really takes them.
    const waiting = ['qa-b', 'qa-c', 'qa-p1', 'qa-p5'];
    const predicted = await Promise.all(waiting.map(async (id) => [(await jobs.buildQueuePlace(id))!.position, id] as const));
    expect(predicted.map(([p]) => p)).toEqual([1, 2, 3, 4]);
    const predictedOrder = [...predicted].sort((a, b) => a[0] - b[0]).map(([, id]) => id);
    for (let n = 2; n <= 5; n++) {
      releases[n - 2]!();
      await waitFor(`the worker to take job ${n}`, () => (releases.length === n ? true : undefined), 10_000, 20);
    }
    releases[4]!();
    expect(taken.slice(1)).toEqual(predictedOrder);
  });
});

/** The API and a real builder: an instance behind others says where it waits. */
describe('build queue position: through the gateway, one builder', () => {
  let stack: Stack;
  const user = `queue-${salt()}`;

  beforeAll(async () => {
    stack = await startStack({ name: 'queue', services: ['gateway', 'builder'], env: { BUILDER_NAME: 'builder-queue' } });
  });
  afterAll(async () => {
    await stack?.stop();
    await forgetUsers(user);
  });

  it('instances waiting behind a build show position, builds ahead and an estimate from the builds finished before', async () => {
    // One build finishes first: the estimate has a recent duration to go by.
    const dir = await mkdtemp(join(tmpdir(), 'codebay-queue-'));
    await writeFile(join(dir, 'devcontainer.json'), JSON.stringify({ image: 'debian:bookworm', containerEnv: { RUN: salt() } }));
    const quick = await createFromDevcontainer(stack, user, join(dir, 'devcontainer.json'));
    await waitForStatus(stack, quick.instance_id, ['Built'], 180_000);
    expect((await getInstance(stack, quick.instance_id)).queue).toBeNull();

    // The only builder busy with a slow step.
    const marker = `queue-block-${salt()}`;
    const blocker = await createFromWorkspace(
      stack,
      user,
      await workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo ${marker} && sleep 120\n` }),
    );
    await waitFor('the slow step to run', async () => (buildStepsRunning(marker).length > 0 ? true : undefined), 120_000, 200);
    const behind: InstanceResponse[] = [];
    for (let i = 0; i < 2; i++) {
      behind.push(
        await createFromWorkspace(
          stack,
          user,
          await workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo queued-${salt()}\n` }),
        ),
      );
    }
    expect(behind[1]!.queue).toMatchObject({ position: 2, waiting: 2, builds_ahead: 1, running: 1 });
    const [first, second] = await Promise.all(behind.map((b) => getInstance(stack, b.instance_id)));
    expect(first!.status).toBe('Queued');
    expect(first!.queue).toMatchObject({ position: 1, waiting: 2, builds_ahead: 0, running: 1 });
    expect(second!.queue).toMatchObject({ position: 2, waiting: 2, builds_ahead: 1, running: 1 });
    // From the one recent build (mean m): round(1 × m) and round(2 × m).
    const e1 = first!.queue!.estimated_start_seconds!;
    const e2 = second!.queue!.estimated_start_seconds!;
    expect(e1).toBeGreaterThanOrEqual(1);
    expect(Math.abs(e2 - 2 * e1)).toBeLessThanOrEqual(1);
    // The running build has no place in the queue, and the list says the same as GET.
    expect((await getInstance(stack, blocker.instance_id)).queue).toBeNull();
    const list = (await (await stack.api(`/api/instances?user_id=${user}`)).json()) as { instances: InstanceResponse[] };
    expect(list.instances.find((i) => i.instance_id === behind[1]!.instance_id)?.queue).toEqual(second!.queue);

    // Deleting the blocker moves the next one up: it is taken, the other is first in line.
    expect((await stack.api(`/api/instances/${blocker.instance_id}`, { method: 'DELETE' })).status).toBe(202);
    const moved = await waitFor(
      'the second to move up',
      async () => {
        const now = await getInstance(stack, behind[1]!.instance_id);
        return now.status !== 'Queued' || now.queue?.position === 1 ? now : undefined;
      },
      120_000,
      200,
    );
    if (moved.status === 'Queued') expect(moved.queue).toMatchObject({ position: 1, builds_ahead: 0 });
    for (const b of behind) await stack.api(`/api/instances/${b.instance_id}`, { method: 'DELETE' });
  });
});
