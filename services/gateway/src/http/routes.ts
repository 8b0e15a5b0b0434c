import {
  InputError,
  UnprocessableError,
  createFieldsSchema,
  createSimpleSchema,
  toInstanceResponse,
  type CreateFields,
  type InstanceRecord,
} from '@codebay/contracts';
import { baseImageOf, imageRefProblem, planBuild, type BuildKey, type DevcontainerConfig } from '@codebay/devcontainer';
import { inspectWorkspaceArchive, type ArtifactStore, type BuildLogStream, type LogFollowers } from '@codebay/platform';
import express, { Router, type Request, type Response } from 'express';
import { readFile } from 'node:fs/promises';
import type { GatewayConfig } from '../config.ts';
import { callerOf, ownerFor } from '../identity.ts';
import type { IdempotencyKeys } from '../idempotency.ts';
import type { InstanceService } from '../instances.ts';
import { followBuildLogs } from './build-logs.ts';
import { discardUpload, singleFileUpload, type HashedUpload } from './uploads.ts';

export interface ApiDeps {
  idempotency: IdempotencyKeys;
  config: GatewayConfig;
  instances: InstanceService;
  artifacts: ArtifactStore;
  logs: BuildLogStream;
  followers: LogFollowers;
}

/** Multipart form fields arrive as strings; empty ones count as absent. */
function formFields(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (body && typeof body === 'object') {
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string' && v !== '') out[k] = v;
  }
  return out;
}

function requireFile(req: Request, field: string): Express.Multer.File {
  if (!req.file) throw new InputError('missing_file', `multipart file field "${field}" is required`);
  return req.file;
}

function idParam(req: Request): string {
  const id = req.params.id;
  if (typeof id !== 'string' || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(id) || id.length > 63) {
    throw new InputError('invalid_instance_id', 'instance id must be lower-case letters, digits and inner hyphens');
  }
  return id;
}

/** The REST API (mounted at `/` and at `/api`). */
export function apiRouter(deps: ApiDeps): Router {
  const { config, instances, artifacts, logs, followers, idempotency } = deps;
  const router = Router();
  const respond = (r: InstanceRecord) => toInstanceResponse(r, config.publicUrl, config.origins, instances.accessToken(r));

  /**
   * Runs a create once per Idempotency-Key: a retry gets the first request's instance
   * (header `Idempotent-Replayed: true`) and leaves nothing new behind.
   */
  const createOnce = async (req: Request, res: Response, make: (userId: string) => Promise<InstanceRecord>, requestedUser: string | undefined) => {
    const caller = callerOf(res.locals);
    const userId = ownerFor(caller, requestedUser);
    const claim = await idempotency.claim(caller, req.get('idempotency-key'));
    if (claim?.kind === 'replay') {
      await discardUpload(req.file);
      res.setHeader('idempotent-replayed', 'true');
      res.status(202).json(respond(await instances.get(claim.instanceId, caller)));
      return;
    }
    try {
      const record = await make(userId);
      await claim?.release(record.id);
      res.status(202).json(respond(record));
    } catch (err) {
      await claim?.release();
      throw err;
    }
  };

  /** A validated upload: quotas and limits, then the upload is stored and the instance created. */
  const admit = async (
    fields: CreateFields,
    userId: string,
    source: 'devcontainer' | 'workspace',
    file: Express.Multer.File,
    devcontainer: DevcontainerConfig,
    key: BuildKey,
  ) => {
    const prepared = await instances.prepare(fields, userId, source);
    const artifact = await artifacts.adopt(file.path, (file as HashedUpload).sha256);
    const build = { key: key.key, family: key.family };
    return instances.create({ fields, userId, prepared, source, baseImage: baseImageOf(devcontainer), artifact, build });
  };

  router.post('/instances/simple', express.json({ limit: '16kb' }), async (req, res) => {
    const fields = createSimpleSchema.parse(req.body ?? {});
    const refused = imageRefProblem(fields.base_image, config.buildPolicy);
    if (refused) throw new UnprocessableError('forbidden_by_policy', `base_image: ${refused}`);
    await createOnce(
      req,
      res,
      (userId) => instances.create({ fields, userId, source: 'simple', baseImage: fields.base_image, artifact: null }),
      fields.user_id,
    );
  });

  router.post('/instances/devcontainer', singleFileUpload(artifacts.incomingDir, 'devcontainer_json', config.MAX_DEVCONTAINER_BYTES), async (req, res) => {
    try {
      const fields = createFieldsSchema.parse(formFields(req.body));
      await createOnce(
        req,
        res,
        async (userId) => {
          const file = requireFile(req, 'devcontainer_json');
          const plan = planBuild({ configText: await readFile(file.path, 'utf8') }, config.buildPolicy);
          return admit(fields, userId, 'devcontainer', file, plan.config, plan.key);
        },
        fields.user_id,
      );
    } catch (err) {
      await discardUpload(req.file);
      throw err;
    }
  });

  router.post('/instances/workspace', singleFileUpload(artifacts.incomingDir, 'workspace', config.MAX_WORKSPACE_BYTES), async (req, res) => {
    try {
      const fields = createFieldsSchema.parse(formFields(req.body));
      await createOnce(
        req,
        res,
        async (userId) => {
          const file = requireFile(req, 'workspace');
          const summary = await inspectWorkspaceArchive(file.path, {
            maxEntries: config.MAX_WORKSPACE_ENTRIES,
            maxUnpackedBytes: config.MAX_WORKSPACE_UNPACKED_BYTES,
          });
          const plan = planBuild(summary, config.buildPolicy);
          return admit(fields, userId, 'workspace', file, plan.config, plan.key);
        },
        fields.user_id,
      );
    } catch (err) {
      await discardUpload(req.file);
      throw err;
    }
  });

  router.get('/instances', async (req, res) => {
    const caller = callerOf(res.locals);
    const filter = typeof req.query.user_id === 'string' ? req.query.user_id : undefined;
    // A user sees only their own; an admin sees all, or one user's with ?user_id=.
    const records = await instances.list(caller.role === 'admin' ? filter : caller.userId);
    res.json({ instances: records.map(respond) });
  });

  router.get('/instances/:id', async (req, res) => {
    res.json(respond(await instances.get(idParam(req), callerOf(res.locals))));
  });

  router.get('/instances/:id/build-status', async (req, res) => {
    const record = await instances.get(idParam(req), callerOf(res.locals));
    res.json({ instance_id: record.id, status: record.status, error: record.failure?.reason ?? null, phase: record.failure?.phase ?? null });
  });

  router.get('/instances/:id/build-logs', async (req, res) => {
    const record = await instances.get(idParam(req), callerOf(res.locals));
    const follow = req.query.follow === '1' || req.query.follow === 'true' || (req.get('accept') ?? '').includes('text/event-stream');
    if (follow) return followBuildLogs(req, res, record, followers);
    const entries = await logs.read(record.id);
    const lines = entries.flatMap((e) => (e.kind === 'line' ? [e.line] : []));
    const end = entries.find((e) => e.kind === 'end');
    res.json({
      instance_id: record.id,
      status: record.status,
      logs: lines.map((l) => l.text).join('\n'),
      lines,
      finished: end?.kind === 'end' ? { outcome: end.end.outcome, reason: end.end.reason ?? null } : null,
    });
  });

  router.delete('/instances/:id', async (req, res) => {
    const record = await instances.delete(idParam(req), callerOf(res.locals));
    res.status(202).json(respond(record));
  });

  return router;
}
