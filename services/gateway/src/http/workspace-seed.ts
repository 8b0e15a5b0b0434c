import { errorBody } from '@codebay/contracts';
import { instanceSecrets, sameSecret, type ArtifactStore, type InstanceStore, type PlatformKey } from '@codebay/platform';
import type { RequestHandler } from 'express';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';

/**
 * `GET /seed/instances/<id>`: the workspace upload of a workspace instance, for the
 * instance itself to unpack into its `/workspace` on first start (Kubernetes: the
 * launcher fetches it; the Docker runtime copies it in directly). Authorised by the
 * instance's own seeding token (`Authorization: Bearer`; derived from the platform key,
 * handed to the pod in its Secret), never an API or access token; anything else — no
 * token, another instance's, an unknown or deleted instance — is the same 401.
 */
export function workspaceSeedHandler(store: InstanceStore, key: PlatformKey, artifacts: ArtifactStore): RequestHandler {
  const authorise = async (id: string, token: string | undefined) => {
    if (!token || !sameSecret(token, instanceSecrets.seed(key, id))) return undefined;
    const record = await store.get(id);
    return record && record.status !== 'Deleting' && record.status !== 'Deleted' ? record : undefined;
  };
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
