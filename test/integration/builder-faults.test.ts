import { BUILD_IMAGE_REPOSITORY } from '@codebay/contracts';
import { RegistryClient } from '@codebay/platform';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components, pullLogin } from '../support/components.ts';
import { createFromWorkspace, waitForStatus } from '../support/instances.ts';
import { buildLogEnd, buildLogLines, forgetUsers } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { buildStepsRunning, processesMatching, salt, workspaceTarball } from '../support/workspaces.ts';

const TIMEOUT_SECONDS = 12;

const logText = async (stack: Stack, id: string) => (await buildLogLines(stack, id)).join('\n');

/** A Dockerfile build with one long RUN step, unique per call. */
const slowWorkspace = (marker: string) =>
  workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo ${marker} && sleep 60\n` });

/** Builds that must stop: deleted mid-build, over time, failing for good. Real gateway, builder, provisioner, dockerd, registry. */
describe('builder: cancellation, time limit, permanent failures', () => {
  let stack: Stack;
  const c = components();
  const user = `faults-${salt()}`;
  const registry = new RegistryClient(`http://${c.registry}`, { auth: pullLogin(c) });

  beforeAll(async () => {
    stack = await startStack({
      name: 'faults',
      // The base-image mirror is listed: the unknown feature below is fetched from it (and is not there).
      env: { BUILD_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS), BUILDER_NAME: 'builder-faults', FEATURE_SOURCES: `*,${c.mirror}` },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await forgetUsers(user);
  });

  /** Waits until the long RUN step runs in a container of the daemon. */
  const untilRunning = (marker: string) =>
    waitFor(`the RUN step with ${marker} to run`, async () => (buildStepsRunning(marker).length > 0 ? true : undefined), 90_000, 200);

  it('deleting an instance mid-build stops the CLI and its docker build within seconds, pushes nothing, ends Deleted', async () => {
    const marker = `cancel-${salt()}`;
    const inst = await createFromWorkspace(stack, user, await slowWorkspace(marker));
    const id = inst.instance_id;
    await untilRunning(marker);
    expect(processesMatching(`${id}/workspace`).length).toBeGreaterThan(0);
    const t0 = Date.now();
    expect((await stack.api(`/api/instances/${id}`, { method: 'DELETE' })).status).toBe(202);
    await waitFor('the CLI to be gone', () => (processesMatching(`${id}/workspace`).length === 0 ? true : undefined), 10_000, 100);
    await waitFor('the build step to be gone', async () => (buildStepsRunning(marker).length === 0 ? true : undefined), 15_000, 200);
    const stoppedIn = Date.now() - t0;
    expect(stoppedIn).toBeLessThan(15_000);
    await waitForStatus(stack, id, ['Deleted'], 60_000);
    expect(await registry.image(BUILD_IMAGE_REPOSITORY, inst.build!.key)).toBeUndefined();
    expect(await buildLogEnd(stack, id)).toMatchObject({ outcome: 'cancelled' });
    expect(await logText(stack, id)).toContain('build cancelled: the instance was deleted');
  });

  it(`a build over BUILD_TIMEOUT_SECONDS fails with the reason, its children killed`, async () => {
    const marker = `timeout-${salt()}`;
    const inst = await createFromWorkspace(stack, user, await slowWorkspace(marker));
    await untilRunning(marker);
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 90_000);
    expect(failed.error).toBe(`build timed out after ${TIMEOUT_SECONDS} s`);
    expect(failed.phase).toBe('build');
    expect(processesMatching(`${inst.instance_id}/workspace`)).toEqual([]);
    await waitFor('the build step to be gone', async () => (buildStepsRunning(marker).length === 0 ? true : undefined), 15_000, 200);
    expect(await buildLogEnd(stack, inst.instance_id)).toMatchObject({ outcome: 'failure', reason: `build timed out after ${TIMEOUT_SECONDS} s` });
    expect(await logText(stack, inst.instance_id)).not.toContain('retrying');
  });

  it('a failing RUN step fails at once, naming the step with its exit code and last lines, without retrying', async () => {
    const inst = await createFromWorkspace(
      stack,
      user,
      await workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo broken-${salt()} && exit 3\n` }),
    );
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 120_000);
    expect(failed.error).toMatch(
      /^The Dockerfile step "RUN echo broken-[0-9a-f]+ && exit 3" failed with exit code 3 \(build step \d+ of \d+\)\. The whole output is in the build log\.\nLast lines:\n {2}broken-[0-9a-f]+$/,
    );
    const text = await logText(stack, inst.instance_id);
    expect(text).toMatch(/ERROR: executor failed running \[\/bin\/sh -c echo broken-[0-9a-f]+ && exit 3\]: exit code: 3/);
    expect(text).not.toContain('retrying');
    expect(text.match(/on builder builder-faults/g)).toHaveLength(1);
  });

  it('an unknown feature fails at once, without retrying', async () => {
    const inst = await createFromWorkspace(
      stack,
      user,
      await workspaceTarball({ config: { image: 'debian:bookworm', features: { [`${c.mirror}/codebay-test/no-such-feature-${salt()}:1`]: {} } } }),
    );
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 120_000);
    expect(failed.phase).toBe('build');
    expect(failed.error).toMatch(
      new RegExp(
        `^Feature "${c.mirror}/codebay-test/no-such-feature-[0-9a-f]+:1" could not be fetched: ${c.mirror} has no such feature or version \\(manifest unknown\\)`,
      ),
    );
    expect(await logText(stack, inst.instance_id)).not.toContain('retrying');
  });

  it('a feature whose install fails is named as written in devcontainer.json, with its step and last lines, not the docker build command', async () => {
    const name = `fail-${salt()}`;
    const inst = await createFromWorkspace(
      stack,
      user,
      await workspaceTarball({
        config: { image: 'debian:bookworm', features: { [`./${name}`]: {} } },
        // Both on stderr: Docker does not keep the order of lines across stdout and stderr.
        features: { [name]: 'echo installing the thing >&2\necho "E: Unable to locate package nosuchpkg" >&2\nexit 7' },
      }),
    );
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 180_000);
    expect(failed.phase).toBe('build');
    expect(failed.error).toMatch(
      new RegExp(
        `^Feature "\\./${name}" failed to install: its install script exited with code 7 \\(build step \\d+ of \\d+\\)\\. The whole output is in the build log\\.\\n` +
          'Last lines:\\n  installing the thing\\n  E: Unable to locate package nosuchpkg$',
      ),
    );
    expect(failed.error).not.toContain('docker build');
    // The full log stays in the build log.
    const text = await logText(stack, inst.instance_id);
    expect(text).toContain(`ERROR: Feature "${name}" (Unknown) failed to install!`);
    // The log's own last word is one line: the sentences, not the lines quoted from just above.
    expect(text).toMatch(new RegExp(`\\ncodebay: build failed: Feature "\\./${name}" failed to install: .*\\. The whole output is in the build log\\.$`));
    expect(text).not.toContain('retrying');
  });

  it('an OCI feature from a registry this deployment cannot reach names the feature and the registry', async () => {
    // `.invalid` never resolves (RFC 2606); FEATURE_SOURCES (`*`) allows the name, so the build tries it.
    const ref = `registry-${salt()}.invalid/codebay-test/hello:1`;
    const inst = await createFromWorkspace(stack, user, await workspaceTarball({ config: { image: 'debian:bookworm', features: { [ref]: {} } } }));
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 180_000);
    expect(failed.phase).toBe('build');
    const host = ref.split('/')[0]!;
    expect(failed.error).toBe(
      `Feature "${ref}" could not be fetched: its registry ${host} cannot be reached from this deployment (DNS lookup of ${host} failed (ENOTFOUND)). ` +
        `Use a copy of the feature from a source this deployment reaches (an operator lists allowed sources in FEATURE_SOURCES), or ask an operator to let the builders reach ${host}.`,
    );
  });
});

describe('builder: faults worth retrying', () => {
  let stack: Stack;
  const user = `transient-${salt()}`;

  beforeAll(async () => {
    // A builder whose Docker daemon does not answer: every attempt fails the same transient way.
    stack = await startStack({
      name: 'transient',
      services: ['gateway', 'builder'],
      env: { DOCKER_HOST: 'unix:///run/codebay-no-such-daemon.sock', BUILD_ATTEMPTS: '3', BUILD_BACKOFF_SECONDS: '1', BUILDER_NAME: 'builder-nodaemon' },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await forgetUsers(user);
  });

  it('a daemon that does not answer is retried with backoff, then fails with the reason', async () => {
    const inst = await createFromWorkspace(
      stack,
      user,
      await workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo t-${salt()}\n` }),
    );
    const failed = await waitForStatus(stack, inst.instance_id, ['Failed'], 120_000);
    expect(failed.error).toMatch(/Cannot connect to the Docker daemon|docker\.sock|ENOENT|ECONNREFUSED/i);
    const text = await logText(stack, inst.instance_id);
    expect(text).toContain('retrying (attempt 2 of 3)');
    expect(text).toContain('retrying (attempt 3 of 3)');
    expect(text.match(/on builder builder-nodaemon/g)).toHaveLength(3);
    const ready = await fetch(`http://127.0.0.1:${stack.ports.builder}/readyz`);
    expect(ready.status).toBe(503);
  });
});

describe('builder: a registry that answers 500', () => {
  let stack: Stack;
  let registry: ChildProcess | undefined;
  let port: number;
  let dir: string;
  let manifests: string;
  const user = `reg500-${salt()}`;

  /**
   * A real registry on `port` whose manifest store is broken: a regular file lies where the
   * repository's `_manifests` folder goes, so layer uploads succeed and every manifest read or
   * write is a 500 (docker push fails at once: it retries layer uploads itself, ~50 s, but not
   * the manifest). Removing the file mends it.
   */
  async function startRegistry(): Promise<void> {
    const root = mkdtempSync(join(dir, 'root-'));
    manifests = join(root, `docker/registry/v2/repositories/${BUILD_IMAGE_REPOSITORY}/_manifests`);
    mkdirSync(dirname(manifests), { recursive: true });
    writeFileSync(manifests, 'not a folder');
    writeFileSync(
      join(dir, 'config.yml'),
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${root}\nhttp:\n  addr: 127.0.0.1:${port}\n`,
    );
    registry = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
    await waitFor(
      'the registry to listen',
      async () => ((await fetch(`http://127.0.0.1:${port}/v2/`).catch(() => undefined))?.ok ? true : undefined),
      20_000,
      100,
    );
  }
  async function stopRegistry(): Promise<void> {
    if (!registry || registry.exitCode !== null) return;
    const gone = new Promise((resolve) => registry!.once('exit', resolve));
    registry.kill();
    await gone;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'codebay-badreg-'));
    // A registry port the daemons may reach on this machine (components.sh: 32000-32009).
    port = 32009;
    await startRegistry();
    stack = await startStack({
      name: 'reg500',
      services: ['gateway', 'builder'],
      env: {
        // This registry alone, anonymous, for pulls and pushes.
        REGISTRY: `localhost:${port}`,
        REGISTRY_PUSH: `localhost:${port}`,
        REGISTRY_PULL_AUTH: '',
        REGISTRY_PUSH_AUTH: '',
        REGISTRY_API_URL: `http://127.0.0.1:${port}`,
        BUILD_ATTEMPTS: '3',
        BUILD_BACKOFF_SECONDS: '3',
        BUILDER_NAME: 'builder-reg500',
      },
    });
  });
  afterAll(async () => {
    await stack?.stop();
    await stopRegistry();
    rmSync(dir, { recursive: true, force: true });
    await forgetUsers(user);
  });

  it('a push the registry refuses with 500 is retried with backoff, and succeeds once the registry recovers', async () => {
    const inst = await createFromWorkspace(
      stack,
      user,
      await workspaceTarball({ config: { build: { dockerfile: 'Dockerfile' } }, dockerfile: `FROM debian:bookworm\nRUN echo r-${salt()} > /opt/r\n` }),
    );
    expect(inst.build?.cache).toBe('miss'); // the registry's 500 on the lookup counts as a miss, not an error
    // The first push fails; during the backoff the registry is mended.
    await waitFor(
      'the first push to fail',
      async () => ((await logText(stack, inst.instance_id)).includes('retrying (attempt 2 of 3)') ? true : undefined),
      180_000,
      250,
    );
    rmSync(manifests);
    const built = await waitForStatus(stack, inst.instance_id, ['Built'], 180_000);
    expect(built.devcontainer_image).toMatch(new RegExp(`^localhost:${port}/codebay-devcontainer@sha256:[0-9a-f]{64}$`));
    const text = await logText(stack, inst.instance_id);
    expect(text).toMatch(/codebay: push of .* failed: .*500.* — retrying \(attempt 2 of 3\)/);
    expect(text.match(/on builder builder-reg500/g)).toHaveLength(2);
    expect(await buildLogEnd(stack, inst.instance_id)).toMatchObject({ outcome: 'success' });
  });
});
