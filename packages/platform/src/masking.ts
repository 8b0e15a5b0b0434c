/**
 * Masks secrets in build log lines: the values given (build args, tokens this build
 * knows) wherever they appear, and anything shaped like a well-known credential.
 */
const TOKEN_SHAPES: RegExp[] = [
  /\b(gh[pousr]_[A-Za-z0-9]{20,})\b/g, // GitHub
  /\b(github_pat_[A-Za-z0-9_]{20,})\b/g,
  /\b(glpat-[A-Za-z0-9_-]{20,})\b/g, // GitLab
  /\b(xox[abposr]-[A-Za-z0-9-]{10,})\b/g, // Slack
  /\b((?:AKIA|ASIA)[A-Z0-9]{16})\b/g, // AWS access key id
  /\b(npm_[A-Za-z0-9]{36})\b/g,
  /\b(sk-[A-Za-z0-9_-]{20,})\b/g,
];
const BEARER = /\b(authorization:\s*(?:bearer|basic)\s+)([^\s"']+)/gi;
const MASK = '****';
/** Shorter values would mask ordinary words. */
const MIN_SECRET_LENGTH = 4;

export function createMasker(secrets: Iterable<string>): (line: string) => string {
  const values = [...new Set([...secrets].filter((s) => s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  return (line) => {
    let out = line;
    for (const v of values) if (out.includes(v)) out = out.split(v).join(MASK);
    for (const re of TOKEN_SHAPES) out = out.replace(re, MASK);
    return out.replace(BEARER, `$1${MASK}`);
  };
}

/** Values of `build.args` in a devcontainer config: they show in `docker build` output. */
export function buildArgValues(config: Record<string, unknown>): string[] {
  const build = config.build as { args?: Record<string, unknown> } | undefined;
  return Object.values(build?.args ?? {}).filter((v): v is string => typeof v === 'string');
}
