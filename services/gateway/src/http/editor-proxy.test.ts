import type { EditorOrigins, InstanceRecord } from '@codebay/contracts';
import { PlatformKey, hashToken, instanceSecrets, type InstanceStore } from '@codebay/platform';
import express from 'express';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EditorProxy, editorPortPath, matchEditorPath } from './editor-proxy.ts';

describe('matchEditorPath', () => {
  it.each([
    ['/instances/alice-1a2b3c4d/', 'alice-1a2b3c4d', '/'],
    ['/instances/alice-1a2b3c4d/static/out/vs/workbench.js', 'alice-1a2b3c4d', '/static/out/vs/workbench.js'],
    ['/instances/a/x', 'a', '/x'],
    ['/instances/abc/a%20b', 'abc', '/a%20b'],
    ['/instances/abc//double', 'abc', '//double'],
    ['/instances/abc/build-logsx', 'abc', '/build-logsx'],
    ['/instances/abc/stable-123/build-logs', 'abc', '/stable-123/build-logs'],
    ['/instances/abc/build-logs/more', 'abc', '/build-logs/more'],
  ])('%s is editor path %s → %s', (url, id, upstreamUrl) => {
    expect(matchEditorPath(url)).toEqual({ id, upstreamUrl });
  });

  it('keeps the query string on the upstream URL', () => {
    expect(matchEditorPath('/instances/abc/?folder=/home/vscode/workspace')).toEqual({ id: 'abc', upstreamUrl: '/?folder=/home/vscode/workspace' });
    expect(matchEditorPath('/instances/abc/?tkn=secret&x=1')).toEqual({ id: 'abc', upstreamUrl: '/?tkn=secret&x=1' });
    expect(matchEditorPath('/instances/abc/x?a=1?b=2')).toEqual({ id: 'abc', upstreamUrl: '/x?a=1?b=2' });
    expect(matchEditorPath('/instances/abc/x?')).toEqual({ id: 'abc', upstreamUrl: '/x?' });
  });

  it.each([
    '/instances/abc/build-logs',
    '/instances/abc/build-logs?follow=1',
    '/instances/abc/build-logs?after=/instances/abc/x',
    '/instances/abc/build-status',
    '/instances/abc/build-status?x=1',
  ])('leaves the API path %s to the API', (url) => {
    expect(matchEditorPath(url)).toBeUndefined();
  });

  it.each([
    ['/instances/abc', 'the instance resource itself (no slash)'],
    ['/instances/abc?tkn=x', 'the seed URL form (redirected elsewhere)'],
    ['/instances/', 'no id'],
    ['/instances', 'the collection'],
    ['/instances/simple', 'a create route'],
    ['/api/instances/abc/', 'anything under /api'],
    ['/instances/ABC/', 'an upper-case id'],
    ['/instances/-abc/', 'an id with a leading hyphen'],
    ['/instances/abc-/', 'an id with a trailing hyphen'],
    ['/instances/a_b/', 'an id with an underscore'],
    ['/health', 'other routes'],
    ['/x/instances/abc/', 'a prefix before /instances'],
    ['/instances?x=/instances/abc/', 'a query that looks like an editor path'],
  ])('%s is not an editor path (%s)', (url) => {
    expect(matchEditorPath(url)).toBeUndefined();
  });
});

describe('EditorProxy on an instance origin', () => {
  // A real HTTP server stands in for the editor; the store is a stub holding one Running instance.
  const token = 'a'.repeat(40);
  const record = {
    id: 'alice-abcdefgh',
    status: 'Running',
    accessTokenHash: hashToken(token),
    runtime: { driver: 'docker', endpoint: '' },
  } as unknown as InstanceRecord;
  const origins: EditorOrigins = { protocol: 'http:', domain: 'localhost', port: ':8080' };
  const key = new PlatformKey(Buffer.alloc(32, 1).toString('base64'));
  let upstream: Server;
  let gateway: Server;
  let seen: IncomingMessage['headers'] = {};
  let seenUrl = '';
  const host = `${record.id}.localhost:8080`;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      seen = req.headers;
      seenUrl = req.url ?? '';
      // As code-server's path proxy answers an application's absolute redirect.
      if (req.url === '/proxy/3000/redirect') res.setHeader('location', '/proxy/3000/login');
      res.setHeader('set-cookie', ['theme=dark; Domain=localhost; Path=/', 'codebay_tkn=planted; Domain=localhost; Path=/', 'plain=1']);
      res.end('editor');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    (record.runtime as { endpoint: string }).endpoint = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;
    proxy = new EditorProxy({
      store: { get: async (id: string) => (id === record.id ? record : null) } as unknown as InstanceStore,
      logger: pino({ level: 'silent' }),
      origins,
      key,
    });
    const app = express();
    app.use(proxy.middleware());
    gateway = app.listen(0, '127.0.0.1');
    await new Promise<void>((r) => gateway.once('listening', r));
  });
  afterAll(() => {
    upstream.close();
    gateway.close();
  });

  let proxy: EditorProxy;
  const call = (headers: Record<string, string>, method = 'GET') =>
    new Promise<{ status: number; headers: IncomingMessage['headers'] }>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: (gateway.address() as { port: number }).port, path: '/x', method, headers: { host, ...headers } },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        },
      );
      req.on('error', reject);
      req.end();
    });

  it('adds the editor secret upstream and never passes codebay’s cookies on', async () => {
    expect((await call({ cookie: `codebay_tkn=${token}; theme=dark` })).status).toBe(200);
    expect(seen.cookie).toBe(`theme=dark; code-server-session=${instanceSecrets.editor(key, record.id)}`);
  });

  it('keeps an editor’s cookies host-only and never lets it set codebay’s own', async () => {
    const res = await call({ cookie: `codebay_tkn=${token}` });
    expect(res.headers['set-cookie']).toEqual(['theme=dark; Path=/', 'plain=1']);
  });

  it('lets only the editor’s own pages frame it, whatever fetch metadata the browser sends', async () => {
    const res = await call({ cookie: `codebay_tkn=${token}` });
    expect(res.headers['content-security-policy']).toBe("frame-ancestors 'self'");
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
  });

  it('finds the real session cookie among planted ones of the same name', async () => {
    expect((await call({ cookie: `codebay_tkn=planted; codebay_tkn=${token}` })).status).toBe(200);
    expect((await call({ cookie: 'codebay_tkn=planted' })).status).toBe(401);
  });

  it('refuses other sites’ subresource loads and state changes from other origins, but not a link', async () => {
    const cookie = `codebay_tkn=${token}`;
    expect((await call({ cookie, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' })).status).toBe(403);
    expect((await call({ cookie, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' })).status).toBe(403);
    expect((await call({ cookie, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' })).status).toBe(200);
    expect((await call({ cookie, 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' })).status).toBe(200);
    expect((await call({ cookie, origin: 'http://bob-12345678.localhost:8080' }, 'POST')).status).toBe(403);
    expect((await call({ cookie, origin: `http://${host}` }, 'POST')).status).toBe(200);
  });

  it('reads a port origin <id>-<port> apart from the editor’s, and nothing else', () => {
    expect(proxy.targetOfHost('alice-abcdefgh.localhost:8080')).toEqual({ id: 'alice-abcdefgh' });
    expect(proxy.targetOfHost('alice-abcdefgh-3000.localhost:8080')).toEqual({ id: 'alice-abcdefgh', port: 3000 });
    expect(proxy.targetOfHost('bob-2-abcdefgh-65535.localhost')).toEqual({ id: 'bob-2-abcdefgh', port: 65535 });
    // An id whose random part is all digits is still an id (8 digits are no port).
    expect(proxy.targetOfHost('bob-12345678.localhost')).toEqual({ id: 'bob-12345678' });
    for (const h of [
      'alice-abcdefgh-0.localhost',
      'alice-abcdefgh-65536.localhost',
      'alice-abcdefgh-8080.localhost',
      '-3000.localhost',
      'alice-abcdefgh-3000.example.com',
    ])
      expect(proxy.targetOfHost(h), h).toBeUndefined();
  });

  it('sends a port origin’s requests through the editor’s proxy to that port, guarded by the same token and its own origin', async () => {
    const portHost = `${record.id}-3000.localhost:8080`;
    const cookie = `codebay_tkn=${token}`;
    expect((await call({ host: portHost })).status).toBe(401);
    expect((await call({ host: portHost, cookie: 'codebay_tkn=wrong' })).status).toBe(401);
    expect((await call({ host: portHost, cookie })).status).toBe(200);
    expect(seenUrl).toBe('/proxy/3000/x');
    expect(seen.cookie).toBe(`code-server-session=${instanceSecrets.editor(key, record.id)}`);
    // The editor's origin is another origin: its pages may not change things on the port's, nor the port's on the editor's.
    expect((await call({ host: portHost, cookie, origin: `http://${host}` }, 'POST')).status).toBe(403);
    expect((await call({ host, cookie, origin: `http://${portHost}` }, 'POST')).status).toBe(403);
    expect((await call({ host: portHost, cookie, origin: `http://${portHost}` }, 'POST')).status).toBe(200);
  });

  it('does not serve the editor’s port proxy on the editor’s origin: a page there would run in the editor’s origin', async () => {
    const cookie = `codebay_tkn=${token}`;
    seenUrl = '';
    const at = (path: string, method = 'GET') =>
      new Promise<{ status: number; location?: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: (gateway.address() as { port: number }).port, path, method, headers: { host, cookie } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location }));
        });
        req.on('error', reject);
        req.end();
      });
    expect(await at('/proxy/3000/page?x=1')).toEqual({ status: 302, location: `http://${record.id}-3000.localhost:8080/page?x=1` });
    expect(await at('/ABSPROXY/3000/page')).toEqual({ status: 302, location: `http://${record.id}-3000.localhost:8080/page` });
    expect((await at('/proxy/3000/form', 'POST')).status).toBe(404);
    expect((await at('/proxy/8080/')).status).toBe(404);
    expect((await at('/proxy/3000x/')).status).toBe(404);
    expect(seenUrl).not.toMatch(/proxy/i);
    // An application's absolute redirect stays on its own origin's path.
    const portHost = `${record.id}-3000.localhost:8080`;
    const redirected = await new Promise<string | undefined>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port: (gateway.address() as { port: number }).port, path: '/redirect', headers: { host: portHost, cookie } },
        (res) => {
          res.resume();
          resolve(res.headers.location);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(redirected).toBe('/login');
    // A port host named with a leading zero is no port host.
    expect(proxy.targetOfHost(`${record.id}-03000.localhost:8080`)).toBeUndefined();
  });
});

describe('editorPortPath', () => {
  it.each([
    ['/proxy/3000/x?q=1', { port: 3000, rest: '/x?q=1' }],
    ['/proxy/3000', { port: 3000, rest: '/' }],
    ['/PROXY/3000/a/b', { port: 3000, rest: '/a/b' }],
    ['/absproxy/4000/y', { port: 4000, rest: '/y' }],
    ['/proxy/%33%30%30%30/x', { port: 3000, rest: '/x' }],
    ['//proxy/3000/x', { port: 3000, rest: '/x' }],
    ['/%70roxy/3000/x', { port: 3000, rest: '/x' }],
    ['/proxy/3000x/y', { port: 0, rest: '/y' }],
    ['/proxy', { port: 0, rest: '/' }],
  ])('%s is the editor’s port proxy', (url, expected) => {
    expect(editorPortPath(url)).toEqual(expected);
  });

  it.each(['/', '/proxyx/3000', '/static/proxy/3000', '/stable-abc/proxy/3000'])('%s is not', (url) => {
    expect(editorPortPath(url)).toBeUndefined();
  });
});
