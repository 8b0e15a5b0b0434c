import { PermanentError, TransientError } from '@codebay/contracts';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import stripAnsi from 'strip-ansi';

const require = createRequire(import.meta.url);
const CLI_JS = join(dirname(require.resolve('@devcontainers/cli/package.json')), 'devcontainer.js');
const GUARD = fileURLToPath(new URL('./cli-guard.mjs', import.meta.url));

export interface CliBuildOptions {
  workspaceFolder: string;
  imageName: string;
  /** Per-job TMPDIR: the CLI caches state there that must not leak between jobs. */
  tmpDir: string;
  dockerHost: string;
  dockerPath: string;
  signal: AbortSignal;
  onLine: (line: string) => void;
  /** An image whose layers the build may reuse (`--cache-from`); must be on the daemon. */
  cacheFrom?: string;
  labels?: Record<string, string>;
}

/** Faults of the machinery, not of the user's config: worth retrying. */
const TRANSIENT = [/Cannot connect to the Docker daemon/i, /ECONNREFUSED/, /ECONNRESET/, /error during connect/i, /i\/o timeout/i, /TLS handshake timeout/i];

export function isTransientBuildFailure(message: string): boolean {
  return TRANSIENT.some((re) => re.test(message));
}

/** Turns one stderr line of `--log-format json` into the text lines users see. */
export function cliLogLines(raw: string): string[] {
  let text = raw;
  try {
    const entry = JSON.parse(raw) as { type?: string; text?: string };
    if (typeof entry.text !== 'string') return [];
    if (entry.type === 'stop' || entry.type === 'progress') return [];
    text = entry.text;
  } catch {
    // not JSON: keep the raw line
  }
  return stripAnsi(text)
    .replace(/\r/g, '\n')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0);
}

/**
 * The Dev Containers CLI (`@devcontainers/cli`), run under cli-guard.mjs: its own process
 * group, killed as a whole on abort, and taken down with the builder if the builder dies.
 */
export class DevcontainerCli {
  readonly path = CLI_JS;

  async build(opts: CliBuildOptions): Promise<void> {
    const args = [
      GUARD,
      CLI_JS,
      'build',
      '--workspace-folder',
      opts.workspaceFolder,
      '--image-name',
      opts.imageName,
      '--no-lockfile',
      '--log-format',
      'json',
      '--buildkit',
      'never',
      '--docker-path',
      opts.dockerPath,
      ...(opts.cacheFrom ? ['--cache-from', opts.cacheFrom] : []),
      ...Object.entries(opts.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    ];
    const child = spawn(process.execPath, args, {
      cwd: opts.workspaceFolder,
      env: { ...process.env, DOCKER_HOST: opts.dockerHost, TMPDIR: opts.tmpDir, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      detached: true,
    });
    // Abort kills the whole group: the CLI and the docker build it started.
    const kill = () => {
      if (child.pid) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
    };
    opts.signal.addEventListener('abort', kill, { once: true });

    let result = '';
    const stdout = createInterface({ input: child.stdout! });
    stdout.on('line', (l) => {
      if (l.trim().startsWith('{')) result = l.trim();
    });
    const stderr = createInterface({ input: child.stderr! });
    const tail: string[] = [];
    stderr.on('line', (raw) => {
      for (const line of cliLogLines(raw)) {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        opts.onLine(line);
      }
    });

    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c) => resolve(c));
    });
    opts.signal.removeEventListener('abort', kill);
    if (opts.signal.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('build aborted');

    let outcome: { outcome?: string; message?: string; description?: string } = {};
    try {
      outcome = JSON.parse(result) as typeof outcome;
    } catch {
      /* no result line */
    }
    if (code === 0 && outcome.outcome === 'success') return;
    const message = [outcome.message, outcome.description].filter(Boolean).join(': ') || tail.slice(-5).join('\n') || `devcontainer build exited with ${code}`;
    const context = `${message}\n${tail.join('\n')}`;
    // A machinery fault says more in its own words (e.g. the daemon's address) than in the CLI's summary.
    if (isTransientBuildFailure(context)) throw new TransientError(tail.find(isTransientBuildFailure) ?? message);
    throw new PermanentError(message);
  }
}
