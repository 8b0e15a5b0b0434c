import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { CodebayClient } from './index.ts';

let server: Server | undefined;
afterEach(() => new Promise<void>((done) => (server ? server.close(() => done()) : done())));

/** A stand-in for the gateway behind an ingress: answers `plan` in order, one entry per request. */
async function serve(
  plan: Array<(lastEventId: string | undefined) => { status: number; body: string }>,
): Promise<{ url: string; seen: Array<string | undefined> }> {
  const seen: Array<string | undefined> = [];
  server = createServer((req, res) => {
    const last = req.headers['last-event-id'] as string | undefined;
    seen.push(last);
    const step = plan.shift() ?? (() => ({ status: 500, body: 'unexpected' }));
    const { status, body } = step(last);
    res.writeHead(status, { 'content-type': status === 200 ? 'text/event-stream' : body.startsWith('{') ? 'application/json' : 'text/plain' });
    res.end(body);
  });
  await new Promise<void>((done) => server!.listen(0, '127.0.0.1', done));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const line = (id: string, text: string) => `id: ${id}\nevent: line\ndata: ${JSON.stringify({ text })}\n\n`;
const retry = 'retry: 10\n\n';

describe('CodebayClient.followLogs', () => {
  it('goes on after a 503, 502 or a proxy’s own 404 (a gateway rollout), from the last line it had', async () => {
    const { url, seen } = await serve([
      () => ({ status: 200, body: retry + line('1-0', 'one') + line('2-0', 'two') }),
      () => ({ status: 503, body: 'no available server' }),
      () => ({ status: 502, body: 'bad gateway' }),
      () => ({ status: 404, body: '404 page not found' }),
      () => ({ status: 200, body: line('3-0', 'three') + `event: end\ndata: ${JSON.stringify({ outcome: 'success', reason: null })}\n\n` }),
    ]);
    const lines: string[] = [];
    const reconnects: string[] = [];
    const end = await new CodebayClient({ url, token: 't' }).followLogs('x', {
      onLine: (l) => lines.push(l.text),
      onReconnect: (after, err) => reconnects.push(`${after} ${err.message}`),
    });
    expect(end).toEqual({ outcome: 'success', reason: null });
    expect(lines).toEqual(['one', 'two', 'three']);
    expect(seen).toEqual([undefined, '2-0', '2-0', '2-0', '2-0']);
    expect(reconnects).toEqual([
      '2-0 the log stream ended before its end event',
      '2-0 the server was unavailable (503)',
      '2-0 the server was unavailable (502)',
      '2-0 the server was unavailable (404 from a proxy)',
    ]);
  });

  it('stops at a refusal that waiting will not change (404)', async () => {
    const { url } = await serve([() => ({ status: 404, body: '{"error":"not found","code":"not_found"}' })]);
    await expect(new CodebayClient({ url, token: 't' }).followLogs('x', { onLine: () => undefined })).rejects.toMatchObject({ status: 404 });
  });
});
