// docker-compose.yml's extension source as compose resolves it (`docker compose config`, the
// real compose CLI; nothing is started): a folder named in .env is bind-mounted read-only into
// the builders and named to them; without one, the empty folder shipped under deploy/compose is
// mounted and the builders are told of no source. (compose.test.ts runs the whole system with a
// source and builds with it.)
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { composeBinary } from '../support/compose.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);
const TARGET = '/var/lib/codebay/extension-source';

interface Resolved {
  services: {
    builder: { environment: Record<string, string>; volumes: Array<{ type: string; source: string; target: string; read_only?: boolean; bind?: object }> };
  };
}

describe('docker-compose.yml: the builders’ extension source', () => {
  let work: string;
  let binary: string;
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'codebay-compose-config-'));
    binary = await composeBinary();
  }, 300_000);
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** The builder service as compose resolves it with `.env` holding the required secrets and `extra` lines. */
  async function builderWith(extra: string[]): Promise<Resolved['services']['builder']> {
    const envFile = join(work, `${extra.length}.env`);
    const secrets = ['REDIS_PASSWORD=x', 'CODEBAY_ADMIN_TOKEN=x', 'CODEBAY_SECRET_KEY=x', 'REGISTRY_PULL_AUTH=a:b', 'REGISTRY_PUSH_AUTH=a:b', 'DOCKER_GID=0'];
    await writeFile(envFile, `${[...secrets, ...extra].join('\n')}\n`);
    const { stdout } = await run(
      binary,
      [
        '-p',
        'codebay-config-test',
        '-f',
        join(ROOT, 'docker-compose.yml'),
        '--project-directory',
        ROOT,
        '--env-file',
        envFile,
        'config',
        '--format',
        'json',
        'builder',
      ],
      { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME }, maxBuffer: 16 << 20 },
    );
    return (JSON.parse(stdout) as Resolved).services.builder;
  }

  it('a folder named in .env: mounted read-only (never created when missing) and named to the builder', async () => {
    const builder = await builderWith([`EXTENSION_SOURCE_DIR=${work}`]);
    expect(builder.environment.EXTENSION_SOURCE_DIR).toBe(TARGET);
    expect(builder.volumes.find((v) => v.target === TARGET)).toEqual({
      type: 'bind',
      source: work,
      target: TARGET,
      read_only: true,
      bind: { create_host_path: false },
    });
  });

  it('none in .env: the empty folder shipped is mounted, and the builder has no source', async () => {
    const builder = await builderWith([]);
    expect(builder.environment.EXTENSION_SOURCE_DIR).toBe('');
    expect(builder.volumes.find((v) => v.target === TARGET)).toMatchObject({
      type: 'bind',
      source: join(ROOT, 'deploy/compose/no-extension-source'),
      read_only: true,
    });
  });
});
