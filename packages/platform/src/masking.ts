/**
 * Masks secrets in anything shown to users (build log lines, an instance's `error`):
 * the values given (secret build args: see secretBuildArgValues), anything shaped like a
 * well-known credential, and the
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

/**
 * Words of a build arg's NAME that say its value is a secret: the words of BuildKit's
 * `SecretsUsedInArgOrEnv` check (apikey, auth, credential(s), key, password, pword, passwd,
 * secret, token) and their usual other spellings (tokens, secrets, pass, pwd, passphrase,
 * pat, creds). See isSecretArgName for how a name is split into words.
 */
export const SECRET_NAME_WORDS: ReadonlySet<string> = new Set([
  'apikey',
  'auth',
  'credential',
  'credentials',
  'creds',
  'key',
  'password',
  'pword',
  'passwd',
  'pass',
  'pwd',
  'passphrase',
  'pat',
  'secret',
  'secrets',
  'token',
  'tokens',
]);

/**
 * Whether a build arg's name says its value is a secret. The name is split into words at
 * `_`, `-`, `.` and lower→upper case changes (`GITHUB_TOKEN` → github, token; `npmAuthToken`
 * → npm, auth, token; `db-password`), compared case-insensitively: secret when a word is in
 * SECRET_NAME_WORDS and no word is `public` (BuildKit's exception: `PUBLIC_KEY`), or when the
 * name contains `token`, `secret`, `passw`, `apikey` or `credential` inside a word
 * (`APITOKEN`, `DBPASSWORD`). `VARIANT`, `NODE_VERSION`, `BYPASS_CACHE` are not secret.
 */
export function isSecretArgName(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .split(/[\s_.-]+/)
    .map((w) => w.toLowerCase());
  if (words.includes('public')) return false;
  return words.some((w) => SECRET_NAME_WORDS.has(w)) || /(token|secret|passw|apikey|credential)/i.test(name);
}

/**
 * Whether a value looks like a credential whatever its arg is called: a well-known token
 * shape (GitHub, GitLab, Slack, AWS, npm, OpenAI-style: TOKEN_SHAPES), a URL with a password
 * in it (`https://user:pw@host`), an `Authorization`-style `Bearer`/`Basic` value, a PEM
 * private key, or a long random-looking string: at least 32 characters of letters, digits
 * and `+/=_-` mixing upper case, lower case and digits (a hex digest or a version string is
 * none of these and stays visible).
 */
export function looksLikeCredential(value: string): boolean {
  const v = value.trim();
  if (TOKEN_SHAPES.some((re) => new RegExp(re.source).test(v))) return true;
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:[^/\s@]+@/i.test(v)) return true;
  if (/^(bearer|basic)\s+\S+$/i.test(v)) return true;
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(v)) return true;
  return /^[A-Za-z0-9+/=_-]{32,}$/.test(v) && /[A-Z]/.test(v) && /[a-z]/.test(v) && /[0-9]/.test(v);
}

/**
 * The values of `build.args` in a devcontainer config that are secret, to be masked in
 * everything shown to users (they show in `docker build` output): those of args whose NAME
 * looks secret (isSecretArgName: `GITHUB_TOKEN`, `NPM_AUTH`, `DB_PASSWORD`, `API_KEY`…) and
 * those whose VALUE looks like a credential (looksLikeCredential). Ordinary values
 * (`VARIANT=bookworm`, `NODE_VERSION=20`) stay visible: masking them would turn every
 * occurrence of the word in the log into `****` (`FROM debian:****`). Non-string values are
 * skipped.
 */
export function secretBuildArgValues(config: Record<string, unknown>): string[] {
  const build = config.build as { args?: Record<string, unknown> } | undefined;
  return Object.entries(build?.args ?? {})
    .filter((e): e is [string, string] => typeof e[1] === 'string')
    .filter(([name, value]) => isSecretArgName(name) || looksLikeCredential(value))
    .map(([, value]) => value);
}
