import { FEATURE_SOURCES_SETTING, featureSource, formatTarget } from '@codebay/devcontainer';
import type { EgressEvent } from './egress-proxy.ts';

/** What a failed `devcontainer build` left to explain it. */
export interface FailedBuild {
  /** The last lines the CLI printed (as cliLogLines gives them), oldest first. */
  lines: readonly string[];
  /** The CLI's result line: `message` (often `Command failed: docker build …`) and `description`. */
  outcome: { message?: string; description?: string };
}

/** What the build was asked to do and what the egress proxy saw while it ran. */
export interface BuildContext {
  /** The keys of the config's `features`, as written in devcontainer.json. */
  features: readonly string[];
  /** Every fetch the egress proxy refused, timed out or could not make, in order. */
  fetches: readonly EgressEvent[];
  /** The build log's masker: a quoted line is masked whole before it is cut (a cut secret would escape the masker). */
  mask?: (line: string) => string;
}

/** Log lines quoted in a reason, at most. */
export const QUOTED_LINES = 5;
/** A quoted line longer than this is cut (characters). */
const QUOTED_LINE_CHARS = 240;

/** BuildKit's plain progress: a step starting, `#<vertex> [<stage> <n>/<m>] <instruction>` (no stage name in a one-stage file). */
const STEP = /^#(\d+) \[(?:(\S+) +)? *(\d+)\/(\d+)\] (.*)$/;
/** A step's output: `#<vertex> <seconds> <text>`. */
const STEP_OUTPUT = /^#(\d+) \d+\.\d+ ?(.*)$/;
/** A step that failed: `#<vertex> ERROR: <why>`. */
const STEP_ERROR = /^#(\d+) ERROR: (.*)$/;
/** Why a RUN step failed, in the words of BuildKit 0.8 (dockerd 20.10) and of later releases. */
const RUN_FAILED =
  /^(?:executor failed running \[(?:\/bin\/sh -c )?([\s\S]*)\]|process "(?:\/bin\/sh -c )?([\s\S]*)" did not complete successfully): exit code: (\d+)$/;
/** Where the Dev Containers CLI copies each feature: `/tmp/dev-container-features/<id>_<n>` (its `consecutiveId`). */
const FEATURE_FOLDER = /\/tmp\/dev-container-features\/([^/\s']+)_(\d+)(?=[\s/']|$)/;
/** The feature install wrapper's own last words: `ERROR: Feature "<name>" (<id>) failed to install!`. */
const FEATURE_FAILED = /^ERROR: Feature "(.*)" \((.*)\) failed to install!/;
/** The stage of the Dockerfile the Dev Containers CLI writes in which it installs features (the user's own stages come before it). */
const CLI_FEATURE_STAGE = 'dev_containers_target_stage';
/** The CLI's summary of a feature it could not fetch or read. */
const FEATURE_UNPROCESSED = /Feature '([^']+)' could not be processed/;
/** Lines that are the builder's bookkeeping, not the step's output. */
const NOISE = [/^=+$/, /^(Feature|Description|Id|Version|Documentation|Options) *:/, FEATURE_FAILED, /^(Command failed|Run): /, /^Error: /, /^\s+at /];
/** Node's and the CLI's words for a host it could not reach. */
const UNREACHABLE =
  /(getaddrinfo (?:ENOTFOUND|EAI_AGAIN) [^\s)]+|connect (?:ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH) [^\s)]+|DNS lookup of \S+ failed \(\w+\))/;

/**
 * The id the Dev Containers CLI (0.89) gives the feature written as `ref`, which names its
 * folder in the build (`<id>_<n>`): the last path segment of a local folder or of an OCI
 * reference (tag or digest dropped), `<id>` of a `devcontainer-feature-<id>.tgz` URL.
 */
export function featureIdOf(ref: string): string | undefined {
  if (ref.startsWith('https://') || ref.startsWith('http://')) return /devcontainer-feature-([^/?#]+)\.tgz(?:[?#]|$)/.exec(ref)?.[1];
  const path = ref.replace(/@sha256:[0-9a-f]+$/i, '').replace(/\/+$/, '');
  const last = path.slice(path.lastIndexOf('/') + 1);
  return last.replace(/:[^:]*$/, '') || undefined;
}

/** `"ref"` of the features written in devcontainer.json that have `id`; the id alone for one pulled in by another's dependsOn. */
function nameFeature(id: string, features: readonly string[]): string {
  const refs = features.filter((r) => featureIdOf(r) === id);
  if (refs.length === 1) return `Feature "${refs[0]}"`;
  if (refs.length > 1) return `Feature "${id}" (one of ${refs.map((r) => `"${r}"`).join(', ')})`;
  return `Feature "${id}" (a dependency of a feature in devcontainer.json)`;
}

function findLastIndex<T>(items: readonly T[], test: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (test(items[i]!)) return i;
  return -1;
}

const cut = (line: string) => (line.length > QUOTED_LINE_CHARS ? `${line.slice(0, QUOTED_LINE_CHARS - 1)}…` : line);

/** The last QUOTED_LINES lines of the failing step's own output, indented, after a line break; '' when there are none. */
function quote(lines: readonly string[]): string {
  const own = lines.filter((l) => l.trim() !== '' && !NOISE.some((re) => re.test(l))).slice(-QUOTED_LINES);
  return own.length === 0 ? '' : `\nLast lines:\n${own.map((l) => `  ${cut(l.trim())}`).join('\n')}`;
}

/** A build step that failed, from BuildKit's plain progress output. */
interface FailedStep {
  /** The stage as the Dockerfile names it; undefined for a one-stage file. */
  stage?: string;
  n: number;
  of: number;
  instruction: string;
  /** What the step printed, oldest first. */
  output: readonly string[];
  /** BuildKit's reason (`executor failed running […]: exit code: 3`, `"/x": not found`, …). */
  error: string;
  /** The command and exit code when a RUN step's command failed. */
  run?: { command: string; exitCode: number };
}

/** BuildKit's last `#<v> ERROR: …` line: where it is, its vertex and its reason. */
function lastError(all: readonly string[]): { at: number; vertex: string; error: string } | undefined {
  const at = findLastIndex(all, (l) => STEP_ERROR.test(l));
  if (at < 0) return undefined;
  const [, vertex, error] = STEP_ERROR.exec(all[at]!)!;
  return { at, vertex: vertex!, error: error! };
}

/**
 * The last step BuildKit reported failed (lastError), with its instruction line
 * (`#<v> [stage n/m] …`) and its own output (`#<v> <seconds> …`: steps running in parallel
 * interleave, and are told apart by their vertex number). Undefined when the failed vertex is
 * not a Dockerfile step.
 */
function failedStep(all: readonly string[]): FailedStep | undefined {
  const last = lastError(all);
  if (!last) return undefined;
  const { at, vertex, error } = last;
  const start = findLastIndex(all.slice(0, at), (l) => STEP.exec(l)?.[1] === vertex);
  if (start < 0) return undefined;
  const [, , stage, n, of, instruction] = STEP.exec(all[start]!)!;
  const output = all
    .slice(start + 1, at)
    .map((l) => STEP_OUTPUT.exec(l))
    .filter((m): m is RegExpExecArray => m !== null && m[1] === vertex)
    .map((m) => m[2]!);
  const run = RUN_FAILED.exec(error);
  return {
    stage,
    n: Number(n),
    of: Number(of),
    instruction: instruction!,
    output,
    error,
    run: run ? { command: (run[1] ?? run[2])!, exitCode: Number(run[3]) } : undefined,
  };
}

/**
 * Whether BuildKit reported a step whose command exited non-zero (`#5 ERROR: executor failed
 * running […]: exit code: 3`; later releases `process "…" did not complete successfully`): the
 * user's to fix, never a machinery fault. A step's own output cannot forge the line: BuildKit
 * prefixes every line of it (`#5 0.12 `, see cliLogLines).
 */
export function stepCommandFailed(lines: readonly string[]): boolean {
  return lines.some((l) => RUN_FAILED.test(STEP_ERROR.exec(l)?.[2] ?? ''));
}

/** `(build step n of m)`, with the stage when the user's Dockerfile names it (the CLI names its own `dev_containers_…` and an unnamed last stage `dev_container_auto_added_stage_label`). */
function where(step: FailedStep): string {
  const stage = step.stage && !/^dev_containers?_/.test(step.stage) ? ` of stage "${step.stage}"` : '';
  return ` (build step ${step.n} of ${step.of}${stage})`;
}

/**
 * A failed feature install: `Feature "<ref as written>" failed to install: its install script
 * exited with code N (build step n of m).` plus the step's last lines. Recognised by the RUN
 * step of the feature's folder (`/tmp/dev-container-features/<id>_<n>`) failing, or by the
 * install wrapper's `ERROR: Feature "…" (…) failed to install!`.
 */
function featureInstallFailure(failed: FailedBuild, step: FailedStep | undefined, ctx: BuildContext): string | undefined {
  const { lines } = failed;
  // Only the CLI's own stage installs features, and only when the config has some: a step of the
  // user's Dockerfile can print the wrapper's words or name a feature folder in its command, and
  // the error would then blame a feature (anyone's, as the step writes it) for the user's own step.
  if (ctx.features.length === 0 || (step && step.stage !== CLI_FEATURE_STAGE)) return undefined;
  const folder = FEATURE_FOLDER.exec(step?.run?.command ?? '') ?? FEATURE_FOLDER.exec(step?.instruction ?? '');
  const wrapper = [...(step?.output ?? lines)]
    .reverse()
    .map((l) => FEATURE_FAILED.exec(l))
    .find(Boolean);
  if (!folder && !wrapper) return undefined;
  const id = folder?.[1] ?? (wrapper![2] !== 'Unknown' ? wrapper![2]! : wrapper![1]!);
  const code = step?.run ? `exited with code ${step.run.exitCode}` : 'failed';
  return `${nameFeature(id, ctx.features)} failed to install: its install script ${code}${step ? where(step) : ''}. The whole output is in the build log.${quote(step?.output ?? lines)}`;
}

/**
 * A failed step of the user's Dockerfile: `The Dockerfile step "RUN …" failed with exit code
 * N (build step n of m of stage "s").` plus its last lines; another instruction that failed
 * (a COPY of a missing file, a FROM that cannot be pulled) with BuildKit's reason.
 */
function stepFailure(step: FailedStep | undefined): string | undefined {
  if (!step) return undefined;
  const how = step.run ? `failed with exit code ${step.run.exitCode}` : `failed: ${cut(step.error)}`;
  return `The Dockerfile step "${cut(step.instruction)}" ${how}${where(step)}. The whole output is in the build log.${quote(step.output)}`;
}

/**
 * A failed part of the build that is not a Dockerfile step — BuildKit's vertex for an `ADD
 * <url>` fetch, the image metadata of a FROM (`[internal] load metadata for …`): `The build
 * failed at "<what>": <BuildKit's reason>.`
 */
function vertexFailure(failed: FailedBuild): string | undefined {
  const { lines } = failed;
  const last = lastError(lines);
  if (!last) return undefined;
  const { vertex, error } = last;
  // A vertex's first line is its name; later ones are its output, DONE, CACHED or ERROR.
  const title = lines.find((l) => l.startsWith(`#${vertex} `))!.slice(`#${vertex} `.length);
  if (title.startsWith('ERROR: ')) return undefined;
  return `The build failed at "${cut(title)}": ${cut(error)}. The whole output is in the build log.`;
}

/**
 * A feature the CLI could not fetch: named as written, and why — the egress proxy refused its
 * source (the policy's reason names FEATURE_SOURCES), or its registry or host could not be
 * reached from this deployment (a name that does not resolve, a connection refused or timed
 * out), or the registry has no such feature (404, manifest unknown) or refused access (401,
 * 403), or else what the CLI said about it.
 */
function featureFetchFailure(failed: FailedBuild, ctx: BuildContext): string | undefined {
  const text = [failed.outcome.message ?? '', ...failed.lines].join('\n');
  const ref =
    FEATURE_UNPROCESSED.exec(text)?.[1] ?? failed.lines.map((l) => /^Could not resolve Feature (?:manifest for )?'([^']+)'/.exec(l)?.[1]).find(Boolean);
  if (!ref) return undefined;
  let source: { host: string; port: number } | undefined;
  try {
    source = featureSource(ref);
  } catch {
    source = undefined;
  }
  const named = `Feature "${ref}" could not be fetched`;
  if (!source) return `${named}. The whole output is in the build log.${quote(failed.lines)}`;
  const target = formatTarget(source.host, source.port);
  // As written: `ghcr.io`, `127.0.0.1:5000`; a tarball URL's host.
  const where = ref.startsWith('https://') ? new URL(ref).host : ref.slice(0, ref.indexOf('/'));
  const what = ref.startsWith('https://') ? `its host ${where}` : `its registry ${where}`;
  const event = [...ctx.fetches].reverse().find((e) => e.target === target);
  if (event?.kind === 'refused') {
    return `${named}: this deployment does not allow fetching from ${source.host} (${event.reason}). An operator allows a feature source by listing it in ${FEATURE_SOURCES_SETTING}.`;
  }
  const said = failed.lines.find((l) => UNREACHABLE.test(l) && l.includes(source.host))?.match(UNREACHABLE)?.[0];
  const why = event ? `${event.kind === 'timeout' ? 'timed out: ' : ''}${event.reason}` : said;
  if (why) {
    return (
      `${named}: ${what} cannot be reached from this deployment (${why}). ` +
      `Use a copy of the feature from a source this deployment reaches (an operator lists allowed sources in ${FEATURE_SOURCES_SETTING}), or ask an operator to let the builders reach ${where}.`
    );
  }
  // The registry answered: the reference names nothing there, or it wants credentials.
  const status = failed.lines
    .map((l) => /^\[httpOci\] (\d{3})\b/.exec(l)?.[1])
    .filter(Boolean)
    .at(-1);
  if (status === '404' || failed.lines.some((l) => /MANIFEST_UNKNOWN|NAME_UNKNOWN|manifest unknown/.test(l))) {
    return `${named}: ${where} has no such feature or version (manifest unknown); check the reference and its tag. The whole output is in the build log.`;
  }
  if (status === '401' || status === '403') {
    return `${named}: ${where} refused access (HTTP ${status}); the feature may be private, and this deployment holds no credentials for it. The whole output is in the build log.`;
  }
  return `${named} from ${where}. The whole output is in the build log.${quote(failed.lines)}`;
}

/**
 * Explains a failed `devcontainer build` in one or two sentences that name the failing part
 * — a feature as written in devcontainer.json and the build step its install ran in, a
 * feature that could not be fetched and why (source refused by FEATURE_SOURCES, registry
 * unreachable from this deployment), a failing Dockerfile step, another part of the build
 * that failed (an `ADD <url>` fetch, a FROM's image) — followed by up to
 * QUOTED_LINES of that step's own output (`\nLast lines:\n  …`). The whole log stays in
 * the build log. Undefined when the failure is none of these (the caller keeps its own
 * message). The patterns are those of the Dev Containers CLI 0.89 with BuildKit's plain
 * progress output (buildx; dockerd 20.10's BuildKit and later releases).
 */
export function explainBuildFailure(failed: FailedBuild, ctx: BuildContext): string | undefined {
  // Masked whole first: a line cut later would leave part of a secret the masker no longer knows.
  const masked = ctx.mask ? { ...failed, lines: failed.lines.map(ctx.mask) } : failed;
  const step = failedStep(masked.lines);
  return featureFetchFailure(masked, ctx) ?? featureInstallFailure(masked, step, ctx) ?? stepFailure(step) ?? vertexFailure(masked);
}
