import { InputError, createFieldsSchema, createSimpleSchema, toInstanceResponse, type InstanceRecord, type QueuePlace } from '@codebay/contracts';
import type { BuildLogStream, LogFollowers } from '@codebay/platform';
import express, { Router, type Request, type Response } from 'express';
import type { GatewayConfig } from '../config.ts';
import { callerOf } from '../identity.ts';
import type { EditorVersions } from '../editor-versions.ts';
import { RESOURCE_FIELDS } from '../host-requirements.ts';
import type { Created, InstanceService } from '../instances.ts';
import { followBuildLogs } from './build-logs.ts';
import { singleFileUpload, type HashedUpload } from './uploads.ts';

export interface ApiDeps {
  config: GatewayConfig;
  /** Where uploads stream to before the service adopts them (the artifact store's incoming folder). */
  uploadDir: string;
  instances: InstanceService;
  editorVersions: EditorVersions;
  logs: BuildLogStream;
  /** The instances' own logs (BuildLogStream of kind `instance`). */
  instanceLogs: BuildLogStream;
  followers: LogFollowers;
}

/** `?follow=1`, `?follow=true` or `Accept: text/event-stream`: the log as Server-Sent Events. */
function wantsFollow(req: Request): boolean {
  return req.query.follow === '1' || req.query.follow === 'true' || (req.get('accept') ?? '').includes('text/event-stream');
}

/** A log read whole: `{instance_id, status, logs (the text), lines [{id, text}], finished {outcome, reason} | null}`. */
async function logBody(record: InstanceRecord, stream: BuildLogStream) {
  const entries = await stream.read(record.id);
  const lines = entries.flatMap((e) => (e.kind === 'line' ? [e.line] : []));
  const end = entries.find((e) => e.kind === 'end');
  return {
    instance_id: record.id,
    status: record.status,
    logs: lines.map((l) => l.text).join('\n'),
    lines,
    finished: end?.kind === 'end' ? { outcome: end.end.outcome, reason: end.end.reason ?? null } : null,
  };
}

/** Multipart form fields arrive as strings; empty ones count as absent. */
function formFields(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (body && typeof body === 'object') {
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string' && v !== '') out[k] = v;
  }
  return out;
}

/** The request's upload (hashed while it streamed to disk), or 400 naming the field. */
function uploadOf(req: Request, field: string): { path: string; sha256: string } {
  if (!req.file) throw new InputError('missing_file', `multipart file field "${field}" is required`);
  return { path: req.file.path, sha256: (req.file as HashedUpload).sha256 };
}

function idParam(req: Request): string {
  const id = req.params.id;
  if (typeof id !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(id) || id.length > 63) {
    throw new InputError('invalid_instance_id', 'instance id must be lower-case letters, digits and inner hyphens');
  }
  return id;
}

/** The REST API (mounted at `/` and at `/api`). Each route parses, calls one service method and maps the result. */
export function apiRouter(deps: ApiDeps): Router {
  const { config, uploadDir, instances, editorVersions, logs, instanceLogs, followers } = deps;
  const router = Router();
  const respond = (r: InstanceRecord, queue: QueuePlace | null = null) =>
    toInstanceResponse(r, config.publicUrl, config.origins, instances.accessToken(r), queue);
  /** With its place in the build queue while it is Queued (one Redis round trip per queued instance). */
  const respondWithQueue = async (r: InstanceRecord) => respond(r, await instances.queuePlace(r));
  const created = async (res: Response, { record, replayed }: Created) => {
    if (replayed) res.setHeader('idempotent-replayed', 'true');
    res.status(202).json(await respondWithQueue(record));
  };

  router.post('/instances/simple', express.json({ limit: '16kb' }), async (req, res) => {
    const fields = createSimpleSchema.parse(req.body ?? {});
    await created(res, await instances.create(callerOf(res.locals), { source: 'simple', fields }, req.get('idempotency-key')));
  });

  // The two upload routes: a devcontainer.json, or a workspace folder as a tar.gz. (A refused
  // request's upload is removed by the service, or by the error handler when parsing fails.)
  const uploads = [
    { source: 'devcontainer', field: 'devcontainer_json', maxBytes: config.MAX_DEVCONTAINER_BYTES },
    { source: 'workspace', field: 'workspace', maxBytes: config.MAX_WORKSPACE_BYTES },
  ] as const;
  for (const { source, field, maxBytes } of uploads) {
    router.post(`/instances/${source}`, singleFileUpload(uploadDir, field, maxBytes), async (req, res) => {
      const raw = formFields(req.body);
      const fields = createFieldsSchema.parse(raw);
      const given = new Set(RESOURCE_FIELDS.filter((f) => raw[f] !== undefined));
      await created(res, await instances.create(callerOf(res.locals), { source, fields, given, upload: uploadOf(req, field) }, req.get('idempotency-key')));
    });
  }

  router.get('/instances', async (req, res) => {
    const caller = callerOf(res.locals);
    const filter = typeof req.query.user_id === 'string' ? req.query.user_id : undefined;
    // A user sees only their own; an admin sees all, or one user's with ?user_id=.
    const records = await instances.list(caller.role === 'admin' ? filter : caller.userId);
    res.json({ instances: await Promise.all(records.map(respondWithQueue)) });
  });

  router.get('/instances/:id', async (req, res) => {
    res.json(await respondWithQueue(await instances.get(idParam(req), callerOf(res.locals))));
  });

  // The instance's own log: launcher, lifecycle commands, editor (mirrored by the provisioner from its container).
  router.get('/instances/:id/logs', async (req, res) => {
    const record = await instances.get(idParam(req), callerOf(res.locals));
    if (wantsFollow(req)) return followBuildLogs(req, res, record, followers, 'instance');
    res.json(await logBody(record, instanceLogs));
  });

  router.get('/instances/:id/build-status', async (req, res) => {
    const record = await instances.get(idParam(req), callerOf(res.locals));
    res.json({ instance_id: record.id, status: record.status, error: record.failure?.reason ?? null, phase: record.failure?.phase ?? null });
  });

  router.get('/instances/:id/build-logs', async (req, res) => {
    const record = await instances.get(idParam(req), callerOf(res.locals));
    if (wantsFollow(req)) return followBuildLogs(req, res, record, followers);
    res.json(await logBody(record, logs));
  });

  // What `vscode_version` may name: the editor bundles this deployment has, the default first.
  router.get('/editor-versions', async (_req, res) => {
    res.json(await editorVersions.list());
  });

  router.delete('/instances/:id', async (req, res) => {
    const record = await instances.delete(idParam(req), callerOf(res.locals));
    res.status(202).json(respond(record));
  });

  return router;
}
