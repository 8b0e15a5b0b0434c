import { checkSourceAddress, checkSourceName, formatTarget, type SourcePolicy } from '@codebay/devcontainer';
import { lookup } from 'node:dns/promises';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, isIP, type AddressInfo, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Something the proxy did not let through, for the build log and the failure message. */
export interface EgressEvent {
  /** refused: the source policy said no (403); timeout: DNS, connect or an idle transfer ran out of time (504); error: DNS or connect failed (502). */
  kind: 'refused' | 'timeout' | 'error';
  /** `host:port` the client asked for (IPv6 in brackets). */
  target: string;
  /** One sentence; for `refused` the policy's reason, which names FEATURE_SOURCES. */
  reason: string;
}

export interface EgressProxyOptions {
  policy: SourcePolicy;
  /** Per address tried, ms. */
  connectTimeoutMs: number;
  /** No bytes in either direction for this long (ms), once connected: both sides are destroyed. */
  idleTimeoutMs: number;
  /** dns.lookup of one target, ms. */
  lookupTimeoutMs: number;
  onEvent?: (event: EgressEvent) => void;
  /** Resolves a name to all its addresses; dns.promises.lookup (`all`, `verbatim`) by default. */
  lookup?: (host: string) => Promise<string[]>;
}

const systemLookup = async (host: string): Promise<string[]> => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/** Request headers that concern one hop (RFC 9110 §7.6.1), never forwarded. */
const HOP_BY_HOP = [
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

/** A target the proxy answers itself: status and reason (the response body). */
class Refusal extends Error {
  constructor(
    readonly status: 403 | 502 | 504,
    message: string,
  ) {
    super(message);
  }
}

/** A lookup or connect that ran out of time. */
class Timeout extends Error {}

function withoutHopByHop(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase());
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.includes(name) && !named.includes(name)));
}

/** `host:port` of a CONNECT request (authority form, RFC 9112 §3.2.3), IPv6 in brackets. */
function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(authority);
  return m ? { host: (m[1] ?? m[2])!, port: Number(m[3]) } : undefined;
}

/**
 * The builder's way out: an HTTP forward proxy on 127.0.0.1 that the Dev Containers CLI is
 * pointed at (HTTP_PROXY/HTTPS_PROXY, which its proxy-agent honours for every request), so
 * that each connection of a build — registries, token realms, redirects, tarballs — goes
 * where the source policy allows and nowhere else.
 *
 * Serves CONNECT (https tunnels) and absolute-form plain-http requests (RFC 9112 §3.2.2).
 * For each: the name is checked (checkSourceName), resolved (dns.lookup, all addresses,
 * within `lookupTimeoutMs`), every address is checked (checkSourceAddress) and the
 * connection goes to a checked address — never to a second lookup's answer, so a name
 * cannot rebind between check and connect. Addresses are tried in order, each within
 * `connectTimeoutMs`; once connected, `idleTimeoutMs` without bytes either way ends both
 * sides. Answers: 403 refused by the policy (text body = the reason), 502 lookup or connect
 * failed, 504 a timeout before the tunnel or response started; later, the connection is
 * destroyed. Every such outcome is reported to `onEvent`.
 *
 * A client that goes away takes its upstream connection with it and vice versa; close()
 * destroys every connection and stops the server.
 */
export class EgressProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Duplex>();
  private closed = false;

  constructor(private readonly opts: EgressProxyOptions) {
    this.server = createServer();
    this.server.on('connection', (socket: Socket) => this.track(socket));
    this.server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => void this.tunnel(req, socket, head));
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.forward(req, res));
  }

  /** Starts listening on 127.0.0.1 on an ephemeral port; resolves to the proxy URL (`http://127.0.0.1:<port>`). */
  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.url;
  }

  /** `http://127.0.0.1:<port>`; only valid after start(). */
  get url(): string {
    const address = this.server.address() as AddressInfo | null;
    if (!address) throw new Error('EgressProxy is not listening');
    return `http://127.0.0.1:${address.port}`;
  }

  /** Connections open right now, client and upstream sides (for tests and metrics). */
  get openConnections(): number {
    return this.sockets.size;
  }

  /** Stops accepting and destroys every open connection; resolves when the server is closed. */
  async close(): Promise<void> {
    this.closed = true;
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.server.closeAllConnections();
    await stopped;
  }

  private track<S extends Duplex>(socket: S): S {
    if (this.closed) socket.destroy();
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    return socket;
  }

  private report(kind: EgressEvent['kind'], target: string, reason: string): void {
    try {
      this.opts.onEvent?.({ kind, target, reason });
    } catch {
      // a broken listener must not take the proxy down
    }
  }

  /** CONNECT host:port — a tunnel for https. */
  private async tunnel(req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> {
    client.on('error', () => client.destroy());
    const authority = parseAuthority(req.url ?? '');
    if (!authority) return this.answerRaw(client, 400, `"${req.url}" is not host:port`);
    const target = formatTarget(authority.host.toLowerCase(), authority.port);
    let upstream: Socket;
    try {
      upstream = await this.open(authority.host, authority.port, target, client);
    } catch (err) {
      if (err instanceof Refusal) return this.answerRaw(client, err.status, err.message);
      return void client.destroy();
    }
    if (client.destroyed) return void upstream.destroy();
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    const idle = this.idleTimer(target, () => {
      client.destroy();
      upstream.destroy();
    });
    client.on('data', idle.touch);
    upstream.on('data', idle.touch);
    upstream.once('close', idle.stop);
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** GET http://host:port/path — plain http, forwarded with the bodies streamed both ways. */
  private async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '');
    } catch {
      return this.answer(res, 400, 'this is a forward proxy: send CONNECT host:port, or an absolute http:// URL');
    }
    if (url.protocol !== 'http:') return this.answer(res, 400, `this proxy forwards http:// URLs only, not ${url.protocol}`);
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = url.port ? Number(url.port) : 80;
    const target = formatTarget(host, port);
    let socket: Socket;
    try {
      socket = await this.open(host, port, target, req.socket);
    } catch (err) {
      if (err instanceof Refusal) return this.answer(res, err.status, err.message);
      return void res.destroy();
    }
    if (req.socket.destroyed) return void socket.destroy();
    // The response done or the client gone: the upstream connection has nothing left to do.
    res.once('close', () => socket.destroy());
    let timedOut = false;
    const idle = this.idleTimer(target, () => {
      timedOut = true;
      socket.destroy();
      if (res.headersSent) res.destroy();
      else this.answer(res, 504, `no answer from ${target} within ${this.opts.idleTimeoutMs} ms`);
    });
    socket.on('data', idle.touch);
    socket.once('close', idle.stop);
    req.on('data', idle.touch);

    const upstreamReq = request({
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers: { ...withoutHopByHop(req.headers), host: url.host },
      // No agent: this one connection, already made to a checked address (`Connection: close`).
      createConnection: () => socket,
    });
    upstreamReq.on('error', (err) => {
      socket.destroy();
      if (timedOut || res.destroyed) return;
      if (res.headersSent) return void res.destroy();
      const reason = `${target} closed the connection before answering (${err.message})`;
      this.report('error', target, reason);
      this.answer(res, 502, reason);
    });
    upstreamReq.on('response', (upstreamRes) => {
      try {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, withoutHopByHop(upstreamRes.headers));
      } catch (err) {
        // A header Node will not write (invalid characters): the answer cannot be passed on.
        socket.destroy();
        const reason = `${target} answered with a header that cannot be forwarded (${(err as Error).message})`;
        this.report('error', target, reason);
        return this.answer(res, 502, reason);
      }
      upstreamRes.pipe(res);
      // Cut short upstream: the client must not take a truncated body for a whole one.
      upstreamRes.on('error', () => res.destroy());
      upstreamRes.once('close', () => {
        if (!upstreamRes.complete) res.destroy();
      });
    });
    req.pipe(upstreamReq);
  }

  /**
   * Checks, resolves and connects `host:port` for the client on `clientSocket`. Throws a
   * Refusal (to answer with its status; already reported), or anything else when the
   * client went away or the proxy closed meanwhile.
   */
  private async open(host: string, port: number, target: string, clientSocket: Duplex): Promise<Socket> {
    const refuse = (status: 403 | 502 | 504, reason: string) => {
      this.report(status === 403 ? 'refused' : status === 504 ? 'timeout' : 'error', target, reason);
      return new Refusal(status, reason);
    };
    const gone = () => this.closed || clientSocket.destroyed;
    const byName = checkSourceName(this.opts.policy, host, port);
    if (!byName.allowed) throw refuse(403, byName.reason);

    let addresses: string[];
    try {
      addresses = await this.resolve(host);
    } catch (err) {
      if (gone()) throw err;
      const e = err as Error & { code?: string };
      throw err instanceof Timeout ? refuse(504, e.message) : refuse(502, `DNS lookup of ${host} failed (${e.code ?? e.message})`);
    }
    if (gone()) throw new Error('client went away');
    for (const address of addresses) {
      const check = checkSourceAddress(this.opts.policy, host, port, address);
      if (!check.allowed) throw refuse(403, check.reason);
    }

    let last: Error = new Error('no addresses');
    for (const address of addresses) {
      try {
        return await this.dial(address, port, clientSocket);
      } catch (err) {
        if (gone()) throw err;
        last = err as Error;
      }
    }
    throw last instanceof Timeout ? refuse(504, last.message) : refuse(502, `connect to ${target} failed (${last.message})`);
  }

  /** All addresses of `host` (an IP literal is its own), within lookupTimeoutMs; rejects with a Timeout or the lookup's error. */
  private async resolve(host: string): Promise<string[]> {
    if (isIP(host)) return [host];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Timeout(`DNS lookup of ${host} took longer than ${this.opts.lookupTimeoutMs} ms`)), this.opts.lookupTimeoutMs);
    });
    try {
      const found = await Promise.race([(this.opts.lookup ?? systemLookup)(host), timeout]);
      if (found.length === 0) throw Object.assign(new Error('no addresses'), { code: 'ENOTFOUND' });
      return found;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One TCP connection to an address already checked, within connectTimeoutMs. Rejects with
   * a Timeout, the socket's error, or an Error when the client's socket closes first; the
   * upstream socket is destroyed in each case.
   */
  private dial(address: string, port: number, clientSocket: Duplex): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = this.track(connect({ host: address, port }));
      const done = (err?: Error) => {
        clearTimeout(timer);
        clientSocket.off('close', onClientClose);
        socket.off('error', done);
        socket.off('connect', onConnect);
        if (err || this.closed) {
          socket.destroy();
          reject(err ?? new Error('proxy closed'));
        } else {
          socket.on('error', () => socket.destroy());
          resolve(socket);
        }
      };
      const onClientClose = () => done(new Error('client went away'));
      const onConnect = () => done();
      const timer = setTimeout(
        () => done(new Timeout(`connect to ${formatTarget(address, port)} took longer than ${this.opts.connectTimeoutMs} ms`)),
        this.opts.connectTimeoutMs,
      );
      if (clientSocket.destroyed) return onClientClose();
      clientSocket.once('close', onClientClose);
      socket.once('error', done);
      socket.once('connect', onConnect);
    });
  }

  /** A timer that fires after idleTimeoutMs without touch(): reports a timeout and calls onIdle. */
  private idleTimer(target: string, onIdle: () => void): { touch: () => void; stop: () => void } {
    const ms = this.opts.idleTimeoutMs;
    const timer = setTimeout(() => {
      this.report('timeout', target, `no bytes either way for ${ms} ms`);
      onIdle();
    }, ms);
    return { touch: () => void timer.refresh(), stop: () => clearTimeout(timer) };
  }

  private answer(res: ServerResponse, status: number, text: string): void {
    if (res.headersSent) return void res.destroy();
    res.writeHead(status, reasonPhrase(status, text), { 'content-type': 'text/plain; charset=utf-8', connection: 'close' });
    res.end(`${text}\n`);
  }

  private answerRaw(socket: Duplex, status: number, text: string): void {
    const body = Buffer.from(`${text}\n`);
    const head = `HTTP/1.1 ${status} ${reasonPhrase(status, text)}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    socket.end(Buffer.concat([Buffer.from(head), body]), () => socket.destroy());
  }
}

/**
 * The status line's reason phrase, carrying the proxy's reason: the Dev Containers CLI shows
 * only `HTTP <status>: <reason phrase>` of a failed request, so this is what users read.
 * Printable ASCII only (RFC 9112 §4), at most 200 characters.
 */
function reasonPhrase(status: number, text: string): string {
  const base = { 400: 'Bad Request', 403: 'Forbidden', 502: 'Bad Gateway', 504: 'Gateway Timeout' }[status] ?? 'Error';
  return `${base} (codebay egress proxy: ${text})`.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
}
