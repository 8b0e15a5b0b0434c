// Extensions baked into the image from the operator's extension source (EXTENSION_SOURCE_DIR),
// through the whole system on the Docker runtime (real gateway, builder, provisioner, Redis,
// dockerd, registry, Dev Containers CLI, code-server): the builder bakes the .vsix files the
// configuration wants into the image, the instance lists the ones the source lacks, the launcher
// installs the baked ones from the image (no network), and one the editor refuses (an engine newer
// than it) becomes a warning on the running instance. The .vsix files are made here.
import type { InstanceResponse } from '@codebay/contracts';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { uniqueConfigFile } from '../support/workspaces.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn, testDocker } from '../support/docker.ts';
import { createFromDevcontainer, getInstance, waitForStatus } from '../support/instances.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { makeVsix } from '../support/vsix.ts';
import { waitFor } from '../support/wait.ts';

const BAKED = '/usr/local/share/codebay/extensions';
const PROPERTY = 'customizations.vscode.extensions';
let stack: Stack;
let source: string;
const user = `ext-${randomBytes(3).toString('hex')}`;

beforeAll(async () => {
  source = await mkdtemp(join(tmpdir(), 'codebay-extension-source-'));
  // Two versions of alpha (the higher is baked), beta, one the default editor refuses, and a file that is no zip.
  makeVsix(join(source, 'alpha-old.vsix'), { publisher: 'codebay-test', name: 'alpha', version: '1.0.0' });
  makeVsix(join(source, 'alpha-new.vsix'), { publisher: 'codebay-test', name: 'alpha', version: '1.1.0' });
  makeVsix(join(source, 'beta.vsix'), { publisher: 'codebay-test', name: 'beta', version: '0.2.0' });
  makeVsix(join(source, 'future.vsix'), { publisher: 'codebay-test', name: 'future', version: '1.0.0' }, '^1.999.0');
  await writeFile(join(source, 'broken.vsix'), 'not a zip');
  stack = await startStack({ name: 'extensions', env: { EXTENSION_SOURCE_DIR: source } });
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  if (source) await rm(source, { recursive: true, force: true });
});

async function log(path: string): Promise<string> {
  return ((await (await stack.api(path)).json()) as { logs: string }).logs;
}

describe('extensions from the operator’s extension source (Docker runtime)', () => {
  it('bakes the wanted .vsix files into the image, lists the missing one, installs the baked ones from the image at start', async () => {
    const file = uniqueConfigFile({
      customizations: { vscode: { extensions: ['Codebay-Test.Alpha', 'codebay-test.beta', 'codebay-test.gone', 'codebay-test.future', 'x.y', '-x.y'] } },
    });
    const dir = dirname(file);
    try {
      const created = await createFromDevcontainer(stack, user, file);
      const running = await waitForStatus(stack, created.instance_id, ['Running'], 240_000);
      const id = running.instance_id;

      // The build: the missing one is a warning on the instance and in the build log; the corrupt file was skipped with its reason.
      const missing = running.warnings.find((w) => w.property === PROPERTY);
      expect(missing?.message).toBe(`${PROPERTY}: codebay-test.gone: not in this deployment’s extension source; not installed`);
      const buildLog = await log(`/api/instances/${id}/build-logs`);
      expect(buildLog).toContain(`codebay: warning: ${PROPERTY}: codebay-test.gone: not in this deployment’s extension source; not installed`);
      expect(buildLog).toMatch(/codebay: extension source: broken\.vsix skipped: /);
      expect(buildLog).toContain('codebay: extension codebay-test.alpha 1.1.0: baked into the image');

      // The builder counts them.
      const metrics = await (await fetch(`http://127.0.0.1:${stack.ports.builder}/metrics`)).text();
      expect(metrics).toMatch(/^codebay_build_extensions_total\{result="baked"[^}]*\} 3$/m);
      expect(metrics).toMatch(/^codebay_build_extensions_total\{result="missing"[^}]*\} 1$/m);

      // The image holds the chosen files and their index; its label says what was baked and what is missing.
      const docker = testDocker();
      const container = stack.names.container(id);
      const index = await execIn(docker, container, ['cat', `${BAKED}/index.json`]);
      expect(index.code).toBe(0);
      expect(JSON.parse(index.stdout)).toEqual({
        extensions: [
          { id: 'codebay-test.alpha', version: '1.1.0', file: 'codebay-test.alpha-1.1.0.vsix' },
          { id: 'codebay-test.beta', version: '0.2.0', file: 'codebay-test.beta-0.2.0.vsix' },
          { id: 'codebay-test.future', version: '1.0.0', file: 'codebay-test.future-1.0.0.vsix' },
        ],
        missing: ['codebay-test.gone'],
      });
      const listing = await execIn(docker, container, ['ls', BAKED]);
      expect(listing.stdout.split('\n').filter(Boolean).sort()).toEqual([
        'codebay-test.alpha-1.1.0.vsix',
        'codebay-test.beta-0.2.0.vsix',
        'codebay-test.future-1.0.0.vsix',
        'index.json',
      ]);
      const { Image } = (await docker.getContainer(container).inspect()) as { Image: string };
      const labels = (await docker.getImage(Image).inspect()).Config?.Labels ?? {};
      expect(JSON.parse(labels['codebay.extensions']!)).toEqual({
        baked: [
          { id: 'codebay-test.alpha', version: '1.1.0' },
          { id: 'codebay-test.beta', version: '0.2.0' },
          { id: 'codebay-test.future', version: '1.0.0' },
        ],
        missing: ['codebay-test.gone'],
        // The fingerprint of the source it was baked from (the build cache's record keeps it too).
        source: expect.stringMatching(/^[a-f0-9]{64}$/) as unknown,
      });

      // At start: alpha and beta installed in the user's extensions dir (root's here), from the image's files.
      const extensionsDir = '/root/.local/share/code-server/extensions';
      await waitFor(
        'alpha and beta in the user’s extensions dir',
        async () => {
          const r = await execIn(docker, container, [
            'sh',
            '-c',
            `test -f ${extensionsDir}/codebay-test.alpha-1.1.0/package.json && test -f ${extensionsDir}/codebay-test.beta-0.2.0/package.json`,
          ]);
          return r.code === 0 ? true : undefined;
        },
        120_000,
      );
      // The editor (VS Code 1.139) refuses future (^1.999.0): that replaces the build's warning, and names the missing one too.
      const warned = await waitFor(
        'the launcher’s extensions warning on the instance',
        async () => {
          const i: InstanceResponse = await getInstance(stack, id);
          const w = i.warnings.find((x) => x.property === PROPERTY);
          return w?.message.includes('failed to install at start') ? w : undefined;
        },
        120_000,
      );
      expect(warned.message).toMatch(
        /^customizations\.vscode\.extensions: codebay-test\.future \(.+\): failed to install at start; codebay-test\.gone: not in this deployment’s extension source; not installed$/,
      );
      expect(warned.message).toMatch(/compatible/);

      // No network: each install named its file in the image; the missing one was never looked for.
      const instanceLog = await log(`/api/instances/${id}/logs`);
      for (const f of ['codebay-test.alpha-1.1.0.vsix', 'codebay-test.beta-0.2.0.vsix', 'codebay-test.future-1.0.0.vsix'])
        expect(instanceLog).toContain(`: from ${BAKED}/${f}`);
      expect(instanceLog).toMatch(/extension Codebay-Test\.Alpha: installed in \d+ ms/);
      expect(instanceLog).toMatch(/extension codebay-test\.beta: installed in \d+ ms/);
      expect(instanceLog).toContain('extension codebay-test.gone: not in this image');
      expect(instanceLog).not.toContain('[extension codebay-test.gone]');
      expect(instanceLog).not.toContain('[extension x.y]');
      expect(instanceLog).toContain('installing 3 extension(s) in the background (3 from the image)');

      // The same configuration again: the build cache's image (baked), and the build's warning with it.
      const again = await createFromDevcontainer(stack, user, file);
      const cached = await waitForStatus(stack, again.instance_id, ['Running'], 180_000);
      expect(cached.build?.cache).toBe('hit');
      expect(await log(`/api/instances/${again.instance_id}/build-logs`)).toContain(
        `codebay: warning: ${PROPERTY}: codebay-test.gone: not in this deployment’s extension source; not installed`,
      );
      const second = stack.names.container(again.instance_id);
      await waitFor(
        'alpha installed in the second instance',
        async () => ((await execIn(docker, second, ['test', '-f', `${extensionsDir}/codebay-test.alpha-1.1.0/package.json`])).code === 0 ? true : undefined),
        120_000,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 420_000);
});
