import type { InstanceRecord } from '@codebay/contracts';
import { errorBody } from '@codebay/contracts';
import type { ArtifactStore } from '@codebay/platform';
import type { RequestHandler } from 'express';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

/**
 * `GET /seed/instances/<id>`: the workspace upload of a workspace instance, for the
 * instance itself to unpack into its `/workspace` on first start (Kubernetes: the
 * launcher fetches it; the Docker runtime copies it in directly). Authorised by the
 * instance's own token (`Authorization: Bearer`), never an API token; anything else
 * — no token, another instance's, an unknown id — is the same 401.
 */
export function workspaceSeedHandler(
  authorise: (id: string, token: string | undefined) => Promise<InstanceRecord | undefined>,
  artifacts: ArtifactStore,
): RequestHandler {
  return (req, res, next) => {
    const id = String(req.params.id ?? '');
    const header = req.get('authorization') ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    void (async () => {
      const record = await authorise(id, token);
      if (!record) return res.status(401).json(errorBody('unauthorized', 'the instance’s own token is required'));
      if (record.source !== 'workspace' || !record.artifact) return res.status(404).json(errorBody('not_found', `instance ${id} has no workspace upload`));
      const path = artifacts.path(record.artifact);
      const info = await stat(path).catch(() => undefined);
      if (!info) return res.status(410).json(errorBody('gone', `the workspace upload of instance ${id} is no longer stored`));
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(info.size),
        'cache-control': 'no-store',
        etag: `"sha256:${record.artifact}"`,
      });
      await pipeline(createReadStream(path), res);
    })().catch(next);
  };
}
