import express from 'express';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { appServer } from './server.ts';

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((done) => s.close(done))));
});

const listening = (server: Server) =>
  new Promise<string>((done) => {
    servers.push(server);
    server.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  });

describe('appServer', () => {
  it("makes requests and responses with the app's prototypes, so express keeps them as they are", async () => {
    const app = express();
    const seen: boolean[] = [];
    app.use((req, res, next) => {
      seen.push(Object.getPrototypeOf(req) === app.request, Object.getPrototypeOf(res) === app.response);
      next();
    });
    app.get('/things/:id', (req, res) => {
      res.status(201).setHeader('x-id', req.params.id);
      res.json({ id: req.params.id, ua: req.get('user-agent') });
    });
    const base = await listening(appServer(app));

    const res = await fetch(`${base}/things/a1`, { headers: { 'user-agent': 'test' } });

    expect(res.status).toBe(201);
    expect(res.headers.get('x-id')).toBe('a1');
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('etag')).toMatch(/^W\/"/);
    expect(await res.json()).toEqual({ id: 'a1', ua: 'test' });
    expect(seen).toEqual([true, true]);
  });

  it('answers request bodies and errors as express does', async () => {
    const app = express();
    app.post('/echo', express.json(), (req, res) => {
      res.json(req.body);
    });
    app.get('/fail', () => {
      throw Object.assign(new Error('nope'), { status: 418 });
    });
    const base = await listening(appServer(app));

    const echoed = await fetch(`${base}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":[1,2]}' });
    expect(await echoed.json()).toEqual({ a: [1, 2] });
    expect((await fetch(`${base}/fail`)).status).toBe(418);
    expect((await fetch(`${base}/none`)).status).toBe(404);
  });
});
