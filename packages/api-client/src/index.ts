import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { FormDataEncoder } from 'form-data-encoder';
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { Agent, fetch, FormData, type Dispatcher, type RequestInit, type Response } from 'undici';
import { ApiError, NetworkError } from './errors.ts';
import type { components, paths } from './schema.ts';

export { ApiError, NetworkError } from './errors.ts';

export type { components, paths } from './schema.ts';
export type Instance = components['schemas']['Instance'];
export type InstanceStatus = Instance['status'];
export type BuildLogs = components['schemas']['BuildLogs'];
export type BuildStatus = components['schemas']['BuildStatus'];
/** The fields every create takes (the seed's), straight from the document. */
export type CreateFields = Omit<paths['/instances/devcontainer']['post']['requestBody']['content']['multipart/form-data'], 'devcontainer_json'>;
export type CreateSimpleFields = paths['/instances/simple']['post']['requestBody']['content']['application/json'];

type Json<P extends keyof paths, M extends 'get' | 'post' | 'delete', S extends number> = paths[P][M] extends {
  responses: { [K in S]: { content: { 'application/json': infer T } } };
}
  ? T
  : never;

export interface ClientOptions {
  /** codebay's address (`https://vscode.local`); a trailing `/api` (the seed's `--api-url`) is fine too. */
  url: string;
  token?: string;
  /** Accept any TLS certificate (a self-signed one), like `curl -k`. */
  insecure?: boolean;
  userAgent?: string;
  /**
   * The undici dispatcher every request goes through (a proxy, a CA of your own, a fixed
   * address for a name without DNS); `insecure` is then the dispatcher's business.
   */
  dispatcher?: Dispatcher;
}

export interface LogLine {
  id: string;
  text: string;
}
export interface LogEnd {
  outcome: string;
  reason: string | null;
}

export type UploadProgress = (sent: number, total: number) => void;

/** `https://host/api/` for a codebay address, with or without `/api`. */
function apiBase(url: string): string {
  const base = url
    .trim()
    .replace(/\/+$/, '')
    .replace(/\/api$/, '');
  return `${base}/api`;
}

/**
 * The typed client of codebay's REST API: every path, body and response type comes from
 * `schema.ts`, generated from the gateway's OpenAPI document.
 */
export class CodebayClient {
  readonly base: string;
  private readonly dispatcher: Dispatcher;

  constructor(private readonly options: ClientOptions) {
    this.base = apiBase(options.url);
    this.dispatcher = options.dispatcher ?? new Agent({ connect: { rejectUnauthorized: !options.insecure } });
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(this.options.token ? { authorization: `Bearer ${this.options.token}` } : {}),
      'user-agent': this.options.userAgent ?? 'codebay-cli',
      ...extra,
    };
  }

  private async send(path: string, init: RequestInit = {}): Promise<Response> {
    try {
      return await fetch(`${this.base}${path}`, {
        ...init,
        dispatcher: this.dispatcher,
        headers: { ...this.headers(), ...(init.headers as Record<string, string>) },
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new NetworkError(`cannot reach ${this.base}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
    }
  }

  private async json<T>(res: Response): Promise<T> {
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      const e = (body as components['schemas']['Error'] | undefined)?.error;
      throw new ApiError(res.status, e?.code ?? `http_${res.status}`, e?.message ?? (text.slice(0, 200) || res.statusText), e?.details);
    }
    return body as T;
  }

  async createSimple(fields: CreateSimpleFields, idempotencyKey?: string): Promise<Json<'/instances/simple', 'post', 202>> {
    const res = await this.send('/instances/simple', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(idempotencyKey ? { 'idempotency-key': idempotencyKey } : {}) },
      body: JSON.stringify(fields),
    });
    return this.json(res);
  }

  /** Uploads a devcontainer.json file (streamed from disk). */
  async createDevcontainer(fields: CreateFields, file: string, onProgress?: UploadProgress): Promise<Json<'/instances/devcontainer', 'post', 202>> {
    return this.upload('/instances/devcontainer', fields, 'devcontainer_json', file, 'application/json', onProgress);
  }

  /** Uploads a workspace tar.gz (streamed from disk). */
  async createWorkspace(fields: CreateFields, tarball: string, onProgress?: UploadProgress): Promise<Json<'/instances/workspace', 'post', 202>> {
    return this.upload('/instances/workspace', fields, 'workspace', tarball, 'application/gzip', onProgress);
  }

  private async upload(
    path: '/instances/devcontainer' | '/instances/workspace',
    fields: CreateFields,
    field: string,
    file: string,
    type: string,
    onProgress?: UploadProgress,
  ) {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null && v !== '') form.set(k, String(v));
    form.set(field, await openAsBlob(file, { type }), basename(file));
    const encoder = new FormDataEncoder(form as unknown as ConstructorParameters<typeof FormDataEncoder>[0]);
    const total = encoder.contentLength === undefined ? NaN : Number(encoder.contentLength);
    let sent = 0;
    const body = Readable.from(
      (async function* () {
        for await (const chunk of encoder.encode()) {
          sent += chunk.byteLength;
          onProgress?.(sent, total);
          yield chunk;
        }
      })(),
    );
    const res = await this.send(path, { method: 'POST', headers: { ...encoder.headers }, body, duplex: 'half' });
    return this.json<Json<typeof path, 'post', 202>>(res);
  }

  async get(id: string): Promise<Json<'/instances/{id}', 'get', 200>> {
    return this.json(await this.send(`/instances/${encodeURIComponent(id)}`));
  }

  async list(userId?: string): Promise<Json<'/instances', 'get', 200>> {
    return this.json(await this.send(`/instances${userId ? `?user_id=${encodeURIComponent(userId)}` : ''}`));
  }

  async delete(id: string): Promise<Json<'/instances/{id}', 'delete', 202>> {
    return this.json(await this.send(`/instances/${encodeURIComponent(id)}`, { method: 'DELETE' }));
  }

  async buildStatus(id: string): Promise<Json<'/instances/{id}/build-status', 'get', 200>> {
    return this.json(await this.send(`/instances/${encodeURIComponent(id)}/build-status`));
  }

  async buildLogs(id: string): Promise<Json<'/instances/{id}/build-logs', 'get', 200>> {
    return this.json(await this.send(`/instances/${encodeURIComponent(id)}/build-logs`));
  }

  /** The instance's own log so far: launcher, lifecycle commands, editor. */
  async instanceLogs(id: string): Promise<Json<'/instances/{id}/logs', 'get', 200>> {
    return this.json(await this.send(`/instances/${encodeURIComponent(id)}/logs`));
  }

  /**
   * Follows a build log (or, with `opts.log: 'instance'`, the instance's own log) (Server-Sent Events) to its end event, reconnecting after a dropped
   * connection or a 502/503/504 or a proxy's own 404 (an ingress with no gateway to send to, during
   * a rollout) with
   * `Last-Event-ID`, so no line is lost or repeated. Resolves with the end.
   */
  async followLogs(
    id: string,
    handlers: { onLine: (line: LogLine) => void; onReconnect?: (after: string | undefined, err: Error) => void },
    opts: { after?: string; signal?: AbortSignal; maxReconnects?: number; log?: 'build' | 'instance' } = {},
  ): Promise<LogEnd> {
    const route = opts.log === 'instance' ? 'logs' : 'build-logs';
    let lastId = opts.after;
    let retryMs = 2_000;
    let failures = 0;
    for (;;) {
      let end: LogEnd | undefined;
      try {
        const res = await this.send(`/instances/${encodeURIComponent(id)}/${route}?follow=1`, {
          headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
          signal: opts.signal,
        });
        // A proxy in front with no server to send to (a gateway rollout, a pod deleted): try again.
        // Ingress controllers say so with 502/503/504, or with a 404 of their own when the route
        // went away with its last endpoint (Traefik); codebay's own refusals are JSON.
        const fromProxy = res.status === 404 && !(res.headers.get('content-type') ?? '').includes('application/json');
        if (res.status === 502 || res.status === 503 || res.status === 504 || fromProxy) {
          await res.body?.cancel();
          throw new NetworkError(`the server was unavailable (${res.status}${fromProxy ? ' from a proxy' : ''})`);
        }
        if (!res.ok) await this.json(res);
        const parser = createParser({
          onEvent: (e: EventSourceMessage) => {
            if (e.event === 'line') {
              if (e.id) lastId = e.id;
              handlers.onLine({ id: e.id ?? '', text: (JSON.parse(e.data) as { text: string }).text });
            } else if (e.event === 'end') {
              end = JSON.parse(e.data) as LogEnd;
            }
          },
          onRetry: (ms) => (retryMs = ms),
        });
        const decoder = new TextDecoder();
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          parser.feed(decoder.decode(chunk, { stream: true }));
          if (end) return end;
          failures = 0;
        }
        if (end) return end;
        throw new NetworkError('the log stream ended before its end event');
      } catch (err) {
        if (err instanceof ApiError || opts.signal?.aborted) throw err;
        if (++failures > (opts.maxReconnects ?? 30)) throw err;
        handlers.onReconnect?.(lastId, err as Error);
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    }
  }
}
