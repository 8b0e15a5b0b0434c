import { parseSourcePolicy } from '@codebay/devcontainer';
import { once } from 'node:events';
import {
  createServer as createHttpServer,
  request,
  type ClientRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server as HttpServer,
} from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EgressProxy, type EgressEvent, type EgressProxyOptions } from './egress-proxy.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function until(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function startProxy(entries: string[], opts: Partial<EgressProxyOptions> = {}) {
  const events: EgressEvent[] = [];
  const proxy = new EgressProxy({
    policy: parseSourcePolicy(entries),
    connectTimeoutMs: 2000,
    idleTimeoutMs: 2000,
    lookupTimeoutMs: 2000,
    onEvent: (e) => events.push(e),
    ...opts,
  });
  const url = await proxy.start();
  cleanups.push(() => proxy.close());
  return { proxy, url, port: Number(new URL(url).port), events };
}

/** A TCP server on 127.0.0.1 that keeps its sockets for the test to look at. */
async function tcpServer(onSocket: (socket: Socket) => void = () => undefined): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  });
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

/** Greets, then answers every chunk in upper case. */
const shouting = (socket: Socket) => {
  socket.write('hello\n');
  socket.on('data', (chunk) => socket.write(chunk.toString().toUpperCase()));
};

interface ConnectAnswer {
  status: number;
  headers: string;
  body: string;
  socket: Socket;
  /** Bytes after the response head on an established tunnel. */
  rest: Buffer;
}

/** A raw CONNECT through the proxy: the status line and headers; the body for a refusal. */
async function rawConnect(proxyPort: number, target: string): Promise<ConnectAnswer> {
  const socket = connect(proxyPort, '127.0.0.1');
  socket.on('error', () => undefined);
  cleanups.push(() => socket.destroy());
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  let buffered = Buffer.alloc(0);
  while (buffered.indexOf('\r\n\r\n') < 0) {
    const [chunk] = (await Promise.race([once(socket, 'data'), once(socket, 'close').then(() => [Buffer.alloc(0)])])) as [Buffer];
    if (chunk.length === 0 && socket.destroyed) throw new Error(`proxy closed the connection; got ${JSON.stringify(buffered.toString())}`);
    buffered = Buffer.concat([buffered, chunk]);
  }
  const end = buffered.indexOf('\r\n\r\n');
  const head = buffered.subarray(0, end).toString();
  const rest = buffered.subarray(end + 4);
  const status = Number(head.split(' ')[1]);
  if (status === 200) return { status, headers: head, body: '', socket, rest };
  const chunks: Buffer[] = [rest];
  socket.on('data', (c: Buffer) => chunks.push(c));
  if (!socket.destroyed) await once(socket, 'close');
  return { status, headers: head, body: Buffer.concat(chunks).toString(), socket, rest };
}

const responseOf = async (req: ClientRequest): Promise<IncomingMessage> => ((await once(req, 'response')) as [IncomingMessage])[0];

/** Reads from a tunnel until `text` has arrived. */
async function readUntil(socket: Socket, text: string, already: Buffer = Buffer.alloc(0)): Promise<string> {
  let got = already.toString();
  while (!got.includes(text)) {
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    got += chunk.toString();
  }
  return got;
}

describe('EgressProxy CONNECT', () => {
  it('tunnels to an explicitly listed 127.0.0.1:<port>, bytes both ways', async () => {
    const target = await tcpServer(shouting);
    const { port, events } = await startProxy([`127.0.0.1:${target.port}`]);
    const answer = await rawConnect(port, `127.0.0.1:${target.port}`);
    expect(answer.status).toBe(200);
    expect(await readUntil(answer.socket, 'hello\n', answer.rest)).toBe('hello\n');
    answer.socket.write('ping');
    expect(await readUntil(answer.socket, 'PING')).toBe('PING');
    expect(events).toEqual([]);
  });

  it('tunnels to an explicitly listed localhost:<port> (tries each address localhost has)', async () => {
    const target = await tcpServer(shouting);
    const { port } = await startProxy([`localhost:${target.port}`]);
    const answer = await rawConnect(port, `localhost:${target.port}`);
    expect(answer.status).toBe(200);
    answer.socket.write('abc');
    expect(await readUntil(answer.socket, 'ABC', answer.rest)).toBe('hello\nABC');
  });

  it('refuses a loopback target that is not listed: 403 with the reason, reported, nothing connected', async () => {
    const target = await tcpServer();
    const { port, events } = await startProxy(['*', `127.0.0.1:${target.port + 1}`]);
    const answer = await rawConnect(port, `127.0.0.1:${target.port}`);
    const reason = `feature source 127.0.0.1:${target.port} is refused: 127.0.0.1 is a loopback address, allowed only when FEATURE_SOURCES lists it by name`;
    expect(answer.status).toBe(403);
    // The reason rides in the status line too: the CLI shows only `HTTP <status>: <reason phrase>`.
    expect(answer.headers).toMatch(new RegExp(`^HTTP/1\\.1 403 Forbidden \\(codebay egress proxy: feature source 127\\.0\\.0\\.1:${target.port} is refused`));
    expect(answer.body).toBe(`${reason}\n`);
    expect(events).toEqual([{ kind: 'refused', target: `127.0.0.1:${target.port}`, reason }]);
    expect(target.sockets).toHaveLength(0);
  });

  it('refuses localhost unless listed, and a public-looking name that resolves to loopback', async () => {
    const target = await tcpServer();
    const { port, events } = await startProxy(['*'], {
      lookup: async (host) => (host === 'rebind.example.com' ? ['93.184.215.14', '127.0.0.1'] : ['203.0.113.1']),
    });
    const byName = await rawConnect(port, `localhost:${target.port}`);
    expect(byName.status).toBe(403);
    expect(byName.body).toBe(
      `feature source localhost:${target.port} is refused: localhost is a loopback name, allowed only when FEATURE_SOURCES lists it by name\n`,
    );
    const byAddress = await rawConnect(port, `rebind.example.com:${target.port}`);
    expect(byAddress.status).toBe(403);
    expect(byAddress.body).toBe(
      `feature source rebind.example.com:${target.port} is refused: it resolves to 127.0.0.1, a loopback address, allowed only when FEATURE_SOURCES lists rebind.example.com by name\n`,
    );
    expect(events.map((e) => [e.kind, e.target])).toEqual([
      ['refused', `localhost:${target.port}`],
      ['refused', `rebind.example.com:${target.port}`],
    ]);
    expect(target.sockets).toHaveLength(0);
  });

  it('cuts a tunnel to a listed target that accepts and never answers after the idle timeout', async () => {
    const target = await tcpServer();
    const { port, events, proxy } = await startProxy([`127.0.0.1:${target.port}`], { idleTimeoutMs: 300 });
    const started = Date.now();
    const answer = await rawConnect(port, `127.0.0.1:${target.port}`);
    expect(answer.status).toBe(200);
    await until(() => target.sockets.length === 1, 'the target to accept');
    if (!answer.socket.destroyed) await once(answer.socket, 'close');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    await until(() => target.sockets[0]!.destroyed, 'the target side to be closed');
    expect(events).toEqual([{ kind: 'timeout', target: `127.0.0.1:${target.port}`, reason: 'no bytes either way for 300 ms' }]);
    await until(() => proxy.openConnections === 0, 'no open connections');
  });

  it('keeps a tunnel open while bytes flow, however long it lasts in all', async () => {
    const target = await tcpServer(shouting);
    const { port, events } = await startProxy([`127.0.0.1:${target.port}`], { idleTimeoutMs: 300 });
    const answer = await rawConnect(port, `127.0.0.1:${target.port}`);
    await readUntil(answer.socket, 'hello\n', answer.rest);
    const started = Date.now();
    for (let i = 0; Date.now() - started < 900; i++) {
      answer.socket.write(`x${i}`);
      await readUntil(answer.socket, `X${i}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(answer.socket.destroyed).toBe(false);
    expect(events).toEqual([]);
  });

  it('answers 502 for a listed target whose port is closed, reported as error', async () => {
    const closed = await tcpServer();
    await new Promise((resolve) => closed.server.close(resolve));
    const { port, events } = await startProxy([`127.0.0.1:${closed.port}`]);
    const answer = await rawConnect(port, `127.0.0.1:${closed.port}`);
    expect(answer.status).toBe(502);
    expect(answer.body).toMatch(new RegExp(`^connect to 127\\.0\\.0\\.1:${closed.port} failed \\(connect ECONNREFUSED 127\\.0\\.0\\.1:${closed.port}\\)\\n$`));
    expect(events).toEqual([{ kind: 'error', target: `127.0.0.1:${closed.port}`, reason: answer.body.trim() }]);
  });

  it('answers 504 when the lookup takes too long, 502 when it fails', async () => {
    const { port, events } = await startProxy(['*'], {
      lookupTimeoutMs: 100,
      lookup: (host) => (host === 'slow.example.com' ? new Promise(() => undefined) : Promise.reject(Object.assign(new Error('nope'), { code: 'ENOTFOUND' }))),
    });
    const slow = await rawConnect(port, 'slow.example.com:443');
    expect(slow.status).toBe(504);
    expect(slow.body).toBe('DNS lookup of slow.example.com took longer than 100 ms\n');
    const missing = await rawConnect(port, 'missing.example.com:443');
    expect(missing.status).toBe(502);
    expect(missing.body).toBe('DNS lookup of missing.example.com failed (ENOTFOUND)\n');
    expect(events.map((e) => e.kind)).toEqual(['timeout', 'error']);
  });

  it('answers 400 to a CONNECT target that is not host:port', async () => {
    const { port } = await startProxy(['*']);
    const answer = await rawConnect(port, 'no-port.example.com');
    expect(answer.status).toBe(400);
  });

  it('a client that goes away takes the upstream connection with it, and vice versa', async () => {
    const target = await tcpServer(shouting);
    const { port, proxy } = await startProxy([`127.0.0.1:${target.port}`]);
    const first = await rawConnect(port, `127.0.0.1:${target.port}`);
    await readUntil(first.socket, 'hello\n', first.rest);
    first.socket.destroy();
    await until(() => target.sockets[0]?.destroyed === true, 'the upstream side to close');

    const second = await rawConnect(port, `127.0.0.1:${target.port}`);
    await readUntil(second.socket, 'hello\n', second.rest);
    target.sockets[1]!.destroy();
    if (!second.socket.destroyed) await once(second.socket, 'close');
    await until(() => proxy.openConnections === 0, 'no open connections');
  });

  it('close() ends open tunnels and stops accepting', async () => {
    const target = await tcpServer(shouting);
    const { port, proxy } = await startProxy([`127.0.0.1:${target.port}`]);
    const answer = await rawConnect(port, `127.0.0.1:${target.port}`);
    await readUntil(answer.socket, 'hello\n', answer.rest);
    await proxy.close();
    await until(() => answer.socket.destroyed && target.sockets[0]!.destroyed, 'both sides to close');
    expect(proxy.openConnections).toBe(0);
    const refused = connect(port, '127.0.0.1');
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');
  });
});

describe('EgressProxy plain http', () => {
  async function httpServer(handler: Parameters<typeof createHttpServer>[1]): Promise<{ server: HttpServer; port: number }> {
    const server = createHttpServer(handler);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    });
    return { server, port: (server.address() as AddressInfo).port };
  }

  /** An absolute-form request through the proxy, as proxy-agent's HttpProxyAgent sends it. */
  function viaProxy(proxyPort: number, url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
    const req = request({ host: '127.0.0.1', port: proxyPort, method: init.method ?? 'GET', path: url, headers: { host: new URL(url).host, ...init.headers } });
    cleanups.push(() => req.destroy());
    req.end(init.body);
    return req;
  }

  it('forwards a GET to a listed local server and streams the response as it comes', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let seen: { url?: string; headers?: IncomingHttpHeaders } = {};
    const { port: targetPort } = await httpServer((req, res) => {
      seen = { url: req.url, headers: req.headers };
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first\n');
      void released.then(() => res.end('second\n'));
    });
    const { port } = await startProxy([`127.0.0.1:${targetPort}`]);
    const req = viaProxy(port, `http://127.0.0.1:${targetPort}/v2/x/y/manifests/1?n=1`, { headers: { 'proxy-connection': 'keep-alive', 'x-keep': 'yes' } });
    const res = await responseOf(req);
    expect(res.statusCode).toBe(200);
    // The first chunk arrives while the server still holds the rest back: nothing is buffered.
    const [first] = (await once(res, 'data')) as [Buffer];
    expect(first.toString()).toBe('first\n');
    release();
    let rest = '';
    res.on('data', (c: Buffer) => (rest += c.toString()));
    await once(res, 'end');
    expect(rest).toBe('second\n');
    expect(seen.url).toBe('/v2/x/y/manifests/1?n=1');
    expect(seen.headers?.host).toBe(`127.0.0.1:${targetPort}`);
    expect(seen.headers?.['x-keep']).toBe('yes');
    expect(seen.headers?.['proxy-connection']).toBeUndefined();
  });

  it('forwards a request body', async () => {
    const { port: targetPort } = await httpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.end(`${req.method} ${body.length}`));
    });
    const { port } = await startProxy([`127.0.0.1:${targetPort}`]);
    const body = 'token=abc&'.repeat(1000);
    const req = viaProxy(port, `http://127.0.0.1:${targetPort}/token`, { method: 'POST', body, headers: { 'content-length': String(body.length) } });
    const res = await responseOf(req);
    let text = '';
    res.on('data', (c: Buffer) => (text += c.toString()));
    await once(res, 'end');
    expect(text).toBe(`POST ${body.length}`);
  });

  it('refuses a target that is not listed with 403 and the reason', async () => {
    const { port: targetPort } = await httpServer((_req, res) => res.end('should not be reached'));
    const { port, events } = await startProxy(['*']);
    const req = viaProxy(port, `http://localhost:${targetPort}/`);
    const res = await responseOf(req);
    let text = '';
    res.on('data', (c: Buffer) => (text += c.toString()));
    await once(res, 'end');
    expect(res.statusCode).toBe(403);
    expect(text).toBe(`feature source localhost:${targetPort} is refused: localhost is a loopback name, allowed only when FEATURE_SOURCES lists it by name\n`);
    expect(events).toHaveLength(1);
  });

  it('answers 504 when a listed server accepts the request and never answers', async () => {
    const { port: targetPort } = await httpServer(() => undefined);
    const { port, events } = await startProxy([`127.0.0.1:${targetPort}`], { idleTimeoutMs: 200 });
    const req = viaProxy(port, `http://127.0.0.1:${targetPort}/never`);
    const res = await responseOf(req);
    expect(res.statusCode).toBe(504);
    expect(events).toEqual([{ kind: 'timeout', target: `127.0.0.1:${targetPort}`, reason: 'no bytes either way for 200 ms' }]);
  });

  it('cuts a response that stalls half-way, so the client sees it incomplete', async () => {
    const { port: targetPort } = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
    });
    const { port } = await startProxy([`127.0.0.1:${targetPort}`], { idleTimeoutMs: 200 });
    const req = viaProxy(port, `http://127.0.0.1:${targetPort}/stall`);
    const res = await responseOf(req);
    expect(res.statusCode).toBe(200);
    let error: Error | undefined;
    res.on('error', (err) => (error = err));
    res.resume();
    // not events.once: it rejects on the 'error' this test expects
    await new Promise((resolve) => res.once('close', resolve));
    expect(res.complete).toBe(false);
    expect(error?.message).toBe('aborted');
  });

  it('answers 400 to a request that is not absolute-form http', async () => {
    const { port } = await startProxy(['*']);
    const req = request({ host: '127.0.0.1', port, path: '/' });
    cleanups.push(() => req.destroy());
    req.end();
    const res = await responseOf(req);
    expect(res.statusCode).toBe(400);
  });
});
