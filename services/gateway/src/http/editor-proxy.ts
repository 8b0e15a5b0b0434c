import { INSTANCE_EDITOR_PORT, editorOrigin, portOrigin, type EditorOrigins, type InstanceRecord } from '@codebay/contracts';
import { hashToken, instanceSecrets, sameSecret, type InstanceStore, type Logger, type PlatformKey } from '@codebay/platform';
import { serialize as serializeCookie } from 'cookie';
import type { RequestHandler } from 'express';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';

/**
 * The browser's proof that it holds the instance's access token: host-only, on the instance's
 * own origin. Under https it carries the `__Host-` prefix, which browsers refuse to set with a
 * Domain attribute or from another host: a sibling instance's page cannot plant one.
 */
const EDITOR_COOKIE = 'codebay_tkn';
const HOST_ONLY_COOKIE = `__Host-${EDITOR_COOKIE}`;
/** code-server's own session cookie (`--auth password`): only the gateway ever sets it, on the way upstream. */
const CODE_SERVER_COOKIE = 'code-server-session';
/** Paths under `/instances/<id>/` on the API origin that belong to the API, not the editor. */
const API_SUBPATHS = new Set(['build-logs', 'build-status']);
const EDITOR_PATH = /^\/instances\/([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)(\/.*)$/;
const INSTANCE_ID = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
/**
 * The editor's own port proxy, `/proxy/<port>/…` and `/absproxy/<port>/…` (code-server's path
 * proxy, its routes case-insensitive): on the editor's origin it would serve the instance's
 * applications in the editor's origin, where a page of theirs could drive the editor. The
 * gateway sends such requests to the port's own origin instead (`editorPortPath`).
 */
const EDITOR_PORT_PROXY = /^\/+(?:abs)?proxy(?:\/+([^/]*)(.*))?$/i;
/** Set on a request bound for a port: its number (for the response's redirects). */
const PORT_OF_REQUEST = Symbol('codebay.port');
type PortRequest = IncomingMessage & { [PORT_OF_REQUEST]?: number };

/**
 * A path of the editor's port proxy (`/proxy/3000/x?q`, any case, percent-encoding decoded,
 * repeated slashes) as the port and the rest of the URL (`{port: 3000, rest: '/x?q'}`; port 0 when
 * the segment is no port); undefined for other paths.
 */
export function editorPortPath(url: string): { port: number; rest: string } | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(url.split('?', 1)[0]!);
  } catch {
    decoded = url;
  }
  const m = EDITOR_PORT_PROXY.exec(decoded);
  if (!m) return undefined;
  const q = url.indexOf('?');
  const rest = (m[2] || '/') + (q === -1 ? '' : url.slice(q));
  // Anything but a port's plain digits (`3000x`, empty) is port 0: refused by the caller.
  const port = /^\d{1,5}$/.test(m[1] ?? '') ? Number(m[1]) : 0;
  return { port, rest: rest.startsWith('/') ? rest : `/${rest}` };
}

/** Methods that change something: a foreign Origin is refused for them (and for every WebSocket). */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** What an instance host names: the instance's editor (`<id>.<domain>`) or one of its ports (`<id>-<port>.<domain>`). */
export interface HostTarget {
  id: string;
  /** A port in the instance (1–65535, not the editor's own); absent for the editor. */
  port?: number;
}

interface EditorTarget {
  id: string;
  /** Path on the editor, prefix stripped, query kept. */
  upstreamUrl: string;
}

/**
 * `/instances/<id>/rest?q` on the API origin → the instance and the editor-side URL;
 * undefined for API paths. Such URLs (the path-based form of earlier versions) are
 * redirected to the instance's own origin.
 */
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

/** `name=value` pairs of a Cookie header, in order, repeats kept (a browser sends a name twice when two cookies match). */
function cookiePairs(header: string | undefined): [string, string][] {
  const out: [string, string][] = [];
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out.push([part.slice(0, i).trim(), part.slice(i + 1).trim()]);
  }
  return out;
}

const isCodebayCookie = (name: string) => name === EDITOR_COOKIE || name === HOST_ONLY_COOKIE || name === CODE_SERVER_COOKIE;

function denied(res: ServerResponse, status: number, message: string) {
  res.statusCode = status;
  res.setHeader('content-type', 'text/plain; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.end(`${message}\n`);
}

/**
 * The editor route. Every instance's editor has an origin of its own,
 * `<id>.<INSTANCE_DOMAIN>` (`http://<id>.localhost:8080` on one machine,
 * `https://<id>.<BASE_DOMAIN>` behind an ingress with a wildcard record and certificate):
 * requests for such a host (HTTP and WebSocket, every path) go to that instance's editor
 * once the caller proves it holds the instance's access token — first as `?tkn=`
 * (exchanged for a host-only, HttpOnly, SameSite=Lax cookie, Secure under https), then by
 * that cookie. WebSockets and state-changing requests from a foreign Origin are refused
 * (same-site is not same-origin: `a.codebay.example.com` and `b.codebay.example.com` share a
 * site, so SameSite alone would let one instance's pages drive another's editor; browsers
 * treat `*.localhost` hosts as sites of their own).
 * Upstream, the user's cookies for codebay are replaced by the editor's own secret
 * (`code-server-session`): the editor answers nothing that did not come through here.
 *
 * Each port in the instance has an origin of its own too, `<id>-<port>.<INSTANCE_DOMAIN>`
 * (forwardPorts, and any port opened later), guarded the same way (its own `?tkn=` exchange and
 * host-only cookie, its own Origin checks) and served through the editor's path proxy
 * (`/proxy/<port>/…` → `localhost:<port>` in the instance, WebSockets too).
 */
export interface EditorProxyDeps {
  store: InstanceStore;
  logger: Logger;
  /** Where instances' editors live (`<id>.<domain>`). */
  origins: EditorOrigins;
  /** Derives each instance's editor secret. */
  key: PlatformKey;
}

export class EditorProxy {
  private readonly upgraded = new Set<Duplex>();
  private closed = false;
  // An editor's cookies stay host-only: a Domain attribute it sets would reach every instance's host.
  private readonly proxy = httpProxy.createProxyServer({ ws: true, xfwd: true, changeOrigin: false, cookieDomainRewrite: { '*': '' } });
  private readonly hostPattern: RegExp;
  private readonly cookieName: string;

  private readonly store: InstanceStore;
  private readonly logger: Logger;
  private readonly origins: EditorOrigins;
  private readonly key: PlatformKey;

  constructor(deps: EditorProxyDeps) {
    ({ store: this.store, logger: this.logger, origins: this.origins, key: this.key } = deps);
    const { origins } = deps;
    const domain = origins.domain.replace(/[.]/g, '\\.');
    this.hostPattern = new RegExp(`^([a-z0-9-]+)\\.${domain}(?::\\d+)?$`, 'i');
    this.cookieName = origins.protocol === 'https:' ? HOST_ONLY_COOKIE : EDITOR_COOKIE;
    this.proxy.on('proxyRes', (proxyRes, req) => {
      // code-server's path proxy prefixes an application's absolute redirects with
      // `/proxy/<port>`; on the port's own origin the application's path is the right one.
      const port = (req as PortRequest)[PORT_OF_REQUEST];
      const location = proxyRes.headers.location;
      if (port !== undefined && location?.startsWith(`/proxy/${port}/`)) proxyRes.headers.location = location.slice(`/proxy/${port}`.length);
      // Nor may an editor set codebay's own cookie.
      const set = proxyRes.headers['set-cookie'];
      if (set) proxyRes.headers['set-cookie'] = set.filter((c) => !isCodebayCookie(c.split('=', 1)[0]!.trim()));
      // Only the editor's own pages may frame it (webviews): browsers that send no fetch
      // metadata (plain http on a real domain) are held back by this instead.
      proxyRes.headers['content-security-policy'] = [proxyRes.headers['content-security-policy'] ?? [], "frame-ancestors 'self'"]
        .flat()
        .filter(Boolean)
        .join(', ');
      proxyRes.headers['x-frame-options'] = 'SAMEORIGIN';
    });
    this.proxy.on('error', (err, _req, res) => {
      this.logger.warn({ err: err.message }, 'editor proxy error');
      if (res && 'writeHead' in res && !res.headersSent) denied(res, 502, 'the editor did not answer');
      else if (res && 'destroy' in res) res.destroy();
    });
  }

  /**
   * The instance (and port) a Host header names: `<id>.<domain>[:port]` is the editor,
   * `<id>-<port>.<domain>[:port]` a port in the instance (an id's last part after `-` is 8
   * characters, a port 1–5 digits, so the two never overlap). Undefined for other hosts, port 0
   * or above 65535, and the editor's own port (it is reached at the editor's origin only).
   */
  targetOfHost(host: string | undefined): HostTarget | undefined {
    const m = this.hostPattern.exec(host ?? '');
    const label = m?.[1]?.toLowerCase();
    if (!label) return undefined;
    const p = /^(.+)-(\d{1,5})$/.exec(label);
    if (p) {
      const port = Number(p[2]);
      // One name per port: `-03000` is no other name for 3000 (its pages' Origin would not match).
      if (!INSTANCE_ID.test(p[1]!) || String(port) !== p[2] || port < 1 || port > 65535 || port === INSTANCE_EDITOR_PORT) return undefined;
      return { id: p[1]!, port };
    }
    return INSTANCE_ID.test(label) ? { id: label } : undefined;
  }

  /** `http://<id>.localhost:8080`, or `http://<id>-3000.localhost:8080` for a port. */
  originOf(target: HostTarget): string {
    return target.port === undefined ? editorOrigin(this.origins, target.id) : portOrigin(this.origins, target.id, target.port);
  }

  /** The instance when `token` is its access token and it is not being deleted. */
  async authorised(id: string, token: string | undefined): Promise<InstanceRecord | undefined> {
    if (!token) return undefined;
    const record = await this.store.get(id);
    if (!record) return undefined;
    const legacy = (record as { accessToken?: string }).accessToken;
    const ok = legacy !== undefined ? sameSecret(token, legacy) : sameSecret(hashToken(token), record.accessTokenHash);
    // A deleted instance's token opens nothing any more.
    if (!ok || record.status === 'Deleting' || record.status === 'Deleted') return undefined;
    return record;
  }

  /** The request comes from the origin's own pages (or from no page at all: no Origin header). */
  private sameOrigin(req: IncomingMessage, target: HostTarget): boolean {
    const origin = req.headers.origin;
    return origin === undefined || origin === this.originOf(target);
  }

  /**
   * Where the request goes: the editor as asked, or a port through the editor's own proxy
   * (code-server's `/proxy/<port>/…`, which passes the rest of the path on to `localhost:<port>`
   * in the instance, WebSockets too): no port of the instance is published or opened to the
   * cluster, and a port opened later is reachable as soon as something listens on it.
   */
  private upstreamPath(req: IncomingMessage, target: HostTarget): void {
    if (target.port === undefined) return;
    (req as PortRequest)[PORT_OF_REQUEST] = target.port;
    req.url = `/proxy/${target.port}${req.url?.startsWith('/') ? '' : '/'}${req.url ?? ''}`;
  }

  /** The cookies the editor sees: the user's own (its settings, its extensions'), never codebay's, plus the editor's secret. */
  private upstreamCookies(req: IncomingMessage, id: string): void {
    const kept = cookiePairs(req.headers.cookie)
      .filter(([name]) => !isCodebayCookie(name))
      .map(([name, value]) => `${name}=${value}`);
    kept.push(`${CODE_SERVER_COOKIE}=${instanceSecrets.editor(this.key, id)}`);
    req.headers.cookie = kept.join('; ');
  }

  /** Every value the request carries under codebay's cookie name: one planted by someone else must not hide the real one. */
  private tokensOf(req: IncomingMessage): string[] {
    return cookiePairs(req.headers.cookie)
      .filter(([name]) => name === this.cookieName)
      .map(([, value]) => value);
  }

  /** The first of `tokens` that opens instance `id`. */
  private async authorisedByAny(id: string, tokens: string[]): Promise<InstanceRecord | undefined> {
    for (const token of tokens.slice(0, 8)) {
      const record = await this.authorised(id, token);
      if (record) return record;
    }
    return undefined;
  }

  /**
   * Fetch metadata (Sec-Fetch-*, sent by current browsers to https and localhost origins):
   * another site's page may navigate to an editor (a link) but not embed it, script it or
   * load from it — instances under one BASE_DOMAIN share a site, so SameSite cookies alone
   * would let one instance's pages frame another's editor, probe its files or reach its
   * forwarded ports.
   */
  private crossSiteSubresource(req: IncomingMessage): boolean {
    const site = req.headers['sec-fetch-site'];
    if (site !== 'cross-site' && site !== 'same-site') return false;
    return !(req.headers['sec-fetch-mode'] === 'navigate' && req.headers['sec-fetch-dest'] === 'document');
  }

  private sessionCookie(token: string): string {
    // No Domain attribute: host-only, so `a.localhost`'s cookie never goes to `b.localhost`.
    return serializeCookie(this.cookieName, token, { path: '/', httpOnly: true, sameSite: 'lax', secure: this.origins.protocol === 'https:' });
  }

  /**
   * Express middleware, first in the chain: requests for an instance host go to that
   * instance's editor; others (the API origin) pass on — except the editor paths of the
   * API origin (the seed's `/instances/<id>?tkn=…` and `/instances/<id>/…`), which are
   * redirected to the instance's own origin with their query (the token) kept.
   */
  middleware(): RequestHandler {
    return (req, res, next) => {
      const target = this.targetOfHost(req.headers.host);
      if (target === undefined) return this.redirectFromApiOrigin(req, res, next);
      const { id } = target;
      if (this.crossSiteSubresource(req)) return denied(res, 403, 'another site may link to this editor, not load from it');
      void (async () => {
        const queryToken = typeof req.query.tkn === 'string' ? req.query.tkn : undefined;
        const record = queryToken !== undefined ? await this.authorised(id, queryToken) : await this.authorisedByAny(id, this.tokensOf(req));
        if (!record)
          return denied(
            res,
            401,
            target.port === undefined
              ? 'a valid access token for this instance is required: open the instance’s url from the API'
              : `a valid access token for this instance is required: open port ${target.port}'s url from the API (ports[].url)`,
          );
        if (queryToken) {
          // Swap the token in the URL for a cookie, so it leaves the address bar and history.
          res.setHeader('set-cookie', this.sessionCookie(queryToken));
          res.redirect(302, stripTokenParam(req.originalUrl));
          return;
        }
        if (target.port === undefined) {
          // The editor's port proxy is not served on the editor's origin: the port's own origin serves it.
          const viaEditor = editorPortPath(req.originalUrl);
          if (viaEditor) {
            const valid = viaEditor.port >= 1 && viaEditor.port <= 65535 && viaEditor.port !== INSTANCE_EDITOR_PORT;
            if (!valid || (req.method !== 'GET' && req.method !== 'HEAD'))
              return denied(res, 404, 'ports are served at their own origin, <id>-<port>.<domain>');
            res.redirect(302, `${this.originOf({ id, port: viaEditor.port })}${viaEditor.rest}`);
            return;
          }
        }
        if (!SAFE_METHODS.has(req.method) && !this.sameOrigin(req, target)) return denied(res, 403, 'cross-origin request refused');
        if (record.status !== 'Running' || !record.runtime) {
          res.setHeader('refresh', '3');
          return denied(res, 503, `instance ${record.id} is ${record.status}${record.failure ? `: ${record.failure.reason}` : ''}`);
        }
        this.upstreamCookies(req, id);
        this.upstreamPath(req, target);
        this.proxy.web(req, res, { target: record.runtime.endpoint });
      })().catch(next);
    };
  }

  private redirectFromApiOrigin(req: Parameters<RequestHandler>[0], res: Parameters<RequestHandler>[1], next: Parameters<RequestHandler>[2]): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const q = req.originalUrl.indexOf('?');
    const query = q === -1 ? '' : req.originalUrl.slice(q);
    // The seed's URL form: `/instances/<id>?tkn=…` (no slash, no bearer: a browser, not an API call).
    const seed = /^\/instances\/([a-z0-9-]+)$/.exec(req.path);
    if (seed && typeof req.query.tkn === 'string' && !req.headers.authorization) {
      res.redirect(302, `${this.originOf({ id: seed[1]! })}/${query}`);
      return;
    }
    const target = matchEditorPath(req.originalUrl);
    if (target) {
      res.redirect(302, `${this.originOf({ id: target.id })}${target.upstreamUrl}`);
      return;
    }
    next();
  }

  /** WebSocket upgrades for the editor (the workbench's remote connection, terminals). */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.upgraded.add(socket);
      socket.once('close', () => this.upgraded.delete(socket));
      const refuse = (status: number, text: string) => {
        socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
      };
      socket.on('error', () => socket.destroy());
      // Shutting down: the workbench reconnects to another gateway.
      if (this.closed) return refuse(503, 'Service Unavailable');
      const target = this.targetOfHost(req.headers.host);
      if (target === undefined) return refuse(404, 'Not Found');
      const { id } = target;
      // Browsers always send Origin on WebSockets: only the origin's own pages may open one.
      if (!this.sameOrigin(req, target)) return refuse(403, 'Forbidden');
      // The editor's port proxy is not served on the editor's origin (see editorPortPath).
      if (target.port === undefined && editorPortPath(req.url ?? '/')) return refuse(404, 'Not Found');
      this.authorisedByAny(id, this.tokensOf(req))
        .then((record) => {
          if (!record) return refuse(401, 'Unauthorized');
          if (record.status !== 'Running' || !record.runtime) return refuse(503, 'Service Unavailable');
          this.upstreamCookies(req, id);
          this.upstreamPath(req, target);
          this.proxy.ws(req, socket, head, { target: record.runtime.endpoint });
        })
        .catch(() => refuse(500, 'Internal Server Error'));
    });
  }

  /** Ends every proxied WebSocket (the workbench reconnects, to another gateway when this one stops). */
  close(): void {
    this.closed = true;
    for (const socket of this.upgraded) socket.destroy();
    this.proxy.close();
  }
}
