// A change to the operator's extension source reaches configurations already in the build
// cache, through the whole system on the Docker runtime (real gateway, builder, provisioner,
// Redis, dockerd, registry, Dev Containers CLI, code-server): a configuration whose extension
// was missing is built again once the .vsix is added (and has it baked, no warning), while a
// configuration that wants no extensions keeps its cached image. The .vsix files are made here.
import { ExtensionSourceBoard, createRedis } from '@codebay/platform';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { execIn, testDocker } from '../support/docker.ts';
import { createFromDevcontainer, waitForStatus } from '../support/instances.ts';
import { buildLogEnd } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { makeVsix } from '../support/vsix.ts';
import { waitFor } from '../support/wait.ts';

const PROPERTY = 'customizations.vscode.extensions';
const MISSING = `${PROPERTY}: codebay-test.beta: not in this deployment’s extension source; not installed`;
let stack: Stack;
let source: string;
let work: string;
let redis: Redis;
const user = `extsrc-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  source = await mkdtemp(join(tmpdir(), 'codebay-extension-source-'));
  work = await mkdtemp(join(tmpdir(), 'codebay-extsrc-conf-'));
  makeVsix(join(source, 'alpha.vsix'), { publisher: 'codebay-test', name: 'alpha', version: '1.0.0' });
  // The builder scans its folder every second here (default 10 s).
  stack = await startStack({ name: 'extsrc', env: { EXTENSION_SOURCE_DIR: source, EXTENSION_SOURCE_SCAN_SECONDS: '1' } });
  redis = createRedis(components().redisUrl, 'test-extsrc');
}, 120_000);

afterAll(async () => {
  await redis?.quit();
  await stack?.stop();
  for (const dir of [source, work]) if (dir) await rm(dir, { recursive: true, force: true });
});

async function buildLog(id: string): Promise<string> {
  return ((await (await stack.api(`/api/instances/${id}/build-logs`)).json()) as { logs: string }).logs;
}

async function config(name: string, body: object): Promise<string> {
  const file = join(work, `${name}.json`);
  await writeFile(file, JSON.stringify({ image: 'debian:bookworm', containerEnv: { CODEBAY_TEST_RUN: randomBytes(6).toString('hex') }, ...body }));
  return file;
}

describe('a changed extension source reaches configurations in the build cache (Docker runtime)', () => {
  it('rebuilds a configuration whose extension was missing once it is added; one without extensions stays cached', async () => {
    const board = new ExtensionSourceBoard(redis, stack.queuePrefix);
    const wants = await config('wants', { customizations: { vscode: { extensions: ['codebay-test.alpha', 'codebay-test.beta'] } } });
    const plain = await config('plain', {});

    // First builds: beta is missing (a warning); the plain one has nothing to do with the source.
    const [first, plainFirst] = await Promise.all([createFromDevcontainer(stack, user, wants), createFromDevcontainer(stack, user, plain)]);
    const built = await waitForStatus(stack, first.instance_id, ['Running'], 300_000);
    expect(built.build?.cache).toBe('miss');
    expect(built.warnings.find((w) => w.property === PROPERTY)?.message).toBe(MISSING);
    expect((await waitForStatus(stack, plainFirst.instance_id, ['Running'], 300_000)).build?.cache).toBe('miss');
    const before = (await board.read())?.fingerprint;
    expect(before).toMatch(/^[a-f0-9]{64}$/);

    // The operator adds beta: the builder publishes the source's new fingerprint.
    makeVsix(join(source, 'beta.vsix'), { publisher: 'codebay-test', name: 'beta', version: '0.1.0' });
    const after = await waitFor(
      'the new extension source fingerprint published',
      async () => {
        const now = (await board.read())?.fingerprint;
        return now !== before ? now : undefined;
      },
      30_000,
    );
    expect(after).toMatch(/^[a-f0-9]{64}$/);

    // The same configuration again: not a cache hit; built again with beta baked, no warning.
    const again = await createFromDevcontainer(stack, user, wants);
    expect(again.build?.cache).toBe('miss');
    const rebuilt = await waitForStatus(stack, again.instance_id, ['Running'], 300_000);
    expect(rebuilt.build?.cache).toBe('miss');
    expect(rebuilt.warnings.filter((w) => w.property === PROPERTY)).toEqual([]);
    const log = await buildLog(again.instance_id);
    expect(log).toContain('codebay: extension codebay-test.beta 0.1.0: baked into the image');
    expect(log).toContain(`codebay: extension source ${after!.slice(0, 12)}…: 2 of 2 wanted extension(s) found`);
    expect(log).not.toContain(MISSING);
    const index = await execIn(testDocker(), stack.names.container(again.instance_id), ['cat', '/usr/local/share/codebay/extensions/index.json']);
    expect(JSON.parse(index.stdout)).toEqual({
      extensions: [
        { id: 'codebay-test.alpha', version: '1.0.0', file: 'codebay-test.alpha-1.0.0.vsix' },
        { id: 'codebay-test.beta', version: '0.1.0', file: 'codebay-test.beta-0.1.0.vsix' },
      ],
      missing: [],
    });

    // Now the rebuilt image is the cached one; the configuration without extensions kept its image all along.
    // Entries are written after the pushes, which may end after the instances are Running: wait for both builds' jobs to end.
    for (const id of [again.instance_id, plainFirst.instance_id]) expect(await buildLogEnd(stack, id)).toMatchObject({ outcome: 'success' });
    const [third, plainAgain] = await Promise.all([createFromDevcontainer(stack, user, wants), createFromDevcontainer(stack, user, plain)]);
    expect(third.build?.cache).toBe('hit');
    expect(plainAgain.build?.cache).toBe('hit');
    expect((await waitForStatus(stack, third.instance_id, ['Running'], 180_000)).warnings.filter((w) => w.property === PROPERTY)).toEqual([]);
    await waitForStatus(stack, plainAgain.instance_id, ['Running'], 180_000);
  }, 900_000);
});
