import type { Docker } from '@codebay/platform';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DOCKER_BIN = '/usr/bin/docker'; // the Debian client; a newer one may sit earlier on PATH
export const CLI_JS = join(dirname(createRequire(join(ROOT, 'services/builder/package.json')).resolve('@devcontainers/cli/package.json')), 'devcontainer.js');

const now = () => performance.now();

/** Runs a program to its end; never rejects (the exit code says how it went). */
export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 10 * 60_000, maxBuffer: 64 * 1024 * 1024, killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/**
 * The plain path codebay is measured against: `devcontainer build` of a folder, as a person
 * would run it on one machine (own TMPDIR, no lockfile, the classic builder like codebay).
 */
export async function plainBuild(workspace: string, image: string, dockerHost: string, tmpDir: string, timeoutMs = 15 * 60_000): Promise<number> {
  const t0 = now();
  const build = await run(
    process.execPath,
    [CLI_JS, 'build', '--workspace-folder', workspace, '--image-name', image, '--no-lockfile', '--buildkit', 'auto', '--docker-path', DOCKER_BIN],
    { env: { ...process.env, DOCKER_HOST: dockerHost, TMPDIR: tmpDir }, cwd: workspace, timeoutMs },
  );
  if (build.code !== 0)
    throw new Error(
      `plain devcontainer build failed (${build.code}): ${build.stdout.trim().split('\n').at(-1)}\n${build.stderr.split('\n').slice(-15).join('\n')}`,
    );
  return now() - t0;
}

const CACHE_TAG = /(^|\/)(codebay-devcontainer:|vscode-devcontainer-|vsc-|dev_container_|codebay-bench-plain-)/;

export interface ColdReport {
  removedTags: number;
  prunedImages: number;
  keptInUse: string[];
  remaining: number;
  ms: number;
}

/** Removes every image the builds could reuse (tags, their untagged parents, dangling layers), keeping the base image. */
export async function makeCold(docker: Docker): Promise<ColdReport> {
  const t0 = now();
  let removedTags = 0;
  const keptInUse = new Set<string>();
  const images = await docker.listImages({ all: false });
  for (const img of images) {
    for (const tag of img.RepoTags ?? []) {
      if (!CACHE_TAG.test(tag)) continue;
      try {
        await docker.getImage(tag).remove({ noprune: false });
        removedTags++;
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 409) keptInUse.add(tag);
        else if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      }
    }
  }
  let prunedImages = 0;
  for (let round = 0; round < 5; round++) {
    const r = await docker.pruneImages({ filters: { dangling: ['true'] } });
    const n = r.ImagesDeleted?.length ?? 0;
    prunedImages += n;
    if (n === 0) break;
  }
  await docker.pruneBuilder().catch(() => undefined); // BuildKit's build cache: a cold build starts from nothing
  const remaining = (await docker.listImages({ all: true })).length;
  return { removedTags, prunedImages, keptInUse: [...keptInUse], remaining, ms: Math.round(now() - t0) };
}
