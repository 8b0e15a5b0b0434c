import ipaddr from 'ipaddr.js';

/**
 * Where a build may fetch features from: the gateway checks each feature reference's host at
 * upload, the builder's egress proxy checks every connection the Dev Containers CLI makes
 * (registries, token realms, redirects, tarballs) by name and again by resolved address.
 */

/** The setting the source list comes from; refusals name it so an operator knows what to change. */
export const FEATURE_SOURCES_SETTING = 'FEATURE_SOURCES';

/** One entry of the source list, `port` absent for any port. */
export type SourceEntry =
  /** `*`: any host whose addresses are all public. */
  | { kind: 'any'; port?: number }
  /** `*.example.com`: any subdomain of `domain` (not `domain` itself) whose addresses are all public. */
  | { kind: 'subdomains'; domain: string; port?: number }
  /** `host` / `host:port`: exactly this name or literal, whatever it resolves to. */
  | { kind: 'host'; host: string; port?: number };

export interface SourcePolicy {
  readonly entries: readonly SourceEntry[];
}

/** A source list with entries that are not a host pattern; `problems` names each one. */
export class SourcePolicyError extends Error {
  constructor(readonly problems: string[]) {
    super(`${FEATURE_SOURCES_SETTING}: ${problems.join('; ')}`);
    this.name = 'SourcePolicyError';
  }
}

/**
 * The outcome of a check. `explicit` says a `host` / `host:port` entry matched, which is the
 * only way a loopback, private or other non-public target is allowed.
 */
export type SourceCheck = { allowed: true; explicit: boolean } | { allowed: false; reason: string };

/** A network source a feature is fetched from: host name or IP literal (lower case, IPv6 without brackets) and TCP port. */
export interface FeatureSource {
  host: string;
  port: number;
}

const HOST_NAME = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/;

/**
 * The canonical form of a host name or IP literal, as the WHATWG URL parser (which the CLI
 * uses) writes it: lower case, IDN as punycode, IPv4 in any of its numeric spellings
 * (`0x7f.1`, `2130706433`) as dotted quad, IPv6 in RFC 5952 form without brackets, no
 * trailing dot. Undefined for anything that is not a plain host (ports, paths, userinfo,
 * IPv6 zone ids, `*`).
 */
function canonicalHost(raw: string): string | undefined {
  let host = raw.trim().toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.includes(':')) {
    if (host.includes('%') || !ipaddr.IPv6.isValid(host)) return undefined;
    return ipaddr.IPv6.parse(host).toRFC5952String();
  }
  let url: URL;
  try {
    url = new URL(`http://${host}/`);
  } catch {
    return undefined;
  }
  if (url.username || url.password || url.port || url.pathname !== '/' || url.search || url.hash) return undefined;
  const name = url.hostname.replace(/\.$/, '');
  return name.length <= 253 && HOST_NAME.test(name) ? name : undefined;
}

function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Splits `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 literal; undefined when the port is not 1–65535. */
function splitHostPort(text: string): { host: string; port?: number } | undefined {
  const bracketed = /^(\[[^\]]*\])(?::([^:]*))?$/.exec(text);
  if (bracketed) {
    if (bracketed[2] === undefined) return { host: bracketed[1]! };
    const port = parsePort(bracketed[2]);
    return port === undefined ? undefined : { host: bracketed[1]!, port };
  }
  const colons = text.split(':').length - 1;
  if (colons !== 1) return { host: text };
  const [host, portText] = text.split(':') as [string, string];
  const port = parsePort(portText);
  return port === undefined ? undefined : { host, port };
}

/**
 * Reads the source list (the entries of the comma-separated `FEATURE_SOURCES` setting; the
 * caller splits and trims it, empty entries are skipped). Each entry, optionally with
 * `:port`:
 *   - `*` — any host whose addresses are all public;
 *   - `*.example.com` — any subdomain of example.com whose addresses are all public;
 *   - `host` — exactly this name or IP literal (`[v6]` with a port), case-insensitive,
 *     trusted whatever it resolves to: the one way to allow loopback, private and other
 *     special-purpose targets (a local registry such as `localhost:5000`).
 * An empty list allows nothing.
 *
 * @throws SourcePolicyError naming every entry that is none of these.
 */
export function parseSourcePolicy(list: readonly string[]): SourcePolicy {
  const entries: SourceEntry[] = [];
  const problems: string[] = [];
  for (const raw of list) {
    const text = raw.trim();
    if (text === '') continue;
    const split = splitHostPort(text);
    const port = split?.port;
    const withPort = <T extends SourceEntry>(entry: T): T => (port === undefined ? entry : { ...entry, port });
    if (split?.host === '*') {
      entries.push(withPort({ kind: 'any' }));
      continue;
    }
    if (split?.host.startsWith('*.')) {
      const domain = canonicalHost(split.host.slice(2));
      if (domain !== undefined && !ipaddr.isValid(domain)) {
        entries.push(withPort({ kind: 'subdomains', domain }));
        continue;
      }
    } else if (split) {
      const host = canonicalHost(split.host);
      if (host !== undefined) {
        entries.push(withPort({ kind: 'host', host }));
        continue;
      }
    }
    problems.push(`"${text}" is not *, host, host:port or *.domain`);
  }
  if (problems.length > 0) throw new SourcePolicyError(problems);
  return { entries };
}

/** IANA global unicast (RFC 4291 §2.4, RFC 3587): the only IPv6 block that is public. */
const IPV6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');

const RANGE_WORDS: Record<string, string> = {
  loopback: 'a loopback address',
  linkLocal: 'a link-local address',
  private: 'a private address',
  carrierGradeNat: 'a shared (CGNAT) address',
  uniqueLocal: 'a unique local (private) address',
  unspecified: 'the unspecified address',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
};

/**
 * Why an address is not public, in words; undefined for a public one. Public means what
 * ipaddr.js classifies `unicast` (IPv4) or `unicast` inside 2000::/3 (IPv6) — everything
 * outside the special-purpose ranges of the IANA registries (RFC 6890): loopback,
 * link-local (with the 169.254.169.254 metadata endpoint), private (RFC 1918), shared
 * (RFC 6598), unique local (RFC 4193), unspecified, multicast, broadcast, documentation,
 * benchmarking, reserved, NAT64/6to4/Teredo. IPv4-mapped IPv6 addresses are judged by the
 * IPv4 address they carry.
 */
function notPublic(address: string): string | undefined {
  let addr = ipaddr.parse(address);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  const range: string = addr.range();
  if (range === 'unicast') {
    if (addr.kind() === 'ipv4' || addr.match(IPV6_GLOBAL_UNICAST)) return undefined;
    return 'an address outside IPv6 global unicast';
  }
  if (address === '169.254.169.254') return 'the cloud metadata address';
  return RANGE_WORDS[range] ?? `a special-purpose address (${range})`;
}

const isLoopbackName = (host: string) => host === 'localhost' || host.endsWith('.localhost');

/** `host:port` as the messages write it, IPv6 in brackets. */
export function formatTarget(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

const portMatches = (entry: SourceEntry, port: number) => entry.port === undefined || entry.port === port;

function explicitlyListed(policy: SourcePolicy, host: string, port: number): boolean {
  return policy.entries.some((e) => e.kind === 'host' && e.host === host && portMatches(e, port));
}

/**
 * The name stage: may a connection to `host:port` be attempted? `host` is a name or an IP
 * literal (brackets optional), compared case-insensitively in canonical form (see the
 * entries of parseSourcePolicy). An explicitly listed host is allowed outright. Otherwise
 * a `*` or `*.domain` entry must match, and the host must not be a loopback name
 * (`localhost`, `*.localhost`, RFC 6761 §6.3) or a non-public IP literal. A name allowed
 * here must still pass checkSourceAddress for each address it resolves to.
 */
export function checkSourceName(policy: SourcePolicy, host: string, port: number): SourceCheck {
  const name = canonicalHost(host);
  if (name === undefined) return { allowed: false, reason: `feature source "${host}" is refused: it is not a host name or IP address` };
  const target = formatTarget(name, port);
  if (parsePort(String(port)) === undefined) return { allowed: false, reason: `feature source ${target} is refused: the port is not 1-65535` };
  if (explicitlyListed(policy, name, port)) return { allowed: true, explicit: true };
  const why = ipaddr.isValid(name) ? notPublic(name) : isLoopbackName(name) ? 'a loopback name' : undefined;
  if (why !== undefined) {
    return { allowed: false, reason: `feature source ${target} is refused: ${name} is ${why}, allowed only when ${FEATURE_SOURCES_SETTING} lists it by name` };
  }
  const matched = policy.entries.some((e) => portMatches(e, port) && (e.kind === 'any' || (e.kind === 'subdomains' && name.endsWith(`.${e.domain}`))));
  if (matched) return { allowed: true, explicit: false };
  return { allowed: false, reason: `feature source ${target} is refused: it matches no entry of ${FEATURE_SOURCES_SETTING}` };
}

/**
 * The address stage: may the connection to `host:port` go to `address`, one of the
 * addresses `host` resolved to? Runs checkSourceName first. An explicitly listed host may
 * resolve anywhere; a host allowed by `*` or `*.domain` only to public addresses (see
 * notPublic above: RFC 6890 special-purpose ranges are refused), so a public name that
 * resolves to 127.0.0.1 or 169.254.169.254 is refused. A caller checks every address of
 * a lookup and refuses the target if any is refused.
 *
 * @param address an IPv4 or IPv6 address as dns.lookup gives it.
 */
export function checkSourceAddress(policy: SourcePolicy, host: string, port: number, address: string): SourceCheck {
  const byName = checkSourceName(policy, host, port);
  if (!byName.allowed || byName.explicit) return byName;
  const name = canonicalHost(host)!;
  if (!ipaddr.isValid(address)) return { allowed: false, reason: `feature source ${formatTarget(name, port)} is refused: "${address}" is not an IP address` };
  const why = notPublic(address);
  if (why === undefined) return byName;
  return {
    allowed: false,
    reason: `feature source ${formatTarget(name, port)} is refused: it resolves to ${address}, ${why}, allowed only when ${FEATURE_SOURCES_SETTING} lists ${name} by name`,
  };
}

/**
 * The network source of a feature reference as the Dev Containers CLI 0.89 reads it:
 *   - OCI `registry/namespace/name[:tag|@digest]`: the registry is the part before the first
 *     `/` (lower-cased), spoken over https (port 443) except for the host `localhost`,
 *     which the CLI speaks plain http to (port 80); an explicit `:port` wins;
 *   - an `https://…` tarball URL: its host and port (443 by default);
 *   - a local folder (`./`, `../`, `/`) or a string without a `/`: undefined, nothing is fetched.
 * @throws TypeError when the registry part or the URL is not a valid host.
 */
export function featureSource(ref: string): FeatureSource | undefined {
  if (ref.startsWith('./') || ref.startsWith('../') || ref.startsWith('/')) return undefined;
  if (ref.startsWith('https://')) {
    const url = new URL(ref);
    return { host: unbracket(url.hostname), port: url.port ? Number(url.port) : 443 };
  }
  const slash = ref.indexOf('/');
  if (slash < 0) return undefined;
  const registry = ref.slice(0, slash).toLowerCase();
  // The CLI's own rule: plain http exactly when the registry's host is `localhost`.
  const scheme = new URL(`https://${registry}`).hostname === 'localhost' ? 'http' : 'https';
  const url = new URL(`${scheme}://${registry}/`);
  if (url.username || url.password || url.pathname !== '/') throw new TypeError(`"${registry}" is not a registry host`);
  return { host: unbracket(url.hostname), port: url.port ? Number(url.port) : scheme === 'http' ? 80 : 443 };
}

const unbracket = (hostname: string) => hostname.replace(/^\[(.*)\]$/, '$1');
