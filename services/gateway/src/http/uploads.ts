import { InputError } from '@codebay/contracts';
import type { Request, RequestHandler } from 'express';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import multer from 'multer';

/** An upload on disk with the sha256 of its bytes, computed while it was written. */
export type HashedUpload = Express.Multer.File & { sha256: string };

/**
 * multer storage that writes each file to `dir` and hashes it on the way, so the
 * content-addressed store never reads it back to name it.
 */
function hashingDiskStorage(dir: string): multer.StorageEngine {
  return {
    _handleFile(_req: Request, file: Express.Multer.File, cb: (error?: unknown, info?: Partial<HashedUpload>) => void) {
      const path = join(dir, randomBytes(16).toString('hex'));
      const hash = createHash('sha256');
      let size = 0;
      const tap = new Transform({
        transform(chunk: Buffer, _enc, next) {
          hash.update(chunk);
          size += chunk.length;
          next(null, chunk);
        },
      });
      pipeline(file.stream, tap, createWriteStream(path, { flags: 'wx', mode: 0o640 })).then(
        () => cb(null, { path, size, sha256: hash.digest('hex') }),
        (err: unknown) => {
          void rm(path, { force: true }).finally(() => cb(err));
        },
      );
    },
    _removeFile(_req: Request, file: Express.Multer.File, cb: (error: Error | null) => void) {
      rm(file.path, { force: true }).then(
        () => cb(null),
        (err: Error) => cb(err),
      );
    },
  };
}

/** busboy's words for a malformed multipart body (plain Errors, no code): the client's fault, not ours. */
const MALFORMED_MULTIPART = /^(Multipart: |Malformed |Unexpected end of |Missing Content-Type|Unsupported content type)/;

function uploadError(err: unknown): unknown {
  if (err instanceof Error && MALFORMED_MULTIPART.test(err.message)) return new InputError('invalid_upload', `malformed multipart body: ${err.message}`);
  return err;
}

/**
 * Multipart parsing with hard limits: exactly one file in the named field,
 * streamed to disk (never buffered whole), a few small text fields.
 */
export function singleFileUpload(incomingDir: string, field: string, maxBytes: number): RequestHandler {
  const upload = multer({
    storage: hashingDiskStorage(incomingDir),
    limits: { fileSize: maxBytes, files: 1, fields: 20, fieldSize: 4096, parts: 25, headerPairs: 200 },
  });
  const handler = upload.single(field);
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) {
      return next(new InputError('invalid_request', `expected multipart/form-data with a "${field}" file field`));
    }
    handler(req, res, (err?: unknown) => {
      // On a failed upload req.file can be multer's placeholder (no path yet): remove only what was
      // written, never let the removal reject unhandled (that would end the process), and answer after it.
      const path = err ? req.file?.path : undefined;
      if (!path) return next(uploadError(err));
      rm(path, { force: true })
        .catch(() => undefined)
        .finally(() => next(uploadError(err)));
    });
  };
}

/** Removes the upload of a request that failed validation: bad input leaves nothing behind. */
export async function discardUpload(file: Express.Multer.File | undefined): Promise<void> {
  if (file?.path) await rm(file.path, { force: true });
}
