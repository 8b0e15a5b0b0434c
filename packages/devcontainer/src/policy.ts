import { UnprocessableError, imageRegistry, namesRegistry, replaceVariables } from '@codebay/contracts';
import type { DevcontainerConfig } from './parse.ts';
import { checkSourceName, featureSource, type SourcePolicy } from './sources.ts';

/**
 * What a tenant's devcontainer.json may ask of the builder. Everything in an upload is
 * hostile input to privileged tools (the Dev Containers CLI and the builder's Docker
 * daemon): these rules are checked at upload (422) and again by the builder on what it
 * actually builds.
 */
export interface BuildPolicy {
  /**
   * Variables of the builder's environment that `${localEnv:NAME}` / `${env:NAME}` may
   * name (`BUILD_LOCAL_ENV_ALLOWLIST`; empty by default). The CLI substitutes both forms
   * from its own environment in every string of the config (devcontainers/cli
   * `src/spec-common/variableSubstitution.ts`), so any other name could read a service secret.
   */
  localEnv: readonly string[];
  /**
   * Registries that hold codebay's own images (`REGISTRY`, `REGISTRY_PUSH`): no image a
   * tenant names may come from them — another tenant's build lives there.
   */
  platformRegistries: readonly string[];
  /** Where features and images may be fetched from (FEATURE_SOURCES). */
  sources: SourcePolicy;
}

/**
 * `build.options` codebay passes to `docker build`; everything else is refused. The CLI
 * hands this array to `docker build` verbatim, so `--network=host`, `--iidfile=/host/path`,
 * `--add-host`, `--build-arg` overrides, `--secret`, `--ssh` … would all reach the daemon.
 */
export const BUILD_OPTIONS_ALLOWED: readonly string[] = ['--no-cache', '--pull'];

const HOST_VARIABLE_KINDS = new Set(['localEnv', 'env']);

export interface PolicyProblem {
  /** JSON-pointer-like path of the property, e.g. `build.args.TOKEN`. */
  property: string;
  message: string;
}

/** Every string in `value` with its property path; iterative, so a deeply nested upload cannot exhaust the stack. */
function each(value: unknown, path: string, visit: (text: string, path: string) => void): void {
  const stack: [unknown, string][] = [[value, path]];
  while (stack.length > 0) {
    const [v, p] = stack.pop()!;
    if (typeof v === 'string') visit(v, p);
    else if (Array.isArray(v)) for (let i = v.length - 1; i >= 0; i--) stack.push([v[i], `${p}[${i}]`]);
    else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v).reverse()) stack.push([x, p ? `${p}.${k}` : k]);
  }
}

/** Every `${localEnv:…}` / `${env:…}` whose variable is not allow-listed, wherever the CLI would substitute it. */
export function hostVariableProblems(config: DevcontainerConfig, allowed: readonly string[]): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  each(config, '', (text, property) => {
    // `${localEnv:NAME}`, `${localEnv:NAME:default}`, `${env:NAME}`: the CLI's own pattern, `/\$\{(.*?)\}/g`, split on `:` (scanned linearly).
    replaceVariables(text, (kind, name = '', _dflt, match) => {
      if (HOST_VARIABLE_KINDS.has(kind) && !allowed.includes(name))
        problems.push({
          property,
          message: `${property}: ${match} would read the builder's own environment; only variables listed in BUILD_LOCAL_ENV_ALLOWLIST may be used (${allowed.length ? allowed.join(', ') : 'none are'})`,
        });
      return match;
    });
  });
  return problems;
}

/**
 * Docker's built-in proxy args (moby `builder.BuiltinAllowedBuildArgs`; BuildKit's predefined ARGs): the builders
 * hand them to every RUN step but leave them out of the step's cache key, so a build that
 * sets them would leave layers, fetched through a proxy of its author's choosing, that another
 * user's identical steps then take from the daemon's cache. Refused in `build.args`.
 */
const BUILTIN_PROXY_ARGS = new Set(['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy']);

/** `build.args` that are Docker's built-in proxy args, in any case. */
export function buildArgProblems(config: DevcontainerConfig): PolicyProblem[] {
  const args = (config.build as { args?: unknown } | undefined)?.args;
  if (args === null || typeof args !== 'object') return [];
  return Object.keys(args)
    .filter((name) => BUILTIN_PROXY_ARGS.has(name.toLowerCase()))
    .map((name) => ({
      property: `build.args.${name}`,
      message: `build.args.${name}: proxy settings are Docker's own build args, left out of the layer cache's keys; codebay's builders set their own network path`,
    }));
}

/** `build.options` beyond the allow-list. */
export function buildOptionProblems(config: DevcontainerConfig): PolicyProblem[] {
  const options = (config.build as { options?: unknown } | undefined)?.options;
  if (options === undefined) return [];
  if (!Array.isArray(options)) return [{ property: 'build.options', message: 'build.options must be an array of strings' }];
  return options.flatMap((o, i) =>
    typeof o === 'string' && BUILD_OPTIONS_ALLOWED.includes(o)
      ? []
      : [
          {
            property: `build.options[${i}]`,
            message: `build.options[${i}]: ${JSON.stringify(o)} is not passed to docker build; codebay allows only ${BUILD_OPTIONS_ALLOWED.join(', ')}`,
          },
        ],
  );
}

/** Feature references whose source the policy refuses (loopback, private, unlisted hosts). */
export function featureSourceProblems(config: DevcontainerConfig, sources: SourcePolicy): PolicyProblem[] {
  const features = config.features;
  if (features === null || typeof features !== 'object' || Array.isArray(features)) return [];
  return Object.keys(features).flatMap((ref) => {
    const property = `features["${ref}"]`;
    let source;
    try {
      source = featureSource(ref);
    } catch (err) {
      return [{ property, message: `${property}: ${(err as Error).message}` }];
    }
    if (!source) return [];
    const check = checkSourceName(sources, source.host, source.port);
    return check.allowed ? [] : [{ property, message: `${property}: ${check.reason}` }];
  });
}

/** Why an image reference may not be used by a build or an instance, if it may not: codebay's own registry, or a source the policy refuses. */
export function imageRefProblem(ref: string, policy: Pick<BuildPolicy, 'platformRegistries' | 'sources'>): string | undefined {
  if (namesRegistry(ref, policy.platformRegistries))
    return `${ref} is in codebay's own image registry, which holds other users' builds; name a public image instead`;
  const registry = imageRegistry(ref);
  if (registry === 'docker.io') return undefined;
  let source;
  try {
    source = featureSource(`${registry}/image`);
  } catch {
    return `${ref}: "${registry}" is not a registry host`;
  }
  const check = source && checkSourceName(policy.sources, source.host, source.port);
  return check && !check.allowed ? check.reason.replace(/^feature source/, 'image registry') : undefined;
}

/** `image` and `build.cacheFrom`: not codebay's own registries, only allowed sources. */
export function imageProblems(config: DevcontainerConfig, policy: Pick<BuildPolicy, 'platformRegistries' | 'sources'>): PolicyProblem[] {
  const refs: { property: string; ref: string }[] = [];
  if (typeof config.image === 'string') refs.push({ property: 'image', ref: config.image });
  const cacheFrom = (config.build as { cacheFrom?: unknown } | undefined)?.cacheFrom;
  if (typeof cacheFrom === 'string') refs.push({ property: 'build.cacheFrom', ref: cacheFrom });
  else if (Array.isArray(cacheFrom)) cacheFrom.forEach((ref, i) => typeof ref === 'string' && refs.push({ property: `build.cacheFrom[${i}]`, ref }));
  return refs.flatMap(({ property, ref }) => {
    const problem = imageRefProblem(ref, policy);
    return problem ? [{ property, message: `${property}: ${problem}` }] : [];
  });
}

/**
 * Checks a parsed config against the build policy and throws one 422 (`forbidden_by_policy`)
 * listing every problem (`details.problems`), the first in the message.
 */
export function checkBuildPolicy(config: DevcontainerConfig, policy: BuildPolicy, name = 'devcontainer.json'): void {
  const problems = [
    ...hostVariableProblems(config, policy.localEnv),
    ...buildOptionProblems(config),
    ...buildArgProblems(config),
    ...imageProblems(config, policy),
    ...featureSourceProblems(config, policy.sources),
  ];
  if (problems.length === 0) return;
  throw new UnprocessableError('forbidden_by_policy', `${name}: ${problems[0]!.message}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`, {
    problems,
  });
}
