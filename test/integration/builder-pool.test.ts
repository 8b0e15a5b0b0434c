import { BUILD_IMAGE_REPOSITORY, JOBS, type InstanceResponse } from '@codebay/contracts';
import { JobQueues, RegistryClient, dockerFromHost, createRedis } from '@codebay/platform';
import { existsSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components, pullLogin } from '../support/components.ts';
import { createFromWorkspace, getInstance, waitForStatus } from '../support/instances.ts';
import { buildLogEnd, buildLogLines, forgetUsers } from '../support/records.ts';
import { readSse } from '../support/sse.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { buildStepsRunning, processesMatching, runInImage, salt, workspaceTarball } from '../support/workspaces.ts';

const BUILT = ['Built', 'Cached', 'Provisioning', 'Running'];
const registry = new RegistryClient(`http://${components().registry}`, { auth: pullLogin() });

/** Image tag events (a build ends with one) a daemon reported in [since, now]. */
async function tagEvents(host: string, since: number): Promise<string[]> {
  const docker = dockerFromHost(host);
  const stream = (await docker.getEvents({
    since,
    until: Math.ceil(Date.now() / 1000) + 1,
    filters: JSON.stringify({ type: ['image'] }),
  })) as NodeJS.ReadableStream;
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks)
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { Action: string; Actor: { Attributes: { name?: string } } })
    .filter((e) => e.Action === 'tag')
    .map((e) => e.Actor.Attributes.name ?? '');
}

/** A workspace whose only build step is one local feature writing its own file. */
const featureWorkspace = (name: string, s = salt()) =>
  workspaceTarball({
    config: { image: 'debian:bookworm', features: { [`./${name}`]: {} } },
    features: { [name]: `mkdir -p /opt/features && echo ${s} > /opt/features/${name}` },
  });

/**
 * The builder pool on real daemons: two builder processes, each with its own dockerd,
 * sharing one queue; the real registry, the real Dev Containers CLI.
 */
describe('builder pool: build once, two builders, two daemons', () => {
  let stack: Stack;
  const c = components();
  const user = `pool-${salt()}`;
  const builders = { 'builder-1': c.dockerHost, 'builder-2': c.dockerHost2 } as Record<string, string>;
  const startBuilder = (name: string) => stack.startService('builder', { as: name, env: { DOCKER_HOST: builders[name], BUILDER_NAME: name } });
  const create = async (tarball: string) => {
    const inst = await createFromWorkspace(stack, user, tarball);
    return inst;
  };
  const builderOf = async (id: string) => (await buildLogLines(stack, id)).map((l) => /on builder (builder-\d)/.exec(l)?.[1]).filter(Boolean) as string[];

  beforeAll(async () => {
    stack = await startStack({
      name: 'pool',
      services: ['gateway'],
      env: { JOB_LOCK_SECONDS: '5', STALLED_INTERVAL_SECONDS: '2', MAX_INSTANCES_PER_USER: '100', MAX_QUEUED_BUILDS_PER_USER: '100' },
    });
    await startBuilder('builder-1');
    await startBuilder('builder-2');
  });
  afterAll(async () => {
    await stack?.stop();
    await forgetUsers(user);
  });

  it('builds a configuration once: an identical request is Cached at once and no daemon builds anything', async () => {
    const tarball = await featureWorkspace('dedupe');
    const first = await create(tarball);
    expect(first.build).toMatchObject({ key: expect.stringMatching(/^[0-9a-f]{64}$/), cache: 'miss' });
    const built = await waitForStatus(stack, first.instance_id, BUILT, 180_000);
    // Pulled by the digest the builder recorded at push, never by tag.
    expect(built.devcontainer_image).toMatch(new RegExp(`^${c.registry}/${BUILD_IMAGE_REPOSITORY}@sha256:[0-9a-f]{64}$`));

    // The first build's job ends after its pushes (its family tag too: an instance may start before): wait for its log's end.
    expect(await buildLogEnd(stack, first.instance_id)).toMatchObject({ outcome: 'success' });
    // Events have 1 s resolution: start counting in the second after the first build's last tag.
    await new Promise((r) => setTimeout(r, 1100));
    const since = Math.floor(Date.now() / 1000);
    const second = await create(tarball);
    expect(second.status).toBe('Cached');
    expect(second.build).toEqual({ key: first.build!.key, cache: 'hit' });
    expect(second.devcontainer_image).toBe(built.devcontainer_image);
    expect(await buildLogEnd(stack, second.instance_id)).toMatchObject({ outcome: 'cached' });
    // No build job was queued for it, and neither daemon tagged an image since.
    const redis = createRedis(c.redisUrl, 'test-pool-q');
    const queues = new JobQueues(redis, stack.queuePrefix);
    expect(await queues.queue('build').getJob(JOBS.build.id({ instanceId: second.instance_id }))).toBeUndefined();
    await queues.close();
    await redis.quit();
    await new Promise((r) => setTimeout(r, 1000));
    expect([...(await tagEvents(c.dockerHost, since)), ...(await tagEvents(c.dockerHost2, since))]).toEqual([]);
  });

  it('two identical requests at the same time build once: the other waits and takes the image', async () => {
    const tarball = await featureWorkspace('twins');
    const [a, b] = await Promise.all([create(tarball), create(tarball)]);
    expect(a.build!.key).toBe(b.build!.key);
    const [ra, rb] = await Promise.all([waitForStatus(stack, a.instance_id, BUILT, 180_000), waitForStatus(stack, b.instance_id, BUILT, 180_000)]);
    expect([ra.build!.cache, rb.build!.cache].sort()).toEqual(['hit', 'miss']);
    const waiter = ra.build!.cache === 'hit' ? a : b;
    // The image exists on exactly one daemon: only one built it (under the push address it was pushed to).
    const tag = `${c.registryPush}/${BUILD_IMAGE_REPOSITORY}:${a.build!.key}`;
    const holders = await Promise.all(
      Object.values(builders).map(async (h) => (await dockerFromHost(h).listImages({ filters: JSON.stringify({ reference: [tag] }) })).length),
    );
    expect(holders.sort()).toEqual([0, 1]);
    expect(await buildLogEnd(stack, waiter.instance_id)).toMatchObject({ outcome: 'cached' });
  });

  it('two builders with two daemons take four builds with different local features; each image holds only its own feature', async () => {
    const names = ['feat-a', 'feat-b', 'feat-c', 'feat-d'];
    const instances = await Promise.all(names.map(async (n) => create(await featureWorkspace(n))));
    for (const inst of instances) await waitForStatus(stack, inst.instance_id, BUILT, 240_000);
    const docker = dockerFromHost(c.dockerHost);
    for (const [i, inst] of instances.entries()) {
      // The digest is recorded after the push, which may end after the instance started from the built image.
      expect(await buildLogEnd(stack, inst.instance_id)).toMatchObject({ outcome: 'success' });
      const image = (await getInstance(stack, inst.instance_id)).devcontainer_image!;
      const files = (await runInImage(docker, image, ['ls', '/opt/features'], pullLogin(c))).split(/\s+/).filter(Boolean);
      expect(files, image).toEqual([names[i]]);
    }
    const used = new Set((await Promise.all(instances.map((i) => builderOf(i.instance_id)))).flat());
    expect([...used].sort()).toEqual(['builder-1', 'builder-2']);
  });

  it('masks secret build args (not ordinary ones) in the log, keeps every line in order, and resumes a follower without gaps or duplicates', async () => {
    const secret = `supersecret-${salt()}`;
    const inst = await create(
      await workspaceTarball({
        config: { build: { dockerfile: 'Dockerfile', args: { TOKEN: secret, VARIANT: 'bookworm' } } },
        dockerfile: `FROM debian:bookworm\nARG TOKEN\nARG VARIANT\nRUN echo "token is $TOKEN" && echo "variant is $VARIANT"\n${Array.from({ length: 8 }, (_, i) => `RUN echo line-${i}-${salt()}`).join('\n')}\n`,
      }),
    );
    // Follow a few events, drop the connection, resume after the last one seen.
    const head = await readSse(
      await stack.api(`/api/instances/${inst.instance_id}/build-logs?follow=1`),
      (() => {
        let n = 0;
        return (e: { event: string }) => e.event === 'line' && ++n === 5;
      })(),
      120_000,
    );
    const lastId = head.at(-1)!.id!;
    const tail = await readSse(
      await stack.api(`/api/instances/${inst.instance_id}/build-logs?follow=1`, { headers: { 'last-event-id': lastId } }),
      (e) => e.event === 'end',
      180_000,
    );
    expect(JSON.parse(tail.at(-1)!.data)).toMatchObject({ outcome: 'success' });
    const followed = [...head, ...tail].filter((e) => e.event === 'line');
    const ids = followed.map((e) => e.id!);
    expect(new Set(ids).size).toBe(ids.length);
    const full = await buildLogLines(stack, inst.instance_id);
    expect(followed.map((e) => (JSON.parse(e.data) as { text: string }).text)).toEqual(full);
    const text = full.join('\n');
    expect(text).not.toContain(secret);
    expect(text).toContain('token is ****');
    // An ordinary value stays readable everywhere (it was masked too: `--build-arg VARIANT=****`).
    expect(text).toContain('variant is bookworm');
    expect(text).toContain('--build-arg VARIANT=bookworm');
    for (let i = 0; i < 8; i++) expect(text).toMatch(new RegExp(`line-${i}-`));
  });

  it('a builder killed mid-build: its CLI dies with it, another builder takes the job and finishes it', async () => {
    const inst = await create(
      await workspaceTarball({
        config: { build: { dockerfile: 'Dockerfile' } },
        dockerfile: `FROM debian:bookworm\nRUN echo start-${salt()} && sleep 8 && echo slept\n`,
      }),
    );
    const id = inst.instance_id;
    const first = await waitFor('the build to start on a builder', async () => (await builderOf(id))[0], 60_000, 200);
    await waitFor(
      'the slow RUN step to be running',
      async () => ((await buildLogLines(stack, id)).some((l) => /^#\d+ [\d.]+ start-/.test(l)) ? true : undefined),
      60_000,
      200,
    );
    expect(processesMatching(`${id}/workspace`).length).toBeGreaterThan(0);
    await stack.stopService(first, 'SIGKILL');
    // The CLI and its docker build go with the builder (process group guard).
    await waitFor('the killed builder’s CLI to be gone', () => (processesMatching(`${id}/workspace`).length === 0 ? true : undefined), 5_000, 100);
    await waitFor('the killed build’s step to be gone', async () => (buildStepsRunning('sleep 8').length === 0 ? true : undefined), 15_000, 500);
    const done = await waitForStatus(stack, id, BUILT, 180_000);
    expect(done.build!.cache).toBe('miss');
    const ran = await builderOf(id);
    expect(ran[0]).toBe(first);
    expect(ran.at(-1)).not.toBe(first);
    expect(await buildLogEnd(stack, id)).toMatchObject({ outcome: 'success' });
    await startBuilder(first);
  });

  it('a new builder with an empty daemon reuses the layers of its configuration family from the registry', async () => {
    const s = salt();
    const dockerfile = (last: string) => `FROM debian:bookworm\nRUN echo base-${s} > /opt/base\nRUN echo ${last} > /opt/top\n`;
    const config = { build: { dockerfile: 'Dockerfile' } };
    await stack.stopService('builder-2');
    const one = await create(await workspaceTarball({ config, dockerfile: dockerfile('one') }));
    await waitForStatus(stack, one.instance_id, BUILT, 180_000);
    // The family's tag is pushed after the image, which may be after the instance started from it.
    expect(await buildLogEnd(stack, one.instance_id)).toMatchObject({ outcome: 'success' });
    await startBuilder('builder-2');
    await stack.stopService('builder-1');
    try {
      const two = await create(await workspaceTarball({ config, dockerfile: dockerfile('two') }));
      expect(two.build!.key).not.toBe(one.build!.key);
      await waitForStatus(stack, two.instance_id, BUILT, 180_000);
      const lines = await buildLogLines(stack, two.instance_id);
      expect(await builderOf(two.instance_id)).toEqual(['builder-2']);
      expect(lines.some((l) => l.startsWith('codebay: reusing layers of'))).toBe(true);
      // BuildKit's plain progress: `#<vertex> [n/m] RUN …`, then `#<vertex> CACHED` for a step taken from the cache.
      const vertexOf = (text: string) => lines.map((l) => /^#(\d+) \[[^\]]*\] (.*)$/.exec(l)).find((m) => m?.[2]?.startsWith(text))?.[1];
      const base = vertexOf(`RUN echo base-${s}`);
      const top = vertexOf('RUN echo two');
      expect(base).toBeDefined();
      expect(top).toBeDefined();
      expect(lines).toContain(`#${base} CACHED`);
      expect(lines).not.toContain(`#${top} CACHED`);
    } finally {
      await startBuilder('builder-1');
    }
  });

  it('cleans up after every job and reports what it did in metrics', async () => {
    // One more build, so a builder restarted by an earlier test has counted something.
    const inst = await create(await featureWorkspace('metrics'));
    await waitForStatus(stack, inst.instance_id, BUILT, 180_000);
    const ranOn = (await builderOf(inst.instance_id))[0]!;
    // Housekeeping runs right after the job has handed the instance on: give it a moment, then nothing may be left.
    const leftovers = async () => {
      const buildDir = stack.env.CODEBAY_BUILD_DIR!;
      const found: string[] = existsSync(buildDir) ? readdirSync(buildDir).map((d) => `job folder ${d}`) : [];
      for (const host of Object.values(builders)) {
        const docker = dockerFromHost(host);
        for (const i of await docker.listImages({ filters: JSON.stringify({ dangling: ['true'] }) })) found.push(`${host}: dangling ${i.Id}`);
        for (const t of (await docker.listImages()).flatMap((i) => i.RepoTags ?? []))
          if (t.startsWith('dev_container_feature_content_temp')) found.push(`${host}: ${t}`);
      }
      return found;
    };
    await waitFor('housekeeping after the last job', async () => ((await leftovers()).length === 0 ? true : undefined), 20_000, 500).catch(() => undefined);
    expect(await leftovers()).toEqual([]);
    const metrics = await (await fetch(`http://127.0.0.1:${stack.ports[ranOn]}/metrics`)).text();
    // A series' value, whatever the order of its labels (every series also carries service="…").
    const value = (text: string, name: string, labels: string[]) =>
      Number(
        text
          .split('\n')
          .find((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)))
          ?.split(' ')
          .at(-1) ?? NaN,
      );
    expect(value(metrics, 'codebay_build_duration_seconds_count', ['outcome="success"'])).toBeGreaterThan(0);
    expect(value(metrics, 'codebay_builds_in_progress', [])).toBe(0);
    expect(value(metrics, 'codebay_build_cache_lookups_total', ['result="miss"'])).toBeGreaterThan(0);
    const gateway = await (await fetch(`http://127.0.0.1:${stack.metricsPorts.gateway}/metrics`)).text();
    expect(value(gateway, 'codebay_build_cache_lookups_total', ['result="hit"'])).toBeGreaterThan(0);
    expect(value(gateway, 'codebay_queue_jobs', ['queue="codebay-build"', 'state="completed"'])).toBeGreaterThan(0);
  });

  it('records the key and the registry really has the image pushed under the key', async () => {
    const list = (await (await stack.api(`/api/instances?user_id=${user}`)).json()) as { instances: InstanceResponse[] };
    const keys = new Set(list.instances.filter((i) => i.build).map((i) => i.build!.key));
    expect(keys.size).toBeGreaterThan(4);
    for (const key of keys) expect(await registry.image(BUILD_IMAGE_REPOSITORY, key), key).toBeDefined();
  });
});
