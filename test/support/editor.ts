import { request, type IncomingHttpHeaders } from 'node:http';
import { lookup as dnsLookup } from 'node:dns';
import type { LookupFunction } from 'node:net';

export interface EditorResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * `*.localhost` is loopback (RFC 6761 §6.3; browsers resolve it so), but glibc without
 * systemd-resolved does not, and neither does Node's fetch: requests to an instance's own
 * origin (`http://<id>.localhost:<port>/`) go through this, which connects to 127.0.0.1
 * and keeps the URL's host in the Host header, exactly as a browser would send it.
 */
const localhostLookup: LookupFunction = (hostname, options, callback) => {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if ((options as { all?: boolean }).all)
      (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
    return;
  }
  dnsLookup(hostname, options, callback);
};

/** One HTTP request (no redirects followed), `*.localhost` included (an instance's own origin on one machine). */
export function editorRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<EditorResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers, lookup: localhostLookup, timeout: init.timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${init.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

/**
 * A WebSocket handshake to a URL on an instance's own origin: the status the gateway (or
 * the editor behind it) answers — 101 when the upgrade is accepted. The socket is closed at once.
 */
export function editorUpgrade(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      lookup: localhostLookup,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': Buffer.from('codebay-test-key').toString('base64'),
        ...headers,
      },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err) => {
      // A refusal written straight to the socket, then closed, can surface as a parse error.
      reject(err);
    });
    req.end();
  });
}

/** GET `url`, following redirects by hand and keeping cookies; 200 with the workbench page counts as ready. */
export async function fetchWorkbench(url: string, jar: Map<string, string>): Promise<{ status: number; ok: boolean; finalUrl: string }> {
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    const headers: Record<string, string> = {};
    if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    // Through editorRequest: the editor lives on its instance's own origin, `<id>.localhost`, which Node's fetch cannot resolve.
    const res = await editorRequest(current, { headers, timeoutMs: 5_000 });
    const setCookies = res.headers['set-cookie'] ?? [];
    for (const sc of setCookies) {
      const kv = sc.split(';', 1)[0]!;
      const i = kv.indexOf('=');
      if (i > 0) jar.set(kv.slice(0, i).trim(), kv.slice(i + 1).trim());
    }
    const location = res.headers.location;
    if (res.status >= 300 && res.status < 400 && location) {
      current = new URL(location, current).toString();
      continue;
    }
    return { status: res.status, ok: res.status === 200 && res.body.includes('vscode-workbench-web-configuration'), finalUrl: current };
  }
  throw new Error(`too many redirects from ${url}`);
}
