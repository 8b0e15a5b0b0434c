/**
 * Masks secrets in anything shown to users (build log lines, an instance's `error`):
 * the values given (build args), anything shaped like a well-known credential, and the
 * host paths given (replaced by a neutral name, so users never see the builder's folders).
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

export interface MaskOptions {
  /** Secret values, masked wherever they appear (values under 4 characters are left alone). */
  values?: Iterable<string>;
  /** Host paths and the name users see instead, e.g. `{'/var/lib/codebay/builds/x/workspace': '<workspace>'}`. */
  paths?: Record<string, string>;
}

/** Returns a function that masks one line (or a multi-line message). */
export function createMasker(options: MaskOptions = {}): (line: string) => string {
  const values = [...new Set([...(options.values ?? [])].filter((s) => s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  // Longest first: a folder inside another is replaced before its parent.
  const paths = Object.entries(options.paths ?? {})
    .filter(([p]) => p.length > 1)
    .sort((a, b) => b[0].length - a[0].length);
  return (line) => {
    let out = line;
    for (const [path, name] of paths) if (out.includes(path)) out = out.split(path).join(name);
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
