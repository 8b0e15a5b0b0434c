import { redisKeys, type InstanceResponse } from '@codebay/contracts';
import { createRedis, type Docker } from '@codebay/platform';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.ts';
import { components } from '../support/components.ts';
import { execIn, testDocker } from '../support/docker.ts';
import { editorRequest, editorUpgrade } from '../support/editor.ts';
import { packWorkspace, waitForStatus } from '../support/instances.ts';
import { portAppCommand } from '../support/port-app.ts';
import { freePort } from '../support/ports.ts';
import { waitFor } from '../support/wait.ts';
import { buildLogLines } from '../support/records.ts';
import { expectVictimUnchanged, startHostileStack, startVictim, type HostileStack, type VictimSnapshot } from '../support/tenants.ts';
import { salt } from '../support/workspaces.ts';

/** One connection attempt: `mode` says what is sent once connected (nothing, an HTTP GET, a WebSocket handshake). */
interface Target {
  name: string;
  host: string;
  port: number;
  mode: 'tcp' | 'http' | 'ws';
}

/** How an attempt ended, as the probe prints it: `reached` is the only success. */
type Outcome = 'reached' | 'refused' | 'reset' | 'timeout' | 'unreachable' | 'other';

/**
 * The attacker's probe, baked into its image: one connection per target (all at once, 5 s
 * each, bash's /dev/tcp; an argument `--` waits for those before it), one line each: `PROBE <name> <outcome>`. A target that accepts
 * the connection prints CODEBAY-REACHED and the first line it answered, nothing else does.
 */
const PROBE_SH = String.raw`#!/bin/bash
one() {
  local name=$1 host=$2 port=$3 mode=$4 out rc req=
  case $mode in
    http) req="GET / HTTP/1.1\r\nHost: $host:$port\r\nConnection: close\r\n\r\n" ;;
    ws) req="GET /?reconnectionToken=x&reconnection=false&skipWebSocketFrames=false HTTP/1.1\r\nHost: $host:$port\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: Y29kZWJheS10ZXN0LWtleQ==\r\n\r\n" ;;
  esac
  out=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/$2" || exit 3; echo CONNECTED; if [ -n "$3" ]; then printf "$3" >&3; head -c 300 <&3 | head -n 1; fi' _ "$host" "$port" "$req" 2>&1)
  rc=$?
  out=$(printf '%s' "$out" | tr -d '\r' | tr '\n' ' ')
  if [[ $out == *CONNECTED* ]]; then echo "PROBE $name CODEBAY-REACHED $out"
  elif ((rc == 124)); then echo "PROBE $name timeout"
  elif [[ $out == *"Connection refused"* ]]; then echo "PROBE $name refused"
  elif [[ $out == *"Connection reset"* ]]; then echo "PROBE $name reset"
  elif [[ $out == *"No route to host"* || $out == *"Network is unreachable"* ]]; then echo "PROBE $name unreachable"
  else echo "PROBE $name other: $out"; fi
}
for t in "$@"; do
  if [[ $t == -- ]]; then wait; continue; fi
  read -r name host port mode <<<"$t"
  one "$name" "$host" "$port" "$mode" &
done
wait
`;

const probeArgs = (targets: Target[]) => targets.map((t) => `${t.name} ${t.host} ${t.port} ${t.mode}`);
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** `PROBE <name> <outcome…>` lines → outcome by name (and the raw rest, for messages). */
function parseProbes(text: string): Map<string, { outcome: Outcome; raw: string }> {
  const out = new Map<string, { outcome: Outcome; raw: string }>();
  for (const line of text.split('\n')) {
    const m = /PROBE (\S+) (.*)$/.exec(line.trim());
    if (!m) continue;
    const raw = m[2]!;
    const word = raw.split(' ')[0]!;
    const outcome: Outcome =
      word === 'CODEBAY-REACHED' ? 'reached' : ((['refused', 'reset', 'timeout', 'unreachable'] as const).find((o) => o === word) ?? 'other');
    out.set(m[1]!, { outcome, raw });
  }
  return out;
}

/** Raw RESP over TCP, no client library: what a container or a stray process would send. Resolves to the first reply line. */
function redisRaw(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    s.setTimeout(5_000, () => {
      s.destroy();
      reject(new Error('redis did not answer within 5 s'));
    });
    s.on('connect', () => s.write(`${command}\r\n`));
    s.on('data', (d: Buffer) => {
      buf += d.toString('utf8');
      const end = buf.indexOf('\r\n');
      if (end !== -1) {
        s.destroy();
        resolve(buf.slice(0, end));
      }
    });
    s.on('error', reject);
  });
}

const basic = (userPass: string) => `Basic ${Buffer.from(userPass).toString('base64')}`;
/** The registry's addresses as Node reaches them (it listens on 127.0.0.1; `localhost` may resolve to ::1 first). */
const registryUrl = (address: string) => `http://${address.replace(/^localhost(?=:)/, '127.0.0.1')}`;

/**
 * A hostile tenant with an instance of its own — a shell in it, `sudo` to root there, and
 * build steps of its own — attacks the other tenant's instance and the platform: the
 * victim's editor by its container address and on its published port, every service this
 * machine runs on every address it has, cloud metadata, the gateway with its own tokens
 * and the victim's cookie from a foreign origin, a real browser holding the victim's
 * cookie, Redis without its password, and the registry without (or with the wrong)
 * credentials. Every attempt must end refused, and leave the victim's instance as it was.
 */
describe('hostile tenant: from an instance of its own', () => {
  let h: HostileStack;
  let victim: VictimSnapshot;
  let attacker: InstanceResponse;
  let attackerContainer: string;
  let victimIp: string;
  let victimPort: number;
  let victimGateway: string;
  let attackerGateway: string;
  /** The probe lines the attacker's build step recorded in its image, and its build log. */
  let buildProbes: string;
  let buildLog: string;
  /** This machine's addresses the build step probed. */
  let buildAddresses: string[];
  let canary: Server;
  let canaryPort: number;
  /** Connections the canary accepted from anything but the test's own control connection. */
  const canaryHits: string[] = [];
  const canarySockets: Socket[] = [];
  const docker: Docker = testDocker();
  const c = components();
  const redisPort = Number(new URL(c.redisUrl).port);
  const portOf = (address: string) => Number(address.split(':').at(-1));

  /** This machine's own IPv4 addresses that stay while the suite runs (no loopback, no other suite's bridges; down bridges included). */
  const stableHostAddresses = () =>
    execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } })
      .split('\n')
      .map((line) => /^\d+:\s+(\S+)\s+inet\s+([\d.]+)\//.exec(line))
      .filter((m): m is RegExpExecArray => m !== null && m[1] !== 'lo' && !m[1]!.startsWith('br-') && !m[1]!.startsWith('veth'))
      .map((m) => m[2]!);

  /** Every service port of this machine, by what listens there. */
  const SERVICES: [string, () => number][] = [
    ['the gateway', () => h.stack.ports.gateway!],
    ['Redis', () => redisPort],
    ['the registry’s pull endpoint', () => portOf(c.registry)],
    ['the registry’s push endpoint', () => portOf(c.registryPush)],
    ['the base-image mirror', () => portOf(c.mirror)],
    ['the builder’s metrics', () => h.stack.ports.builder!],
    ['the provisioner’s metrics', () => h.stack.ports.provisioner!],
    ['the victim’s published editor port', () => victimPort],
    ['a canary of the test’s, listening on 0.0.0.0', () => canaryPort],
  ];
  const serviceKey = (title: string) => title.replace(/[^a-z]+/gi, '-').replace(/^-|-$/g, '');

  /** One attempt: its targets on the given host addresses and the refusal it must end in. */
  interface Attempt {
    title: string;
    targets: (addresses: string[]) => Target[];
    /** The refusals it may end in. */
    outcomes: Outcome[];
    /** Probed on its own, before the rest, in the build step (see REJECTED). */
    first?: boolean;
  }
  /**
   * CODEBAY-INPUT and CODEBAY-FORWARD reject with ICMP port-unreachable: `refused` — or, when
   * many attempts go at once, `timeout`, as the kernel rate-limits those ICMP replies
   * (net.ipv4.icmp_ratelimit) and the SYN retries outlast the probe's 5 s. Never a connection.
   */
  const REJECTED: Outcome[] = ['refused', 'timeout'];
  const ATTEMPTS: Attempt[] = [
    {
      title: 'the victim’s editor by its container address (HTTP GET)',
      targets: () => [{ name: 'victim-editor-http', host: victimIp, port: 8080, mode: 'http' }],
      // Another bridge: the daemon's isolation chains drop it.
      outcomes: ['timeout'],
    },
    {
      title: 'the victim’s editor by its container address (WebSocket handshake)',
      targets: () => [{ name: 'victim-editor-ws', host: victimIp, port: 8080, mode: 'ws' }],
      outcomes: ['timeout'],
    },
    ...SERVICES.map(([title, port]): Attempt => ({
      title: `${title} on every address of this machine`,
      targets: (addresses) => addresses.map((host) => ({ name: `${serviceKey(title)}@${host}`, host, port: port(), mode: 'http' })),
      // CODEBAY-INPUT rejects every new connection from the bridges.
      outcomes: REJECTED,
    })),
    {
      title: 'cloud metadata at 169.254.169.254:80',
      targets: () => [{ name: 'metadata', host: '169.254.169.254', port: 80, mode: 'http' }],
      // CODEBAY-FORWARD rejects link-local destinations on this machine: nothing leaves it. A lone
      // attempt gets its port-unreachable at once (or on its first SYN retry): refused, never a timeout,
      // which could not tell a local refusal from a packet that left the machine.
      outcomes: ['refused'],
      first: true,
    },
  ];

  const inAttacker = (cmd: string, user = 'dev') => execIn(docker, attackerContainer, ['bash', '-c', cmd], user);

  /** Runs the probe in the attacker's instance (as its user, or as root through sudo) and returns outcome by target. */
  async function probeFromInstance(targets: Target[], asRoot: boolean) {
    const r = await inAttacker(`${asRoot ? 'sudo -n ' : ''}/usr/local/bin/probe ${probeArgs(targets).map(shellQuote).join(' ')}`);
    expect(r.code, r.stderr).toBe(0);
    return parseProbes(r.stdout);
  }

  /** Every target has a line, and each ended in one of `outcomes` (the whole map shows on failure). */
  function expectOutcomes(found: Map<string, { outcome: Outcome; raw: string }>, targets: Target[], outcomes: Outcome[]) {
    expect(targets.length).toBeGreaterThan(0);
    const got = Object.fromEntries(targets.map((t) => [t.name, found.get(t.name)?.raw ?? 'no line']));
    const only = new RegExp(`^(${outcomes.join('|')})$`);
    expect(got).toEqual(Object.fromEntries(targets.map((t) => [t.name, expect.stringMatching(only)])));
  }

  beforeAll(async () => {
    // A witness that does listen on every address: only the isolation rules keep containers from it.
    canary = createServer((s) => {
      canarySockets.push(s);
      canaryHits.push(`${s.remoteAddress}:${s.remotePort}`);
    });
    await new Promise<void>((resolve) => canary.listen(0, '0.0.0.0', resolve));
    canaryPort = (canary.address() as { port: number }).port;
    // Control: it answers on this machine's own addresses (from this machine).
    for (const address of stableHostAddresses()) {
      await new Promise<void>((resolve, reject) => {
        const s = connect(canaryPort, address, () => {
          s.destroy();
          resolve();
        });
        s.on('error', reject);
      });
    }
    const controls = stableHostAddresses().length;
    await waitFor('the canary to accept its control connections', () => (canaryHits.length >= controls ? true : undefined), 5_000, 20);
    canaryHits.length = 0;

    h = await startHostileStack('hostile-instances');
    victim = await startVictim(h);
    const victimInfo = await docker.getContainer(victim.containerId).inspect();
    // The network the instance is alone on (its name is on the container's label).
    const victimNet = victimInfo.Config.Labels['codebay.network']!;
    expect(Object.keys(victimInfo.NetworkSettings.Networks)).toEqual([victimNet]);
    victimIp = victimInfo.NetworkSettings.Networks[victimNet]!.IPAddress;
    victimGateway = victimInfo.NetworkSettings.Networks[victimNet]!.Gateway;
    const binding = victimInfo.NetworkSettings.Ports['8080/tcp']?.[0];
    expect(binding?.HostIp).toBe('127.0.0.1');
    victimPort = Number(binding!.HostPort);

    // The attacker's workspace: an image set up for sudo, with the probe, whose build step
    // probes everything from the builder's daemon (the default bridge) before the instance exists.
    buildAddresses = [...stableHostAddresses(), victimGateway];
    const buildArgs = [
      ...probeArgs(ATTEMPTS.filter((a) => a.first).flatMap((a) => a.targets(buildAddresses))),
      '--',
      ...probeArgs(ATTEMPTS.filter((a) => !a.first).flatMap((a) => a.targets(buildAddresses))),
      // Control: the probe tells a reached target (the Debian mirror the build installs from).
      ...probeArgs([{ name: 'control-debian-mirror', host: 'deb.debian.org', port: 80, mode: 'http' }]),
    ];
    const dir = mkdtempSync(join(tmpdir(), 'codebay-attacker-'));
    mkdirSync(join(dir, '.devcontainer'));
    writeFileSync(join(dir, 'probe.sh'), PROBE_SH, { mode: 0o755 });
    writeFileSync(
      join(dir, '.devcontainer/devcontainer.json'),
      JSON.stringify({ build: { dockerfile: 'Dockerfile', context: '..' }, remoteUser: 'dev', containerEnv: { ATTACK_RUN: salt() } }),
    );
    writeFileSync(
      join(dir, '.devcontainer/Dockerfile'),
      [
        'FROM debian:bookworm',
        'RUN apt-get update && apt-get install -y --no-install-recommends sudo iproute2 iptables procps && rm -rf /var/lib/apt/lists/* \\',
        "  && useradd -m -s /bin/bash dev && echo 'dev ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/dev && chmod 0440 /etc/sudoers.d/dev",
        'COPY probe.sh /usr/local/bin/probe',
        `RUN mkdir -p /opt/attack && /usr/local/bin/probe ${buildArgs.map(shellQuote).join(' ')} > /opt/attack/build-probes.txt; cat /opt/attack/build-probes.txt`,
        '',
      ].join('\n'),
    );
    const res = await h.attacker.createWorkspace(await packWorkspace(dir));
    expect(res.status, await res.clone().text()).toBe(202);
    const created = (await res.json()) as InstanceResponse;
    attacker = await waitForStatus(h.stack, created.instance_id, ['Running'], 480_000);
    const info = await docker.getContainer(h.stack.names.container(attacker.instance_id)).inspect();
    attackerContainer = info.Id;
    attackerGateway = info.NetworkSettings.Networks[info.Config.Labels['codebay.network']!]!.Gateway;
    buildProbes = (await inAttacker('cat /opt/attack/build-probes.txt')).stdout;
    buildLog = (await buildLogLines(h.stack, attacker.instance_id)).join('\n');
  }, 900_000);

  afterAll(async () => {
    await h?.stop();
    for (const s of canarySockets) s.destroy();
    canary?.close();
  });

  afterEach(async () => {
    if (victim) await expectVictimUnchanged(h, victim);
  });

  const instanceAddresses = () => [...stableHostAddresses(), victimGateway, attackerGateway];

  describe('its instance, as its user', () => {
    it('the probe tells a reached port: its own editor on its own loopback answers', async () => {
      const found = await probeFromInstance([{ name: 'own-editor', host: '127.0.0.1', port: 8080, mode: 'http' }], false);
      expect(found.get('own-editor')?.outcome).toBe('reached');
      expect(found.get('own-editor')?.raw).toMatch(/CODEBAY-REACHED CONNECTED HTTP\/1\.1 \d{3}/);
    });

    it.each(ATTEMPTS.map((a) => [a.title, a] as const))('%s: refused', async (_title, attempt) => {
      const targets = attempt.targets(instanceAddresses());
      expectOutcomes(await probeFromInstance(targets, false), targets, attempt.outcomes);
      expect(canaryHits).toEqual([]);
    });
  });

  describe('its instance, as root (sudo)', () => {
    it('sudo works: `sudo -n id -u` prints 0', async () => {
      const r = await inAttacker('id -u; sudo -n id -u');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.split('\n').filter(Boolean)).toEqual(['1000', '0']);
    });

    it.each(ATTEMPTS.map((a) => [a.title, a] as const))('%s: still refused', async (_title, attempt) => {
      const targets = attempt.targets(instanceAddresses());
      expectOutcomes(await probeFromInstance(targets, true), targets, attempt.outcomes);
      expect(canaryHits).toEqual([]);
    });

    it.each([
      ['add a network interface', 'ip link add codebay-x type dummy', /Operation not permitted/],
      ['take the victim’s address', 'ip addr add VICTIM/32 dev eth0', /Operation not permitted/],
      ['read the firewall', 'iptables -S', /Permission denied|Operation not permitted/],
      ['open the firewall', 'iptables -I OUTPUT -j ACCEPT', /Permission denied|Operation not permitted/],
      ['mount a filesystem', 'mount -t tmpfs none /mnt', /permission denied/i],
    ])('root cannot %s (no CAP_NET_ADMIN / CAP_SYS_ADMIN)', async (_what, cmd, message) => {
      const r = await inAttacker(`sudo -n ${cmd.replace('VICTIM', victimIp)}`);
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(message);
    });

    it('root has neither CAP_NET_ADMIN nor CAP_SYS_ADMIN nor CAP_SYS_PTRACE nor CAP_NET_RAW', async () => {
      const r = await inAttacker('sudo -n grep CapEff /proc/self/status');
      expect(r.code).toBe(0);
      const caps = BigInt(`0x${r.stdout.trim().split(/\s+/)[1]}`);
      for (const bit of [12n, 21n, 19n, 13n]) expect((caps >> bit) & 1n).toBe(0n);
    });

    it('root cannot open a raw socket (forged addresses on the instance network)', async () => {
      const r = await inAttacker(`sudo -n perl -MSocket -e 'socket(my $s, PF_INET, SOCK_RAW, 6) or die "refused: $!\\n"; print "raw ok\\n"'`);
      expect(r.code).not.toBe(0);
      expect(r.stdout + r.stderr).toContain('refused: Operation not permitted');
    });

    it('root sees only the instance’s own processes, none of this machine’s', async () => {
      // This machine runs them …
      const onHost = hostProcessNames();
      for (const n of ['dockerd', 'containerd', 'redis-server', 'docker-registry']) expect(onHost).toContain(n);
      // … the instance, as root, sees none of them.
      const r = await inAttacker('sudo -n ps -eo comm=');
      expect(r.code, r.stderr).toBe(0);
      const names = r.stdout
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean);
      for (const n of ['dockerd', 'containerd', 'redis-server', 'docker-registry']) expect(names).not.toContain(n);
      expect(names.length).toBeLessThan(40);
    });

    it('root in the instance is an unprivileged uid of this machine (user namespace), not 0', async () => {
      const r = await inAttacker('cat /proc/self/uid_map; sudo -n cat /proc/self/uid_map');
      expect(r.code).toBe(0);
      const [inside, host] = r.stdout.trim().split(/\s+/).map(Number);
      expect(inside).toBe(0);
      expect(host).not.toBe(0);
      // dockerd's `default` remap: the dockremap range of /etc/subuid.
      const start = Number(/^dockremap:(\d+):/m.exec(readFileSync('/etc/subuid', 'utf8'))?.[1]);
      expect(host).toBe(start);
      expect(r.stdout).not.toMatch(/^\s*0\s+0\s/m);
      // Seen from this machine, the instance's init runs as that uid.
      const pid = (await docker.getContainer(attackerContainer).inspect()).State.Pid;
      expect(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]).toBe(String(start));
    });

    it('no Docker socket is inside the instance', async () => {
      const r = await inAttacker('sudo -n ls -l /var/run/docker.sock /run/docker.sock /run/codebay-docker/docker.sock');
      expect(r.code).not.toBe(0);
      expect(r.stderr.match(/No such file or directory/g)?.length).toBe(3);
    });
  });

  describe('its build step (a Dockerfile RUN on the builder’s daemon)', () => {
    it('recorded every probe in its image and its build log; the probe tells a reached target (the Debian mirror)', () => {
      const found = parseProbes(buildProbes);
      expect(found.get('control-debian-mirror')?.outcome).toBe('reached');
      // The build log carries the same lines; the distinctive word is only on the control's.
      const reachedLines = buildLog.split('\n').filter((l) => l.includes('CODEBAY-REACHED'));
      expect(reachedLines.length).toBeGreaterThan(0);
      expect(reachedLines.every((l) => l.includes('PROBE control-debian-mirror '))).toBe(true);
      expect(buildProbes.split('\n').filter((l) => l.includes('CODEBAY-REACHED'))).toHaveLength(1);
    });

    it.each(ATTEMPTS.map((a) => [a.title, a] as const))('%s: refused', (_title, attempt) => {
      const targets = attempt.targets(buildAddresses);
      expectOutcomes(parseProbes(buildProbes), targets, attempt.outcomes);
      expect(canaryHits).toEqual([]);
    });
  });

  /** What only the workbench page has (code-server's login page has none of it). */
  const WORKBENCH = /workbench\.js|vscode-workbench|workbench-web|monaco-workbench|"workbenchWebConfiguration"|vscode-remote-resource/i;

  /** GET `url`, following code-server's own redirects on the same origin (`/` → `/?folder=…`) but never to its login page. */
  async function openEditor(url: string, headers: Record<string, string>) {
    let r = await editorRequest(url, { headers });
    for (let hops = 0; r.status === 302 && hops < 3; hops++) {
      const next = new URL(String(r.headers.location), url);
      if (next.origin !== new URL(url).origin || /login/.test(next.pathname)) break;
      r = await editorRequest(next.href, { headers });
    }
    return r;
  }

  describe('the victim’s editor on its published port, bypassing the gateway (from this machine)', () => {
    const direct = (path = '/') => `http://localhost:${victimPort}${path}`;
    /** The attacker's own editor secret: root in its instance reads it from its own editor's environment (its own, by design). */
    let ownSecret: string;

    it('GET / without the editor secret: the login redirect, never the workbench', async () => {
      const r = await editorRequest(direct());
      expect(r.status).toBe(302);
      expect(String(r.headers.location)).toMatch(/^\.?\/?login/);
      expect(r.body).not.toMatch(WORKBENCH);
    });

    it('the login page is all it serves without the secret', async () => {
      const r = await editorRequest(direct('/login'));
      expect(r.status).toBe(200);
      expect(r.body).toMatch(/type="password"/);
      expect(r.body).not.toMatch(WORKBENCH);
    });

    it.each([
      ['the victim’s access token', () => victim.instance.access_token],
      ['the codebay_tkn value as its own cookie', () => `x; codebay_tkn=${victim.instance.access_token}`],
      ['a guessed secret (64 hex)', () => 'a'.repeat(64)],
    ])('a forged code-server-session cookie (%s): still the login redirect', async (_what, value) => {
      const r = await editorRequest(direct(), { headers: { cookie: `code-server-session=${value()}` } });
      expect(r.status).toBe(302);
      expect(String(r.headers.location)).toMatch(/login/);
      expect(r.body).not.toMatch(WORKBENCH);
    });

    it('the attacker’s own editor secret opens its own editor directly, never the victim’s', async () => {
      const r = await inAttacker(
        "sudo -n sh -c 'cat /proc/[0-9]*/environ 2>/dev/null' | tr '\\0' '\\n' | sed -n 's/^\\(HASHED_PASSWORD\\|CODEBAY_EDITOR_SECRET\\)=//p' | sort -u",
      );
      ownSecret = r.stdout.trim();
      expect(ownSecret).toMatch(/^[0-9a-f]{64}$/);
      const own = (await docker.getContainer(attackerContainer).inspect()).NetworkSettings.Ports['8080/tcp']![0]!.HostPort;
      // Control: the secret is real, and the direct port serves the workbench to it.
      const mine = await openEditor(`http://localhost:${own}/`, { cookie: `code-server-session=${ownSecret}` });
      expect(mine.status).toBe(200);
      expect(mine.body).toMatch(WORKBENCH);
      // The victim's editor has a secret of its own.
      const theirs = await openEditor(direct(), { cookie: `code-server-session=${ownSecret}` });
      expect(theirs.status).toBe(302);
      expect(String(theirs.headers.location)).toMatch(/login/);
      expect(theirs.body).not.toMatch(WORKBENCH);
    });

    it('a WebSocket handshake without the secret: 401', async () => {
      expect(await editorUpgrade(direct('/?reconnectionToken=x&reconnection=false&skipWebSocketFrames=false'))).toBe(401);
    });

    it('the victim’s access token as the editor password: refused, no session cookie', async () => {
      const r = await editorRequest(direct('/login'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `password=${encodeURIComponent(victim.instance.access_token)}`,
      });
      expect(String(r.headers['set-cookie'] ?? '')).not.toMatch(/code-server-session=/);
      expect(r.status === 302 ? String(r.headers.location) : r.body).not.toMatch(WORKBENCH);
      expect([200, 302, 429]).toContain(r.status);
      if (r.status === 302) expect(String(r.headers.location)).toMatch(/login/);
    });
  });

  describe('through the gateway, with the attacker’s tokens and the victim’s cookie', () => {
    const victimOrigin = () => victim.instance.editor_url.replace(/\/$/, '');
    const attackerOrigin = () => attacker.editor_url.replace(/\/$/, '');
    /** The attacker's own editor cookie (`codebay_tkn=…`), as its origin sets it. */
    const attackerCookie = async () => {
      const r = await editorRequest(`${attacker.editor_url}?tkn=${attacker.access_token}`);
      expect(r.status).toBe(302);
      return String(r.headers['set-cookie'] ?? '').split(';')[0]!;
    };
    const victimCookie = async () => {
      const r = await editorRequest(`${victim.instance.editor_url}?tkn=${victim.instance.access_token}`);
      expect(r.status).toBe(302);
      return String(r.headers['set-cookie'] ?? '').split(';')[0]!;
    };

    it.each([
      ['the attacker’s API token as ?tkn=', () => ({ url: `${victim.instance.editor_url}?tkn=${h.attacker.token}`, headers: {} })],
      ['the attacker’s API token as the cookie', () => ({ url: victim.instance.editor_url, headers: { cookie: `codebay_tkn=${h.attacker.token}` } })],
      ['the attacker’s API token as a bearer', () => ({ url: victim.instance.editor_url, headers: { authorization: `Bearer ${h.attacker.token}` } })],
      ['the attacker instance’s access token as ?tkn=', () => ({ url: `${victim.instance.editor_url}?tkn=${attacker.access_token}`, headers: {} })],
    ])('%s on the victim’s origin: 401', async (_what, req) => {
      const { url, headers } = req();
      const r = await editorRequest(url, { headers });
      expect(r.status).toBe(401);
      expect(r.headers['set-cookie']).toBeUndefined();
      expect(r.body).not.toMatch(WORKBENCH);
    });

    it('the attacker’s own editor cookie sent to the victim’s host: 401 (and 200 on its own)', async () => {
      const cookie = await attackerCookie();
      const own = await openEditor(attacker.editor_url, { cookie });
      expect(own.status).toBe(200);
      expect(own.body).toMatch(WORKBENCH);
      const r = await editorRequest(victim.instance.editor_url, { headers: { cookie } });
      expect(r.status).toBe(401);
      expect(r.body).not.toMatch(WORKBENCH);
    });

    it('the attacker’s own editor cookie on a WebSocket to the victim’s host: 401', async () => {
      const cookie = await attackerCookie();
      expect(await editorUpgrade(`${victim.instance.editor_url}?reconnectionToken=x&reconnection=false&skipWebSocketFrames=false`, { cookie })).toBe(401);
    });

    it('the victim’s cookie on a POST from the attacker’s origin: 403', async () => {
      const cookie = await victimCookie();
      const r = await editorRequest(`${victim.instance.editor_url}login`, {
        method: 'POST',
        headers: { cookie, origin: attackerOrigin(), 'content-type': 'application/x-www-form-urlencoded' },
        body: 'password=x',
      });
      expect(r.status).toBe(403);
      expect(r.body).toContain('cross-origin request refused');
    });

    it('the victim’s cookie on a WebSocket from the attacker’s origin: 403 (101 from its own)', async () => {
      const cookie = await victimCookie();
      const url = `${victim.instance.editor_url}?reconnectionToken=codebay-test&reconnection=false&skipWebSocketFrames=false`;
      expect(await editorUpgrade(url, { cookie, origin: attackerOrigin() })).toBe(403);
      expect(await editorUpgrade(url, { cookie, origin: 'null' })).toBe(403);
      // Control: the same handshake from the victim's own origin is let through.
      expect(await editorUpgrade(url, { cookie, origin: victimOrigin() })).toBe(101);
    });

    it('the API origin’s path form /instances/<victim>/…: only a redirect to the victim’s origin, never editor content', async () => {
      for (const path of [`/instances/${victim.instance.instance_id}/`, `/instances/${victim.instance.instance_id}/login`]) {
        const r = await fetch(`${h.stack.url}${path}`, { redirect: 'manual', headers: { authorization: `Bearer ${h.attacker.token}` } });
        expect(r.status).toBe(302);
        expect(r.headers.get('location')).toBe(`${victimOrigin()}${path.slice(`/instances/${victim.instance.instance_id}`.length)}`);
        expect(r.headers.get('set-cookie')).toBeNull();
        expect(await r.text()).not.toMatch(WORKBENCH);
      }
      // The seed form with the attacker's token leads to the victim's origin, which refuses it.
      const seed = await fetch(`${h.stack.url}/instances/${victim.instance.instance_id}?tkn=${attacker.access_token}`, { redirect: 'manual' });
      expect(seed.status).toBe(302);
      expect((await editorRequest(seed.headers.get('location')!)).status).toBe(401);
    });

    it('a Host header naming the victim’s instance with the attacker’s cookie and the path form of its own: 401', async () => {
      const cookie = await attackerCookie();
      const r = await editorRequest(`${attacker.editor_url}instances/${attacker.instance_id}/`, {
        headers: { cookie, host: new URL(victim.instance.editor_url).host },
      });
      expect(r.status).toBe(401);
    });

    it('X-Forwarded-Host naming the victim’s instance on the API origin: not the editor', async () => {
      for (const path of ['/', '/login', '/static/']) {
        const plain = await fetch(`${h.stack.url}${path}`, { redirect: 'manual' });
        const r = await fetch(`${h.stack.url}${path}`, { redirect: 'manual', headers: { 'x-forwarded-host': new URL(victim.instance.editor_url).host } });
        // The header changes nothing: the API origin answers as it does without it.
        expect(r.status, path).toBe(plain.status);
        const body = await r.text();
        expect(body).toBe(await plain.text());
        expect(body).not.toMatch(WORKBENCH);
      }
    });

    it.each([
      ['GET', (id: string) => `/api/instances/${id}`],
      ['GET', (id: string) => `/api/instances/${id}/build-status`],
      ['GET', (id: string) => `/api/instances/${id}/build-logs`],
      ['DELETE', (id: string) => `/api/instances/${id}`],
    ])('the API with the attacker’s token: %s %s of the victim’s instance → 404', async (method, path) => {
      const r = await h.attacker.api(path(victim.instance.instance_id), { method });
      expect(r.status).toBe(404);
      expect(await r.text()).not.toContain(victim.instance.access_token);
    });

    it('the API lists none of the victim’s instances to the attacker', async () => {
      const list = (await (await h.attacker.api('/api/instances')).json()) as { instances: InstanceResponse[] };
      expect(list.instances.map((i) => i.instance_id)).toEqual([attacker.instance_id]);
    });

    it.each([
      ['no token', undefined],
      ['the attacker’s API token', () => h.attacker.token],
      ['the attacker instance’s access token', () => attacker.access_token],
      ['the victim’s access token', () => victim.instance.access_token],
    ])('the victim’s workspace upload (GET /seed/instances/<victim>) with %s: 401', async (_what, token) => {
      const r = await fetch(`${h.stack.url}/seed/instances/${victim.instance.instance_id}`, {
        headers: token ? { authorization: `Bearer ${token()}` } : {},
      });
      expect(r.status).toBe(401);
      expect(await r.text()).not.toContain(victim.imageSecret);
    });

    describe('the victim’s ports (an application on 3000 in its instance)', () => {
      const victimPortOrigin = () => victimOrigin().replace(`//${victim.instance.instance_id}.`, `//${victim.instance.instance_id}-3000.`);
      const APP = /^app-3000 /;
      beforeAll(async () => {
        const [node, ...args] = portAppCommand([3000]);
        const started = await execIn(testDocker(), h.stack.names.container(victim.instance.instance_id), [
          'sh',
          '-c',
          'nohup "$0" "$@" >/dev/null 2>&1 &',
          node!,
          ...args,
        ]);
        expect(started.code).toBe(0);
        // Control: with the victim's own token the application answers on its port's origin.
        const cookie = await victimCookie();
        await waitFor(
          'the victim’s application to answer on its port’s origin',
          async () => {
            const r = await editorRequest(`${victimPortOrigin()}/x`, { headers: { cookie } });
            return APP.test(r.body) ? r : undefined;
          },
          30_000,
          250,
        );
      }, 60_000);

      it.each([
        ['no token', () => ({})],
        ['the attacker’s own editor cookie', async () => ({ cookie: await attackerCookie() })],
        ['the attacker instance’s access token as the cookie', () => ({ cookie: `codebay_tkn=${attacker.access_token}` })],
        ['the attacker’s API token as a bearer', () => ({ authorization: `Bearer ${h.attacker.token}` })],
      ])('its port’s origin with %s: 401, nothing of the application', async (_what, headers) => {
        const r = await editorRequest(`${victimPortOrigin()}/x`, { headers: await headers() });
        expect(r.status).toBe(401);
        expect(r.body).not.toMatch(APP);
        expect(await editorUpgrade(`${victimPortOrigin()}/socket`, { ...(await headers()), origin: victimPortOrigin() })).toBe(401);
      });

      it('the attacker instance’s token on its own port’s origin opens only its own instance’s port, never the victim’s', async () => {
        const own = await editorRequest(
          `${attackerOrigin().replace(`//${attacker.instance_id}.`, `//${attacker.instance_id}-3000.`)}/?tkn=${attacker.access_token}`,
        );
        expect(own.status).toBe(302);
        const cookie = String(own.headers['set-cookie'] ?? '').split(';')[0]!;
        expect((await editorRequest(`${victimPortOrigin()}/x`, { headers: { cookie } })).status).toBe(401);
      });

      it('the editor’s port proxy on the victim’s editor origin (/proxy/3000/…, any case, encoded): never the application in the editor’s origin', async () => {
        const cookie = await victimCookie();
        for (const path of ['/proxy/3000/page', '/PROXY/3000/page', '/absproxy/3000/page', '/proxy/%33%30%30%30/page', '//proxy/3000/page']) {
          const r = await editorRequest(`${victimOrigin()}${path}`, { headers: { cookie } });
          expect(r.body, path).not.toMatch(APP);
          expect(r.status, path).toBe(302);
          expect(r.headers.location, path).toBe(`${victimPortOrigin()}/page`);
        }
        expect((await editorRequest(`${victimOrigin()}/proxy/3000/form`, { method: 'POST', headers: { cookie, origin: victimOrigin() } })).status).toBe(404);
        expect(await editorUpgrade(`${victimOrigin()}/proxy/3000/socket`, { cookie, origin: victimOrigin() })).toBe(404);
      });

      it('the victim’s cookie on its port’s origin from the attacker’s origin (POST, WebSocket): 403', async () => {
        const cookie = await victimCookie();
        const r = await editorRequest(`${victimPortOrigin()}/form`, { method: 'POST', headers: { cookie, origin: attackerOrigin() } });
        expect(r.status).toBe(403);
        expect(r.body).not.toMatch(APP);
        expect(await editorUpgrade(`${victimPortOrigin()}/socket`, { cookie, origin: attackerOrigin() })).toBe(403);
        expect(await editorUpgrade(`${victimPortOrigin()}/socket`, { cookie, origin: victimOrigin() })).toBe(403);
        // Control: from the port's own origin the handshake reaches the application.
        expect(await editorUpgrade(`${victimPortOrigin()}/socket`, { cookie, origin: victimPortOrigin() })).toBe(101);
      });
    });
  });

  /**
   * Where the browser meets the two editors. On one machine they are `<id>.localhost`
   * origins — which Chromium treats as separate sites, so SameSite=Lax already keeps the
   * victim's cookie off the attacker's requests. Behind a real domain (https) they share a
   * registrable domain (same-site): the cookie does go along, and only CORS, the gateway's
   * fetch-metadata check and its Origin check stand in the way. The second case runs a
   * second gateway of the same stack with `INSTANCE_DOMAIN` under example.com, which this
   * browser maps to loopback (no name is looked up anywhere) and treats as secure origins,
   * as it would treat https ones (secure context, Sec-Fetch-* headers).
   */
  const SAME_SITE_DOMAIN = 'codebay.example.com';
  describe.each([
    ['`*.localhost` origins (separate sites to the browser)', false],
    [`origins under one registrable domain, ${SAME_SITE_DOMAIN} (same-site, as behind a real domain)`, true],
  ])('in a real browser holding the victim’s cookie, a page of the attacker’s origin — %s', (_title, sameSite) => {
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    /** The API origin and each editor's origin as this browser reaches them. */
    let api: string;
    let victimEditor: string;
    let attackerEditor: string;
    /** The attacker page's requests as the browser records them (DevTools protocol): URL, whether a codebay_tkn cookie went along, status. */
    const wire = new Map<string, { url?: string; cookie?: boolean; status?: number }>();
    beforeAll(async () => {
      if (!victim || !attacker) return;
      if (sameSite) {
        const port = (h.stack.ports['gateway-same-site'] = await freePort());
        await h.stack.startService('gateway', { as: 'gateway-same-site', env: { GATEWAY_PORT: String(port), INSTANCE_DOMAIN: SAME_SITE_DOMAIN } });
        api = `http://127.0.0.1:${port}`;
        victimEditor = `http://${victim.instance.instance_id}.${SAME_SITE_DOMAIN}:${port}/`;
        attackerEditor = `http://${attacker.instance_id}.${SAME_SITE_DOMAIN}:${port}/`;
        browser = await launchChromiumMapping(SAME_SITE_DOMAIN, [victimEditor, attackerEditor]);
      } else {
        api = h.stack.url;
        victimEditor = victim.instance.editor_url;
        attackerEditor = attacker.editor_url;
        browser = await launchChromium();
      }
      context = await browser.newContext();
      // The victim opens its editor: the browser now holds its host-only cookie.
      const victimPage = await context.newPage();
      const opened = await victimPage.goto(`${victimEditor}?tkn=${victim.instance.access_token}`);
      expect(opened?.status()).toBe(200);
      expect(victimPage.url().startsWith(victimEditor)).toBe(true);
      expect(await opened!.text()).toMatch(WORKBENCH);
      // A page of the attacker's origin in the same browser (the gateway's own page for that
      // origin: what a page may read depends on its origin only).
      page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      const entry = (id: string) => wire.get(id) ?? wire.set(id, {}).get(id)!;
      cdp.on('Network.requestWillBeSent', (e) => void (entry(e.requestId).url = e.request.url));
      cdp.on(
        'Network.requestWillBeSentExtraInfo',
        (e) => void (entry(e.requestId).cookie = /codebay_tkn=/.test(String(e.headers.Cookie ?? e.headers.cookie ?? ''))),
      );
      cdp.on('Network.responseReceivedExtraInfo', (e) => void (entry(e.requestId).status = e.statusCode));
      await page.goto(`${attackerEditor}codebay-attacker-page`);
      expect(new URL(page.url()).origin).toBe(new URL(attackerEditor).origin);
      // As an https page would be: a secure context, whose requests carry fetch metadata.
      expect(await page.evaluate('window.isSecureContext')).toBe(true);
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
      if (sameSite) await h?.stack.stopService('gateway-same-site');
    });

    it(`fetch(victim editor, credentials: include) cannot read it: the gateway refuses another site's load (403)${sameSite ? ', the victim’s cookie attached' : ''}`, async () => {
      wire.clear();
      const r = (await page.evaluate(`(async () => {
        try { const res = await fetch(${JSON.stringify(victimEditor)}, { credentials: 'include' }); return { read: await res.text(), status: res.status }; }
        catch (e) { return { error: String(e) }; }
      })()`)) as { error?: string; read?: string };
      expect(r).toEqual({ error: 'TypeError: Failed to fetch' });
      // What went over the wire (the browser's own record, which the page never sees): on one registrable
      // domain the victim's cookie went along — the gateway refused the load anyway (Sec-Fetch-Site), and
      // CORS would have kept the answer from the page; on `*.localhost` the cookie stays behind.
      const sent = await waitFor(
        'the browser to record the answer to the fetch',
        () => [...wire.values()].find((w) => w.url === victimEditor && w.status !== undefined),
        10_000,
        50,
      );
      expect(sent).toEqual({ url: victimEditor, cookie: sameSite, status: 403 });
    });

    it('fetch(victim editor, no-cors) gets only an opaque response', async () => {
      const r = (await page.evaluate(`(async () => {
        const res = await fetch(${JSON.stringify(victimEditor)}, { credentials: 'include', mode: 'no-cors' });
        return { type: res.type, status: res.status, body: await res.text() };
      })()`)) as { type: string; status: number; body: string };
      expect(r).toEqual({ type: 'opaque', status: 0, body: '' });
    });

    it('new WebSocket(ws://<victim host>/…) never opens', async () => {
      const wsUrl = `${victimEditor.replace(/^http/, 'ws')}?reconnectionToken=codebay-browser&reconnection=false&skipWebSocketFrames=false`;
      const events = (await page.evaluate(`new Promise((resolve) => {
        const events = [];
        const ws = new WebSocket(${JSON.stringify(wsUrl)});
        ws.onopen = () => events.push('open');
        ws.onmessage = () => events.push('message');
        ws.onerror = () => events.push('error');
        ws.onclose = (e) => { events.push('close:' + e.code); resolve(events); };
        setTimeout(() => resolve(events.concat('no close within 20 s')), 20000);
      })`)) as string[];
      expect(events).toEqual(['error', 'close:1006']);
    });

    it('fetch(API origin /instances/<victim>/…) cannot read the editor behind the redirect', async () => {
      const url = `${api}/instances/${victim.instance.instance_id}/`;
      const r = (await page.evaluate(`(async () => {
        const out = {};
        try { const res = await fetch(${JSON.stringify(url)}, { credentials: 'include' }); out.cors = { status: res.status, body: await res.text() }; }
        catch (e) { out.cors = String(e); }
        const opaque = await fetch(${JSON.stringify(url)}, { credentials: 'include', mode: 'no-cors' });
        out.noCors = { type: opaque.type, status: opaque.status, body: await opaque.text() };
        return out;
      })()`)) as { cors: unknown; noCors: unknown };
      expect(r).toEqual({ cors: 'TypeError: Failed to fetch', noCors: { type: 'opaque', status: 0, body: '' } });
    });

    it('an iframe of the victim’s editor: its document is out of reach', async () => {
      const r = (await page.evaluate(`new Promise((resolve) => {
        const f = document.createElement('iframe');
        f.onload = () => {
          let doc;
          try { doc = f.contentWindow.document.documentElement.outerHTML; } catch (e) { doc = e.name; }
          resolve({ contentDocument: f.contentDocument === null ? null : 'readable', doc });
        };
        f.src = ${JSON.stringify(victimEditor)};
        document.body.appendChild(f);
        setTimeout(() => resolve({ error: 'no load within 30 s' }), 30000);
      })`)) as unknown;
      expect(r).toEqual({ contentDocument: null, doc: 'SecurityError' });
    });

    it('the victim’s editor does not render inside a frame of the attacker’s page (no clickjacking)', async () => {
      const loaded = (await page.evaluate(`new Promise((resolve) => {
        const f = document.createElement('iframe');
        f.name = 'codebay-victim-frame';
        f.style = 'opacity: 0.01; position: absolute; top: 0; left: 0; width: 1200px; height: 800px';
        f.onload = () => resolve('load');
        f.src = ${JSON.stringify(victimEditor)};
        document.body.appendChild(f);
        setTimeout(() => resolve('no load within 30 s'), 30000);
      })`)) as string;
      expect(loaded).toBe('load');
      const frame = page.frame({ name: 'codebay-victim-frame' });
      // A frame refused by X-Frame-Options / frame-ancestors shows the browser's own error page instead.
      const framed = frame ? await frame.content().catch((e: Error) => `unreadable: ${e.message}`) : 'no frame';
      expect(framed, `the victim's workbench rendered inside the attacker's page at ${frame?.url()}`).not.toMatch(WORKBENCH);
    });

    it('document.cookie on the attacker’s origin shows no cookie of the victim’s', async () => {
      const cookies = (await page.evaluate('document.cookie')) as string;
      expect(cookies).not.toContain(victim.instance.access_token);
      expect(cookies).not.toContain('codebay_tkn');
    });

    it('the victim’s cookie is host-only on the victim’s exact host, HttpOnly, SameSite=Lax; the attacker’s origin has none', async () => {
      const all = await context.cookies();
      expect(all.filter((k) => k.name === 'codebay_tkn')).toEqual([
        expect.objectContaining({ domain: new URL(victimEditor).hostname, path: '/', httpOnly: true, sameSite: 'Lax', value: victim.instance.access_token }),
      ]);
      expect(await context.cookies(attackerEditor)).toEqual([]);
      expect(await context.cookies(api)).toEqual([]);
    });
  });

  describe('Redis', () => {
    it.each([['PING'], ['KEYS *'], ['HGETALL codebay:instance:VICTIM'], ['CONFIG GET requirepass']])('%s without the password: NOAUTH', async (command) => {
      expect(await redisRaw(redisPort, command.replace('VICTIM', victim.instance.instance_id))).toMatch(/^-NOAUTH /);
    });

    it.each([['AUTH wrong-password'], ['AUTH default wrong-password'], ['HELLO 3 AUTH default wrong-password']])('%s: WRONGPASS', async (command) => {
      expect(await redisRaw(redisPort, command)).toMatch(/^-WRONGPASS /);
    });

    it('the victim’s instance record holds its access token only as its sha256 (and sealed)', async () => {
      const redis = createRedis(c.redisUrl, 'test-hostile-record');
      try {
        const record = await redis.hgetall(redisKeys.instance(victim.instance.instance_id));
        expect(Object.keys(record).length).toBeGreaterThan(5);
        const token = victim.instance.access_token;
        for (const [field, value] of Object.entries(record)) {
          expect(value, field).not.toContain(token);
          expect(value, field).not.toContain(victim.imageSecret);
        }
        const sha = createHash('sha256').update(token).digest('hex');
        expect(JSON.parse(record.accessTokenHash!)).toBe(sha);
        expect(JSON.parse(record.accessTokenSealed!)).toMatch(/^v1\./);
      } finally {
        await redis.quit();
      }
    });
  });

  describe('the registry', () => {
    const pull = () => registryUrl(c.registry);
    const push = () => registryUrl(c.registryPush);
    const repo = 'codebay-devcontainer';
    /** The victim's image manifest (pull user): its digest really is there. */
    const victimManifest = async () => {
      const r = await fetch(`${pull()}/v2/${repo}/manifests/${victim.recordedDigest}`, {
        headers: {
          authorization: basic(c.registryPullAuth),
          accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json',
        },
      });
      expect(r.status).toBe(200);
      return (await r.json()) as { layers: { digest: string }[]; config: { digest: string } };
    };

    it.each([
      ['pull', 'anonymous', 401],
      ['push', 'anonymous', 401],
      ['pull', 'the pull user', 405],
      ['push', 'the pull user', 401],
    ] as const)('a push (blob upload) to the %s endpoint, %s: %i', async (endpoint, who, status) => {
      const r = await fetch(`${endpoint === 'pull' ? pull() : push()}/v2/${repo}/blobs/uploads/`, {
        method: 'POST',
        headers: who === 'anonymous' ? {} : { authorization: basic(c.registryPullAuth) },
      });
      expect(r.status).toBe(status);
      expect(r.headers.get('location')).toBeNull();
    });

    it.each([
      ['pull', 'anonymous', 401],
      ['push', 'anonymous', 401],
      ['pull', 'the pull user', 405],
      ['push', 'the pull user', 401],
    ] as const)('overwriting a tag with a manifest PUT on the %s endpoint, %s: %i', async (endpoint, who, status) => {
      const manifest = await victimManifest();
      const r = await fetch(`${endpoint === 'pull' ? pull() : push()}/v2/${repo}/manifests/${victim.instance.build!.key}`, {
        method: 'PUT',
        headers: {
          'content-type': 'application/vnd.docker.distribution.manifest.v2+json',
          ...(who === 'anonymous' ? {} : { authorization: basic(c.registryPullAuth) }),
        },
        body: JSON.stringify(manifest),
      });
      expect(r.status).toBe(status);
    });

    it.each([
      ['pull', 'anonymous', 401],
      ['push', 'anonymous', 401],
      ['pull', 'the pull user', 405],
      ['push', 'the pull user', 401],
    ] as const)('deleting the victim’s image by digest on the %s endpoint, %s: %i', async (endpoint, who, status) => {
      const r = await fetch(`${endpoint === 'pull' ? pull() : push()}/v2/${repo}/manifests/${victim.recordedDigest}`, {
        method: 'DELETE',
        headers: who === 'anonymous' ? {} : { authorization: basic(c.registryPullAuth) },
      });
      expect(r.status).toBe(status);
    });

    it.each([['pull'], ['push']] as const)('pulling the victim’s image by digest from the %s endpoint without credentials: 401', async (endpoint) => {
      const base = endpoint === 'pull' ? pull() : push();
      const manifest = await victimManifest();
      const m = await fetch(`${base}/v2/${repo}/manifests/${victim.recordedDigest}`);
      expect(m.status).toBe(401);
      for (const digest of [manifest.config.digest, ...manifest.layers.map((l) => l.digest)]) {
        const b = await fetch(`${base}/v2/${repo}/blobs/${digest}`);
        expect(b.status, digest).toBe(401);
      }
      expect((await fetch(`${base}/v2/_catalog`)).status).toBe(401);
      expect((await fetch(`${base}/v2/${repo}/tags/list`)).status).toBe(401);
    });
  });
});

/**
 * launchChromium's browser, which also resolves every host under `domain` to loopback itself
 * (a real public-suffix domain for the same-site case, never looked up) and treats
 * `secureOrigins` as it would https ones.
 */
function launchChromiumMapping(domain: string, secureOrigins: string[]): Promise<Browser> {
  return launchChromium([
    `--host-resolver-rules=MAP *.${domain} 127.0.0.1`,
    `--unsafely-treat-insecure-origin-as-secure=${secureOrigins.map((o) => new URL(o).origin).join(',')}`,
  ]);
}

/** Command names of this machine's processes (its own /proc). */
function hostProcessNames(): string[] {
  const names: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      names.push(readFileSync(`/proc/${entry}/comm`, 'utf8').trim());
    } catch {
      // gone meanwhile
    }
  }
  return names;
}
