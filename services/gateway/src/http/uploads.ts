import { InputError } from '@codebay/contracts';
import type { RequestHandler } from 'express';
import { rm } from 'node:fs/promises';
import multer from 'multer';

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
    dest: incomingDir,
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
