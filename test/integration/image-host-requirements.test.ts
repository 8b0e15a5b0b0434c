// hostRequirements that come from the image rather than the uploaded devcontainer.json, through
// the whole system on the Docker runtime (real gateway, builder, provisioner, Redis, dockerd,
// registry, Dev Containers CLI, code-server). A base image carries a `devcontainer.metadata`
// label with hostRequirements (as an image built by the Dev Containers CLI from a config that had
// them does); the config is a Dockerfile `FROM` it and asks for nothing. The CLI merges the base
// image's entries into the built image's label; codebay reads them after the build and raises the
// instance's resources (the API and the container's real limits), or fails the instance when they
// are above what the operator allows. The hostRequirements rows of docs/conformance.md name these tests.
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { containerExists, testDocker } from '../support/docker.ts';
import { createFromWorkspace, getInstance, waitForStatus } from '../support/instances.ts';
import { buildLogEnd } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { salt, workspaceTarball } from '../support/workspaces.ts';

const run = promisify(execFile);
let stack: Stack;
const user = `imghr-${salt().slice(0, 6)}`;
const runId = salt();
/** Base images this file makes on the stack's daemon (the builder's): removed at the end. */
const baseImages: string[] = [];

/**
 * Builds `codebay-test-hostreq-<run>:<name>` on the builder's daemon: debian:bookworm with a
 * `devcontainer.metadata` label holding `entries` (a JSON array, as the Dev Containers CLI writes it).
 */
async function baseImage(name: string, entries: Record<string, unknown>[]): Promise<string> {
  const tag = `codebay-test-hostreq-${runId}:${name}`;
  const dir = await mkdtemp(join(tmpdir(), 'codebay-hostreq-base-'));
  await writeFile(join(dir, 'Dockerfile'), `FROM debian:bookworm\nLABEL devcontainer.metadata=${JSON.stringify(JSON.stringify(entries))}\n`);
  await run('docker', ['build', '-q', '-t', tag, dir], { env: { ...process.env, DOCKER_HOST: components().dockerHost } });
  baseImages.push(tag);
  return tag;
}

/** A workspace whose devcontainer.json asks for nothing and builds a Dockerfile `FROM base`. */
function workspaceFrom(base: string): Promise<string> {
  return workspaceTarball({
    config: { build: { dockerfile: 'Dockerfile' }, containerEnv: { CODEBAY_TEST_RUN: salt() } },
    dockerfile: `FROM ${base}\n`,
  });
}

/** The defaults (resourcesSchema): what an instance has when neither the caller nor its config asks for more. */
const DEFAULTS = { storage_size: '2Gi', shared_storage_size: '5Gi', memory_request: '512Mi', memory_limit: '2Gi', cpu_request: '200m', cpu_limit: '1000m' };

beforeAll(async () => {
  // The operator's maxima the messages name (the gateway's defaults, said here).
  stack = await startStack({ name: 'image-hostreq', env: { MAX_CPU_LIMIT: '4000m', MAX_MEMORY_LIMIT: '8Gi', MAX_STORAGE_SIZE: '100Gi' } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  for (const tag of baseImages)
    await testDocker()
      .getImage(tag)
      .remove({ force: true })
      .catch(() => undefined);
});

describe('hostRequirements from the image’s metadata (Docker runtime)', () => {
  it('raises the instance’s resources to the base image’s hostRequirements.memory: API, container limits, cache hit', async () => {
    const base = await baseImage('memory3gb', [{ hostRequirements: { memory: '3gb' } }]);
    const tarball = await workspaceFrom(base);
    const created = await createFromWorkspace(stack, user, tarball);
    // At create only the config is known, and it asks for nothing.
    expect(created.resources).toEqual(DEFAULTS);
    // 3gb = 3 × 2^30 bytes: the request raised to it, the limit (2Gi) raised to the request.
    const raised = { ...DEFAULTS, memory_request: '3Gi', memory_limit: '3Gi' };
    const running = await waitForStatus(stack, created.instance_id, ['Running'], 240_000);
    expect(running.resources).toEqual(raised);
    // The caller learns that the instance is not what the create answered, field by field.
    expect(running.warnings).toContainEqual({
      property: 'hostRequirements',
      message: expect.stringMatching(/raised memory_request 512Mi → 3Gi, memory_limit 2Gi → 3Gi$/),
    });
    const { HostConfig } = await testDocker().getContainer(stack.names.container(running.instance_id)).inspect();
    expect(HostConfig.MemoryReservation).toBe(3 * 2 ** 30);
    expect(HostConfig.Memory).toBe(3 * 2 ** 30);

    // The same workspace again: a build cache hit (nothing built), the requirements from what was recorded with the entry.
    // The entry is written after the push, which may end after the instance is Running: wait for the build's job to end.
    expect(await buildLogEnd(stack, created.instance_id)).toMatchObject({ outcome: 'success' });
    const again = await createFromWorkspace(stack, user, tarball);
    expect(again.build?.cache).toBe('hit');
    const cached = await waitForStatus(stack, again.instance_id, ['Running'], 180_000);
    expect(cached.resources).toEqual(raised);
    expect((await testDocker().getContainer(stack.names.container(cached.instance_id)).inspect()).HostConfig.Memory).toBe(3 * 2 ** 30);
  }, 420_000);

  it('fails the instance when the base image asks for more memory than the operator allows, naming it; the image is built, nothing is started', async () => {
    const base = await baseImage('memory64gb', [{ hostRequirements: { memory: '64gb' } }]);
    const created = await createFromWorkspace(stack, user, await workspaceFrom(base));
    expect(created.status).toBe('Queued');
    const failed = await waitForStatus(stack, created.instance_id, ['Failed'], 240_000);
    expect(failed.phase).toBe('provision');
    expect(failed.error).toBe(
      "hostRequirements.memory: the image's metadata (its devcontainer.metadata label, from its base image) asks for 64Gi, and this deployment gives an instance at most 8Gi of memory; the image is built, and no instance was started from it",
    );
    // Nothing raised, nothing made.
    expect(failed.resources).toEqual(DEFAULTS);
    expect(await containerExists(testDocker(), stack.names.container(created.instance_id))).toBe(false);
    // The build itself succeeded: its image is pushed and recorded, its log ends in success.
    const built = await waitFor(
      'the image to be pushed',
      async () => {
        const i = await getInstance(stack, created.instance_id);
        return i.devcontainer_image ? i : undefined;
      },
      120_000,
    );
    expect(built.devcontainer_image).toMatch(/@sha256:[0-9a-f]{64}$/);
    expect(built.status).toBe('Failed');
    const buildLog = (await (await stack.api(`/api/instances/${created.instance_id}/build-logs`)).json()) as {
      logs: string;
      finished: { outcome: string } | null;
    };
    expect(buildLog.finished?.outcome).toBe('success');
    expect(buildLog.logs).toContain('codebay: pushed ');
  }, 360_000);
});
