import { PermanentError, TransientError } from '@codebay/contracts';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import stripAnsi from 'strip-ansi';
import { stepCommandFailed, type FailedBuild } from './build-failure.ts';

const require = createRequire(import.meta.url);
const CLI_JS = join(dirname(require.resolve('@devcontainers/cli/package.json')), 'devcontainer.js');
const GUARD = fileURLToPath(new URL('./cli-guard.mjs', import.meta.url));

export interface CliBuildOptions {
  workspaceFolder: string;
  imageName: string;
  /** The CLI's whole environment (see cliEnvironment): nothing of the builder's own is inherited. */
  env: Record<string, string>;
  dockerPath: string;
  signal: AbortSignal;
  /** A build that prints nothing for this long is ended (ms). */
  stallMs: number;
  onLine: (line: string) => void;
  /** An image whose layers the build may reuse (`--cache-from`: BuildKit reads its inline cache metadata); must be on the daemon. */
  cacheFrom?: string;
  labels?: Record<string, string>;
}

/**
 * The environment the Dev Containers CLI runs with: the builder's own is never inherited
 * (it holds service credentials, and the CLI substitutes `${localEnv:NAME}` from its
 * environment into the config). Only what the CLI needs, plus the variables the operator
 * allow-listed (`BUILD_LOCAL_ENV_ALLOWLIST`, taken from the builder's environment).
 * Every HTTP(S) request the CLI makes (feature and image manifests, feature tarballs) goes
 * through `proxyUrl`, the builder's egress proxy, which applies FEATURE_SOURCES and timeouts.
 */
export function cliEnvironment(opts: {
  /** Per-job TMPDIR (the CLI caches state there that must not leak between jobs); HOME lives under it. */
  tmpDir: string;
  dockerHost: string;
  proxyUrl: string;
  allowlist: readonly string[];
  from?: NodeJS.ProcessEnv;
}): Record<string, string> {
  const from = opts.from ?? process.env;
  const env: Record<string, string> = {};
  // Proxy settings are the builder's own: an allow-listed one must not route around the egress proxy.
  for (const name of opts.allowlist) if (from[name] !== undefined && !/proxy/i.test(name)) env[name] = from[name];
  return {
    ...env,
    PATH: from.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: join(opts.tmpDir, 'home'),
    TMPDIR: opts.tmpDir,
    DOCKER_HOST: opts.dockerHost,
    NO_COLOR: '1',
    HTTP_PROXY: opts.proxyUrl,
    HTTPS_PROXY: opts.proxyUrl,
    http_proxy: opts.proxyUrl,
    https_proxy: opts.proxyUrl,
    NO_PROXY: '',
    no_proxy: '',
  };
}

/**
 * The version line of Docker's buildx plugin as the Dev Containers CLI will find it
 * (`<dockerPath> buildx version`, with a HOME of its own as each build has: only the system's
 * plugin folders count, e.g. /usr/local/lib/docker/cli-plugins). Without buildx the CLI
 * silently falls back to Docker's classic builder, which builds every stage of a multi-stage
 * Dockerfile (the reference CLI builds with BuildKit wherever buildx is installed), so a
 * builder refuses to start without it.
 * @throws Error naming the plugin and what running it said.
 */
export async function buildxVersion(dockerPath: string, dockerHost: string): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'codebay-buildx-'));
  try {
    const { stdout } = await promisify(execFile)(dockerPath, ['buildx', 'version'], {
      env: { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: home, DOCKER_HOST: dockerHost },
      timeout: 30_000,
    });
    return stdout.trim();
  } catch (err) {
    const said = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n').slice(-3).join(' ');
    throw new Error(
      `\`${dockerPath} buildx version\` failed: the builder needs Docker's buildx plugin (BuildKit builds, as the Dev Containers CLI does them) in a system plugin folder such as /usr/local/lib/docker/cli-plugins (deploy/buildkit/install.sh builds it) — ${said}`,
    );
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** Lines in which Docker (BuildKit) says why a build step failed. */
const DOCKER_FAILURE =
  /(executor failed running|did not complete successfully|failed to |error pulling|pull access denied|manifest unknown|unauthorized|not found|no such)/i;

/** The build printed nothing for too long. */
class StalledError extends PermanentError {}

/** The last lines Docker's failure line is looked for in. */
const CAUSE_LINES = 20;

/** Lines of the CLI's output kept for the failure reason (the build log has them all). */
const TAIL_LINES = 200;

const FAILED_BUILD = Symbol('failedBuild');

/** What a failed build left (its last lines, the CLI's result) on the error `DevcontainerCli.build` threw; undefined for other errors. */
export function failedBuildOf(err: unknown): FailedBuild | undefined {
  return (err as { [FAILED_BUILD]?: FailedBuild } | null)?.[FAILED_BUILD];
}

/** Faults of the machinery, not of the user's config: worth retrying. */
const TRANSIENT = [/Cannot connect to the Docker daemon/i, /ECONNREFUSED/, /ECONNRESET/, /error during connect/i, /i\/o timeout/i, /TLS handshake timeout/i];

export function isTransientBuildFailure(message: string): boolean {
  return TRANSIENT.some((re) => re.test(message));
}

/**
 * The message of a failed `devcontainer build` when explainBuildFailure names no part: the
 * CLI's summary (its `message: description`) with Docker's own failure line (DOCKER_FAILURE,
 * among the last 20) when the summary does not already say it. A summary that is only the CLI's command line
 * (`Command failed: docker build …`, ~600 characters) is replaced by its description (`An
 * error occurred building the container.`), followed by Docker's line or, without one, the
 * last 5 lines (stack traces left out). Without any summary: the last 5 lines, or the exit code.
 */
export function failureSummary(tail: readonly string[], outcome: { message?: string; description?: string }, code: number | null): string {
  const commandLine = outcome.message?.startsWith('Command failed:') ?? false;
  const summary = (commandLine ? [outcome.description] : [outcome.message, outcome.description]).filter(Boolean).join(': ');
  // The CLI's summary ("An error occurred building the image.") says less than Docker's own line,
  // looked for near the end (earlier lines hold harmless misses, e.g. `Failed to fetch control manifest`).
  const cause = tail
    .slice(-CAUSE_LINES)
    .reverse()
    .find((l) => DOCKER_FAILURE.test(l) && !/^(Error: )?(Command failed|Run: )/.test(l));
  if (summary && cause && !summary.includes(cause)) return `${summary} — ${cause}`;
  const last = tail.filter((l) => !/^\s+at /.test(l) && !/^(Error: )?Command failed:/.test(l)).slice(-5);
  if (summary && commandLine && last.length > 0) return `${summary}\nLast lines:\n${last.map((l) => `  ${l.trim()}`).join('\n')}`;
  return summary || last.join('\n') || `devcontainer build exited with ${code}`;
}

/**
 * BuildKit's prefix of a build step's output line in its plain progress: `#<vertex> <seconds> `,
 * or `<seconds> ` in the summary it repeats the failing step's last lines in after the failure.
 */
const STEP_OUTPUT_PREFIX = /^(?:#\d+ )?\d+\.\d+ /;

/**
 * Turns one stderr line of `--log-format json` into the text lines users see. A carriage return
 * (a progress redraw) starts a new line — which, inside a build step's output, keeps BuildKit's
 * prefix of that output (`#5 0.169 `): BuildKit passes a step's `\r` through unchanged, and a
 * piece after it without the prefix would read as BuildKit's own line, so that a step could forge
 * `#<n> ERROR: …` or `#<n> [stage 1/2] …` lines, after the real ones, that explainBuildFailure
 * would turn into the instance's error (another feature named, the real cause hidden).
 */
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
    .split('\n')
    .flatMap((line) => {
      const [first, ...redrawn] = line.split('\r');
      const prefix = STEP_OUTPUT_PREFIX.exec(first!)?.[0] ?? '';
      return [first!, ...redrawn.map((piece) => (piece.trimEnd().length > 0 ? `${prefix}${piece}` : piece))];
    })
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0);
}

/**
 * The Dev Containers CLI (`@devcontainers/cli`), run under cli-guard.mjs: its own process
 * group, killed as a whole on abort, and taken down with the builder if the builder dies.
 * A failed build throws a TransientError (a machinery fault) or a PermanentError whose
 * message is the CLI's summary and Docker's own failure line; `failedBuildOf(err)` gives its
 * last lines and the CLI's result, from which explainBuildFailure names the failing part.
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
      // BuildKit (buildx): stages the target does not need are not built, as `devcontainer build`
      // does wherever buildx is installed; the CLI asks for inline cache metadata in the image
      // (BUILDKIT_INLINE_CACHE=1), which a later `--cache-from` of it reuses.
      '--buildkit',
      'auto',
      '--docker-path',
      opts.dockerPath,
      ...(opts.cacheFrom ? ['--cache-from', opts.cacheFrom] : []),
      ...Object.entries(opts.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
    ];
    const child = spawn(process.execPath, args, {
      cwd: opts.workspaceFolder,
      env: opts.env,
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
    // No output for stallMs: the build is stuck (a fetch that never answers, a step waiting on input).
    let lastOutput = Date.now();
    let stalled = false;
    const watchdog = setInterval(
      () => {
        if (Date.now() - lastOutput < opts.stallMs) return;
        stalled = true;
        kill();
      },
      Math.min(5_000, Math.max(250, Math.floor(opts.stallMs / 4))),
    );
    stderr.on('line', (raw) => {
      lastOutput = Date.now();
      for (const line of cliLogLines(raw)) {
        tail.push(line);
        if (tail.length > TAIL_LINES) tail.shift();
        opts.onLine(line);
      }
    });

    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c) => resolve(c));
    });
    clearInterval(watchdog);
    opts.signal.removeEventListener('abort', kill);
    if (stalled && !opts.signal.aborted) {
      const last = tail.at(-1);
      throw new StalledError(`the build made no progress for ${Math.round(opts.stallMs / 1000)} s and was stopped${last ? `; its last line: ${last}` : ''}`);
    }
    if (opts.signal.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('build aborted');

    let outcome: { outcome?: string; message?: string; description?: string } = {};
    try {
      outcome = JSON.parse(result) as typeof outcome;
    } catch {
      /* no result line */
    }
    if (code === 0 && outcome.outcome === 'success') return;
    const message = failureSummary(tail, outcome, code);
    const context = `${[outcome.message, outcome.description, message].filter(Boolean).join('\n')}\n${tail.join('\n')}`;
    // A step whose command failed is the user's to fix, whatever its output or command says (a step
    // printing "Cannot connect to the Docker daemon" must not buy itself retries); otherwise a
    // machinery fault says more in its own words (e.g. the daemon's address) than in the CLI's summary.
    const commandFailed = stepCommandFailed(tail);
    const err =
      !commandFailed && isTransientBuildFailure(context) ? new TransientError(tail.find(isTransientBuildFailure) ?? message) : new PermanentError(message);
    // For explainBuildFailure: the failing part is named from these.
    throw Object.assign(err, { [FAILED_BUILD]: { lines: [...tail], outcome: { message: outcome.message, description: outcome.description } } });
  }
}
