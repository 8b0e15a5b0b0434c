import type { InstanceRecord } from '@codebay/contracts';
import type { InstanceStore, Logger } from '@codebay/platform';
import { parse as parseCookies, serialize as serializeCookie } from 'cookie';
import type { RequestHandler } from 'express';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { sameSecret } from '../tokens.ts';

export const EDITOR_COOKIE = 'codebay_tkn';
/** Paths under `/instances/<id>/` that belong to the API, not the editor. */
const API_SUBPATHS = new Set(['build-logs', 'build-status']);
const EDITOR_PATH = /^\/instances\/([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)(\/.*)$/;

interface EditorTarget {
  id: string;
  /** Path on the editor, prefix stripped, query kept. */
  upstreamUrl: string;
}

/** `/instances/<id>/rest?q` → the instance and the editor-side URL; undefined for API paths. */
export function matchEditorPath(url: string): EditorTarget | undefined {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const m = EDITOR_PATH.exec(path);
  if (!m) return undefined;
  const rest = m[2]!;
  const first = rest.split('/')[1] ?? '';
  if (API_SUBPATHS.has(first) && rest.split('/').length === 2) return undefined;
  return { id: m[1]!, upstreamUrl: rest + (q === -1 ? '' : url.slice(q)) };
}

function stripTokenParam(url: string): string {
  const [path, query = ''] = url.split('?', 2) as [string, string?];
  const params = new URLSearchParams(query);
  params.delete('tkn');
  const rest = params.toString();
  return rest ? `${path}?${rest}` : path;
}

function denied(res: { statusCode: number; setHeader(k: string, v: string): void; end(b: string): void }, status: number, message: string) {
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(`${message}\n`);
}

/**
 * The editor route: `/instances/<id>/…` (HTTP and WebSocket) is proxied to the
 * instance's editor once the caller proves it holds that instance's access token,
 * first as `?tkn=` (exchanged for an HttpOnly cookie scoped to the instance's path),
 * then by that cookie.
 */
export class EditorProxy {
  private readonly proxy = httpProxy.createProxyServer({ ws: true, xfwd: true, changeOrigin: false });

  constructor(
    private readonly store: InstanceStore,
    private readonly logger: Logger,
    private readonly secureCookies: boolean,
  ) {
    this.proxy.on('error', (err, _req, res) => {
      this.logger.warn({ err: err.message }, 'editor proxy error');
      if (res && 'writeHead' in res && !res.headersSent) denied(res, 502, 'the editor did not answer');
      else if (res && 'destroy' in res) res.destroy();
    });
  }

  private tokenOf(req: IncomingMessage): string | undefined {
    const cookies = parseCookies(req.headers.cookie ?? '');
    return cookies[EDITOR_COOKIE];
  }

  /** The instance when `token` is its access token and it is not being deleted. */
  async authorised(id: string, token: string | undefined): Promise<InstanceRecord | undefined> {
    if (!token) return undefined;
    const record = await this.store.get(id);
    if (!record || !sameSecret(token, record.accessToken)) return undefined;
    // A deleted instance's token opens nothing any more.
    if (record.status === 'Deleting' || record.status === 'Deleted') return undefined;
    return record;
  }

  /** Express middleware for plain HTTP; passes API paths on. */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const target = matchEditorPath(req.originalUrl);
      if (!target) return next();
      void (async () => {
        const queryToken = typeof req.query.tkn === 'string' ? req.query.tkn : undefined;
        const record = await this.authorised(target.id, queryToken ?? this.tokenOf(req));
        if (!record) return denied(res, 401, 'a valid access token for this instance is required');
        if (queryToken) {
          // Swap the token in the URL for a cookie, so it leaves the address bar and history.
          res.setHeader('set-cookie', this.sessionCookie(target.id, queryToken));
          res.redirect(302, stripTokenParam(req.originalUrl));
          return;
        }
        if (record.status !== 'Running' || !record.runtime) {
          res.setHeader('refresh', '3');
          return denied(res, 503, `instance ${record.id} is ${record.status}${record.failure ? `: ${record.failure.reason}` : ''}`);
        }
        req.url = target.upstreamUrl;
        this.proxy.web(req, res, { target: record.runtime.endpoint });
      })().catch(next);
    };
  }

  private sessionCookie(id: string, token: string): string {
    return serializeCookie(EDITOR_COOKIE, token, { path: `/instances/${id}/`, httpOnly: true, sameSite: 'lax', secure: this.secureCookies });
  }

  /**
   * `GET /auth/instances/<id>` for an ingress controller's external auth (ingress-nginx
   * `auth-url`): 200 when the original request carries the instance's token (as `?tkn=`
   * in `X-Original-URL`, handed back as the session cookie, or as that cookie), else 401.
   */
  authHandler(): RequestHandler {
    return (req, res, next) => {
      const id = String(req.params.id ?? '');
      const original = req.get('x-original-url') ?? req.get('x-original-uri') ?? '';
      let queryToken: string | undefined;
      try {
        queryToken = new URL(original, 'http://codebay.invalid').searchParams.get('tkn') ?? undefined;
      } catch {
        queryToken = undefined;
      }
      void (async () => {
        const record = await this.authorised(id, queryToken ?? this.tokenOf(req));
        if (!record) return denied(res, 401, 'a valid access token for this instance is required');
        if (queryToken) res.setHeader('set-cookie', this.sessionCookie(id, queryToken));
        res.setHeader('cache-control', 'no-store');
        res.status(200).end();
      })().catch(next);
    };
  }

  /** WebSocket upgrades for the editor (the workbench's remote connection). */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const target = matchEditorPath(req.url ?? '');
      const refuse = (status: number, text: string) => {
        socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      };
      if (!target) return refuse(404, 'Not Found');
      socket.on('error', () => socket.destroy());
      this.authorised(target.id, this.tokenOf(req))
        .then((record) => {
          if (!record) return refuse(401, 'Unauthorized');
          if (record.status !== 'Running' || !record.runtime) return refuse(503, 'Service Unavailable');
          req.url = target.upstreamUrl;
          this.proxy.ws(req, socket, head, { target: record.runtime.endpoint });
        })
        .catch(() => refuse(500, 'Internal Server Error'));
    });
  }

  close(): void {
    this.proxy.close();
  }
}
