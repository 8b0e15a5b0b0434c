import { redisKeys } from '@codebay/contracts';
import { createRedis } from '@codebay/platform';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { components } from '../support/components.ts';
import { createFromDevcontainer, getInstance, uniqueDevcontainer, waitForStatus } from '../support/instances.ts';
import { freePort } from '../support/ports.ts';
import { forgetUsers } from '../support/records.ts';
import { startStack, type Stack } from '../support/stack.ts';
import { waitFor } from '../support/wait.ts';
import { salt } from '../support/workspaces.ts';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../samples', import.meta.url));
const BACKUP = join(ROOT, 'deploy/local/backup.sh');

/**
 * deploy/local/backup.sh on the live single-machine components: `create` while the system runs,
 * `restore` into a state dir of its own, and the restored Redis and registry, started from it,
 * hold what the live ones held: the instance's record and the image built for it.
 */
describe('backup and restore (deploy/local/backup.sh)', () => {
  let stack: Stack;
  let dir: string | undefined;
  const c = components();
  const user = `backup-${salt()}`;
  const work = mkdtempSync(join(tmpdir(), 'codebay-backup-'));
  const started: ChildProcess[] = [];

  beforeAll(async () => {
    stack = await startStack({ name: 'backup' });
  });
  afterAll(async () => {
    for (const p of started) p.kill('SIGTERM');
    // The backup holds a copy of the whole registry: not kept.
    rmSync(work, { recursive: true, force: true });
    await stack?.stop();
    await forgetUsers(user);
  });

  it('a backup taken while the system runs restores into Redis and a registry that hold the instance and its image', async () => {
    const inst = await createFromDevcontainer(stack, user, await uniqueDevcontainer(`${SAMPLES}/simple-devcontainer.json`));
    await waitForStatus(stack, inst.instance_id, ['Running'], 300_000);
    // The instance may run before its image's push ends (from the builder's own image): wait for it.
    const running = await waitFor(
      'the push to end',
      async () => {
        const r = await getInstance(stack, inst.instance_id);
        return r.devcontainer_image ? r : undefined;
      },
      120_000,
      200,
    );
    const live = createRedis(c.redisUrl, 'test-backup');
    const record = await live.hgetall(redisKeys.instance(inst.instance_id));
    await live.quit();

    dir = join(work, 'backup');
    await run('bash', [BACKUP, 'create', dir], { env: process.env });
    const state = join(work, 'state');
    await run('bash', [BACKUP, 'restore', dir], { env: { ...process.env, CODEBAY_STATE: state } });
    // The secrets came along: the Redis password (components.sh makes it), and the platform key and
    // admin token where `npm start` has made them on this machine (a fresh machine has neither).
    expect(existsSync('/var/lib/codebay/redis.password')).toBe(true);
    for (const secret of ['redis.password', 'secret-key', 'admin-token'].filter((f) => existsSync(join('/var/lib/codebay', f))))
      expect(readFileSync(join(state, secret), 'utf8'), secret).toBe(readFileSync(join('/var/lib/codebay', secret), 'utf8'));

    // Redis as components.sh runs it (append-only file), from the restored dir.
    const redisPort = await freePort();
    const password = readFileSync(join(state, 'redis.password'), 'utf8').trim();
    const redis = spawn(
      'redis-server',
      ['--bind', '127.0.0.1', '--port', String(redisPort), '--dir', join(state, 'redis'), '--appendonly', 'yes', '--save', '', '--requirepass', password],
      {
        stdio: 'ignore',
      },
    );
    started.push(redis);
    const db = new URL(c.redisUrl).pathname.slice(1) || '0';
    const restored = createRedis(`redis://default:${password}@127.0.0.1:${redisPort}/${db}`, 'test-restored');
    // Refused until the server has loaded its files: the wait below retries.
    restored.on('error', () => undefined);
    try {
      await waitFor('the restored Redis', async () => ((await restored.ping().catch(() => '')) === 'PONG' ? true : undefined), 15_000, 100);
      expect(await restored.hgetall(redisKeys.instance(inst.instance_id))).toEqual(record);
    } finally {
      restored.disconnect();
    }

    // The registry, from the restored storage: the instance's image, by digest.
    const registryPort = await freePort();
    const config = join(work, 'registry.yml');
    await run('bash', [
      '-c',
      `printf 'version: 0.1\\nstorage:\\n  filesystem:\\n    rootdirectory: %s\\nhttp:\\n  addr: 127.0.0.1:%s\\n' "$0" "$1" > "$2"`,
      join(state, 'registry'),
      String(registryPort),
      config,
    ]);
    const registry = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
    started.push(registry);
    const [repository, digest] = running.devcontainer_image!.replace(/^[^/]+\//, '').split('@') as [string, string];
    const manifest = () =>
      fetch(`http://127.0.0.1:${registryPort}/v2/${repository}/manifests/${digest}`, {
        method: 'HEAD',
        headers: {
          accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.index.v1+json',
        },
      }).catch(() => undefined);
    const head = await waitFor('the restored registry', async () => (await manifest()) ?? undefined, 15_000, 100);
    expect(head.status).toBe(200);
  });

  it('a damaged backup is refused before anything is replaced', async () => {
    expect(dir).toBeDefined();
    const state = join(work, 'state-kept');
    mkdirSync(join(state, 'registry'), { recursive: true });
    writeFileSync(join(state, 'registry', 'mine'), 'still here');
    appendFileSync(join(dir!, 'artifacts.tar'), 'damage');
    const refused = await run('bash', [BACKUP, 'restore', dir!], { env: { ...process.env, CODEBAY_STATE: state } }).then(
      () => 'restored',
      (err: { stderr?: string }) => err.stderr ?? '',
    );
    expect(refused).toMatch(/artifacts\.tar does not match SHA256SUMS \(the backup is damaged\): nothing was replaced/);
    expect(readFileSync(join(state, 'registry', 'mine'), 'utf8')).toBe('still here');
    expect(readdirSync(state).sort()).toEqual(['registry']);
    expect(existsSync(join(state, '.restoring'))).toBe(false);
  });
});
