import { parseRegistryCredentials, registryAuthConfig, type DockerAuthConfig } from '@codebay/platform';
import { readFileSync } from 'node:fs';

/**
 * Where the real components are: the environment first, then the file
 * `deploy/local/components.sh up` writes. Tests never start a fake in their place.
 */
export interface Components {
  /** With its password: Redis refuses clients without it. */
  redisUrl: string;
  dockerHost: string;
  /** codebay's registry: pulls (read-only, pull user) … */
  registry: string;
  /** … and pushes (builders' user). */
  registryPush: string;
  /** `user:password` of the pull-only and the push user. */
  registryPullAuth: string;
  registryPushAuth: string;
  /** The base-image mirror standing in for Docker Hub (anonymous). */
  mirror: string;
  editorRoot: string;
  /** A second daemon for a second builder (`CODEBAY_SECOND_DOCKERD=1 components.sh up`). */
  dockerHost2: string;
}

/**
 * The Redis database the suites use (`CODEBAY_TEST_REDIS_DB`, default 1): never the one a
 * running system uses (`npm start`: database 0), so neither sees the other's records, locks,
 * build cache or queues.
 */
export const TEST_REDIS_DB = Number(process.env.CODEBAY_TEST_REDIS_DB ?? 1);

/** `url` with its database set to `db` (`redis://user:pw@host:port/<db>`). */
export function redisDatabase(url: string, db: number): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

export function components(): Components {
  const file = `${process.env.CODEBAY_STATE ?? '/var/lib/codebay'}/local.env`;
  const fromFile: Record<string, string> = {};
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const m = /^(?:export\s+)?([A-Z_]+)=(.*)$/.exec(line.trim());
      if (m) fromFile[m[1]!] = m[2]!.replace(/^["']|["']$/g, '');
    }
  } catch {
    throw new Error(`${file} is missing: run \`bash deploy/local/components.sh up\` (npm test does) before the integration suites`);
  }
  const pick = (k: string) => {
    const v = process.env[k] ?? fromFile[k];
    if (!v) throw new Error(`${k} is not set and not in ${file}`);
    return v;
  };
  return {
    redisUrl: redisDatabase(pick('REDIS_URL'), TEST_REDIS_DB),
    dockerHost: pick('DOCKER_HOST'),
    registry: pick('REGISTRY'),
    registryPush: pick('REGISTRY_PUSH'),
    registryPullAuth: pick('REGISTRY_PULL_AUTH'),
    registryPushAuth: pick('REGISTRY_PUSH_AUTH'),
    mirror: pick('CODEBAY_MIRROR'),
    // Only the suites with two builders need it: asked for when used.
    get dockerHost2() {
      return pick('DOCKER_HOST_2');
    },
    editorRoot: process.env.CODEBAY_EDITOR_ROOT ?? `${process.env.CODEBAY_CACHE ?? '/var/cache/codebay'}/editor`,
  };
}

/** The pull-only user of codebay's registry as the Engine API and RegistryClient take it. */
export function pullLogin(c: Components = components()): DockerAuthConfig {
  return registryAuthConfig(c.registry, parseRegistryCredentials(c.registryPullAuth))!;
}

/** The builders' push user (a test acting as someone who holds it). */
export function pushLogin(c: Components = components()): DockerAuthConfig {
  return registryAuthConfig(c.registryPush, parseRegistryCredentials(c.registryPushAuth))!;
}
