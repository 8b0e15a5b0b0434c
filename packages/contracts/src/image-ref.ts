/**
 * The registry host of an image reference, as Docker reads it: the first path component
 * when it has a `.` or `:` or is `localhost`, else Docker Hub (distribution/reference,
 * `normalize.go` `splitDockerDomain`). Lower-cased.
 */
export function imageRegistry(ref: string): string {
  const slash = ref.indexOf('/');
  if (slash === -1) return 'docker.io';
  const first = ref.slice(0, slash);
  return /[.:]/.test(first) || first === 'localhost' ? first.toLowerCase() : 'docker.io';
}

const LOOPBACK_NAMES = /^(localhost|127(?:\.\d{1,3}){3}|\[?::1\]?|0\.0\.0\.0)$/;

/** `localhost:32000`, `127.0.0.1:32000` and `[::1]:32000` are the same registry to a daemon on that machine. */
export function sameRegistry(a: string, b: string): boolean {
  const split = (r: string) => {
    const m = /^(.*?)(?::(\d+))?$/.exec(
      r
        .toLowerCase()
        .replace(/^https?:\/\//, '')
        .replace(/\/.*$/, ''),
    )!;
    const host = m[1]!;
    return { host: LOOPBACK_NAMES.test(host) ? 'loopback' : host, port: m[2] ?? '' };
  };
  const x = split(a);
  const y = split(b);
  return x.host === y.host && x.port === y.port;
}

/** True when `ref` would be pulled from one of `registries` (codebay's own, say). */
export function namesRegistry(ref: string, registries: readonly string[]): boolean {
  const registry = imageRegistry(ref);
  return registries.some((r) => sameRegistry(registry, r));
}
