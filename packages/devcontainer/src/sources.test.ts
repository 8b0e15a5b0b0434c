import { describe, expect, it } from 'vitest';
import { checkSourceAddress, checkSourceName, featureSource, parseSourcePolicy, SourcePolicyError, type SourceCheck } from './sources.ts';

const policy = (...entries: string[]) => parseSourcePolicy(entries);
const reason = (check: SourceCheck): string => {
  if (check.allowed) throw new Error('expected a refusal');
  return check.reason;
};

describe('parseSourcePolicy', () => {
  it('reads *, hosts, host:port, *.domain, IP literals and IPv6 in brackets', () => {
    expect(policy('*', 'GHCR.io', 'localhost:5000', '*.Example.com', '*.corp.test:8443', '10.0.0.5', '[::1]:5000', 'fd00::1', '*:443').entries).toEqual([
      { kind: 'any' },
      { kind: 'host', host: 'ghcr.io' },
      { kind: 'host', host: 'localhost', port: 5000 },
      { kind: 'subdomains', domain: 'example.com' },
      { kind: 'subdomains', domain: 'corp.test', port: 8443 },
      { kind: 'host', host: '10.0.0.5' },
      { kind: 'host', host: '::1', port: 5000 },
      { kind: 'host', host: 'fd00::1' },
      { kind: 'any', port: 443 },
    ]);
  });

  it('writes hosts the way the URL parser does: numeric IPv4 forms, IDN, trailing dot', () => {
    expect(policy('0x7f.1:5000', 'Bücher.de', 'registry.internal.').entries).toEqual([
      { kind: 'host', host: '127.0.0.1', port: 5000 },
      { kind: 'host', host: 'xn--bcher-kva.de' },
      { kind: 'host', host: 'registry.internal' },
    ]);
  });

  it('skips empty entries; an empty list allows nothing', () => {
    const empty = policy('', '  ');
    expect(empty.entries).toEqual([]);
    expect(reason(checkSourceName(empty, 'ghcr.io', 443))).toBe('feature source ghcr.io:443 is refused: it matches no entry of FEATURE_SOURCES');
  });

  it('names every bad entry at once', () => {
    let error: unknown;
    try {
      policy('ghcr.io', 'a b', 'host:0', 'host:99999', '*.', 'x/y', 'user@host', '**.a.com', '*.10.0.0.1');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SourcePolicyError);
    expect((error as SourcePolicyError).problems).toEqual([
      '"a b" is not *, host, host:port or *.domain',
      '"host:0" is not *, host, host:port or *.domain',
      '"host:99999" is not *, host, host:port or *.domain',
      '"*." is not *, host, host:port or *.domain',
      '"x/y" is not *, host, host:port or *.domain',
      '"user@host" is not *, host, host:port or *.domain',
      '"**.a.com" is not *, host, host:port or *.domain',
      '"*.10.0.0.1" is not *, host, host:port or *.domain',
    ]);
    expect((error as Error).message).toMatch(/^FEATURE_SOURCES: "a b" is not/);
  });
});

describe('checkSourceName', () => {
  it('* allows public names and public IP literals on any port', () => {
    const any = policy('*');
    expect(checkSourceName(any, 'ghcr.io', 443)).toEqual({ allowed: true, explicit: false });
    expect(checkSourceName(any, 'registry.example.com', 8443)).toEqual({ allowed: true, explicit: false });
    expect(checkSourceName(any, '8.8.8.8', 443)).toEqual({ allowed: true, explicit: false });
    expect(checkSourceName(any, '[2606:4700::1111]', 443)).toEqual({ allowed: true, explicit: false });
  });

  it.each([
    ['localhost', 'localhost is a loopback name'],
    ['LOCALHOST', 'localhost is a loopback name'],
    ['registry.localhost', 'registry.localhost is a loopback name'],
    ['localhost.', 'localhost is a loopback name'],
    ['127.0.0.1', '127.0.0.1 is a loopback address'],
    ['127.1', '127.0.0.1 is a loopback address'],
    ['2130706433', '127.0.0.1 is a loopback address'],
    ['0x7f.0.0.1', '127.0.0.1 is a loopback address'],
    ['::1', '::1 is a loopback address'],
    ['[::1]', '::1 is a loopback address'],
    ['0.0.0.0', '0.0.0.0 is the unspecified address'],
    ['10.1.2.3', '10.1.2.3 is a private address'],
    ['172.16.0.1', '172.16.0.1 is a private address'],
    ['192.168.1.1', '192.168.1.1 is a private address'],
    ['100.64.0.1', '100.64.0.1 is a shared (CGNAT) address'],
    ['169.254.169.254', '169.254.169.254 is the cloud metadata address'],
    ['169.254.1.1', '169.254.1.1 is a link-local address'],
    ['fe80::1', 'fe80::1 is a link-local address'],
    ['fd12:3456::1', 'fd12:3456::1 is a unique local (private) address'],
    ['224.0.0.1', '224.0.0.1 is a multicast address'],
    ['255.255.255.255', '255.255.255.255 is the broadcast address'],
    ['192.0.2.1', '192.0.2.1 is a special-purpose address (reserved)'],
    ['240.0.0.1', '240.0.0.1 is a special-purpose address (reserved)'],
    ['2001:db8::1', '2001:db8::1 is a special-purpose address (reserved)'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1 is a loopback address'],
    ['::ffff:10.0.0.1', '::ffff:a00:1 is a private address'],
    ['::7f00:1', '::7f00:1 is an address outside IPv6 global unicast'],
    ['64:ff9b::7f00:1', '64:ff9b::7f00:1 is a special-purpose address (rfc6052)'],
  ])('* never allows %s', (host, why) => {
    expect(reason(checkSourceName(policy('*', '*.localhost'), host, 5000))).toContain(`is refused: ${why}, allowed only when FEATURE_SOURCES lists it by name`);
  });

  it('names the target and the setting in a refusal', () => {
    expect(reason(checkSourceName(policy('*'), 'localhost', 18999))).toBe(
      'feature source localhost:18999 is refused: localhost is a loopback name, allowed only when FEATURE_SOURCES lists it by name',
    );
    expect(reason(checkSourceName(policy('*'), '::1', 6379))).toBe(
      'feature source [::1]:6379 is refused: ::1 is a loopback address, allowed only when FEATURE_SOURCES lists it by name',
    );
  });

  it('allows loopback and private targets listed by name or literal, on the listed port only', () => {
    const listed = policy('*', 'localhost:5000', '127.0.0.1:5001', '[::1]:5002', 'registry.internal', '10.0.0.5');
    expect(checkSourceName(listed, 'localhost', 5000)).toEqual({ allowed: true, explicit: true });
    expect(checkSourceName(listed, 'LocalHost', 5000)).toEqual({ allowed: true, explicit: true });
    expect(checkSourceName(listed, '127.0.0.1', 5001)).toEqual({ allowed: true, explicit: true });
    expect(checkSourceName(listed, '::1', 5002)).toEqual({ allowed: true, explicit: true });
    expect(checkSourceName(listed, 'registry.internal', 443)).toEqual({ allowed: true, explicit: true });
    expect(checkSourceName(listed, '10.0.0.5', 8080)).toEqual({ allowed: true, explicit: true });
    expect(reason(checkSourceName(listed, 'localhost', 6379))).toContain('localhost is a loopback name');
    expect(reason(checkSourceName(listed, '127.0.0.1', 5000))).toContain('127.0.0.1 is a loopback address');
    expect(reason(checkSourceName(listed, '10.0.0.6', 443))).toContain('10.0.0.6 is a private address');
  });

  it('*.domain allows subdomains at any depth, not the domain itself nor look-alikes', () => {
    const sub = policy('*.example.com');
    expect(checkSourceName(sub, 'ghcr.example.com', 443)).toEqual({ allowed: true, explicit: false });
    expect(checkSourceName(sub, 'A.B.Example.COM', 443)).toEqual({ allowed: true, explicit: false });
    expect(reason(checkSourceName(sub, 'example.com', 443))).toBe('feature source example.com:443 is refused: it matches no entry of FEATURE_SOURCES');
    expect(checkSourceName(sub, 'badexample.com', 443).allowed).toBe(false);
    expect(checkSourceName(sub, 'example.com.evil.io', 443).allowed).toBe(false);
    expect(checkSourceName(sub, 'ghcr.io', 443).allowed).toBe(false);
  });

  it('respects the port of * and *.domain entries', () => {
    const ports = policy('*:443', '*.corp.test:8443');
    expect(checkSourceName(ports, 'ghcr.io', 443).allowed).toBe(true);
    expect(checkSourceName(ports, 'ghcr.io', 80).allowed).toBe(false);
    expect(checkSourceName(ports, 'r.corp.test', 8443).allowed).toBe(true);
  });

  it('refuses what is not a host', () => {
    for (const host of ['', 'a b', 'user@ghcr.io', 'ghcr.io/x', 'ghcr.io:443', '*.example.com', 'fe80::1%eth0', 'a..b']) {
      expect(reason(checkSourceName(policy('*'), host, 443))).toMatch(/is refused: it is not a host name or IP address$/);
    }
    expect(reason(checkSourceName(policy('*'), 'ghcr.io', 0))).toBe('feature source ghcr.io:0 is refused: the port is not 1-65535');
    expect(checkSourceName(policy('*'), 'ghcr.io', 65536).allowed).toBe(false);
  });
});

describe('checkSourceAddress', () => {
  it('lets a name allowed by * or *.domain resolve only to public addresses', () => {
    const any = policy('*', '*.example.com');
    expect(checkSourceAddress(any, 'ghcr.io', 443, '140.82.112.34')).toEqual({ allowed: true, explicit: false });
    expect(checkSourceAddress(any, 'ghcr.io', 443, '2606:50c0:8000::154')).toEqual({ allowed: true, explicit: false });
    expect(checkSourceAddress(any, 'ghcr.io', 443, '::ffff:140.82.112.34')).toEqual({ allowed: true, explicit: false });
    expect(reason(checkSourceAddress(any, 'rebind.example.com', 443, '127.0.0.1'))).toBe(
      'feature source rebind.example.com:443 is refused: it resolves to 127.0.0.1, a loopback address, allowed only when FEATURE_SOURCES lists rebind.example.com by name',
    );
    expect(reason(checkSourceAddress(any, 'ghcr.io', 443, '169.254.169.254'))).toContain('it resolves to 169.254.169.254, the cloud metadata address');
    expect(reason(checkSourceAddress(any, 'ghcr.io', 443, '::ffff:192.168.0.1'))).toContain('it resolves to ::ffff:192.168.0.1, a private address');
    expect(reason(checkSourceAddress(any, 'ghcr.io', 443, 'fe80::1%eth0'))).toContain('a link-local address');
    expect(reason(checkSourceAddress(any, 'ghcr.io', 443, 'not-an-ip'))).toContain('"not-an-ip" is not an IP address');
  });

  it('lets an explicitly listed host resolve anywhere', () => {
    const listed = policy('registry.internal', 'localhost:5000');
    expect(checkSourceAddress(listed, 'registry.internal', 443, '10.0.0.5')).toEqual({ allowed: true, explicit: true });
    expect(checkSourceAddress(listed, 'localhost', 5000, '::1')).toEqual({ allowed: true, explicit: true });
  });

  it('refuses first by name', () => {
    expect(reason(checkSourceAddress(policy('ghcr.io'), 'evil.io', 443, '1.1.1.1'))).toBe(
      'feature source evil.io:443 is refused: it matches no entry of FEATURE_SOURCES',
    );
  });
});

describe('featureSource', () => {
  it.each([
    ['ghcr.io/devcontainers/features/node:1', { host: 'ghcr.io', port: 443 }],
    ['GHCR.IO/devcontainers/features/node:1', { host: 'ghcr.io', port: 443 }],
    ['ghcr.io/devcontainers/features/node', { host: 'ghcr.io', port: 443 }],
    [`ghcr.io/devcontainers/features/node@sha256:${'a'.repeat(64)}`, { host: 'ghcr.io', port: 443 }],
    ['registry.example.com:8443/org/feature:2', { host: 'registry.example.com', port: 8443 }],
    ['localhost:5000/x/y:1', { host: 'localhost', port: 5000 }],
    ['localhost/x/y:1', { host: 'localhost', port: 80 }],
    ['localhost:443/x/y:1', { host: 'localhost', port: 443 }],
    ['127.0.0.1:18999/x/y:1', { host: '127.0.0.1', port: 18999 }],
    ['2130706433:6379/x/y:1', { host: '127.0.0.1', port: 6379 }],
    ['devcontainers/features/node', { host: 'devcontainers', port: 443 }],
    ['https://example.com/features/hello.tgz', { host: 'example.com', port: 443 }],
    ['https://127.0.0.1:8443/f.tgz', { host: '127.0.0.1', port: 8443 }],
    ['https://[::1]:8443/f.tgz', { host: '::1', port: 8443 }],
  ])('%s → %j', (ref, source) => {
    expect(featureSource(ref)).toEqual(source);
  });

  it('gives nothing for local features and references without a registry', () => {
    expect(featureSource('./local-feature')).toBeUndefined();
    expect(featureSource('../features/x')).toBeUndefined();
    expect(featureSource('/abs/path')).toBeUndefined();
    expect(featureSource('node')).toBeUndefined();
  });

  it('throws on a registry part that is not a host', () => {
    expect(() => featureSource('a b/x/y')).toThrow(TypeError);
    expect(() => featureSource('user@ghcr.io/x/y')).toThrow(TypeError);
  });

  it('feeds checkSourceName: the CLI-side spelling of a loopback registry is refused', () => {
    const src = featureSource('localhost:18999/x/y:1')!;
    expect(reason(checkSourceName(policy('*'), src.host, src.port))).toBe(
      'feature source localhost:18999 is refused: localhost is a loopback name, allowed only when FEATURE_SOURCES lists it by name',
    );
  });
});
