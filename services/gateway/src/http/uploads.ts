import { InputError } from '@codebay/contracts';
import type { Request, RequestHandler } from 'express';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import multer from 'multer';

/** An upload on disk with the sha256 of its bytes, computed while it was written. */
export type HashedUpload = Express.Multer.File & { sha256: string };

/** Files of a request still being written: a failed request waits for them to be gone before it answers. */
const inFlight = new WeakMap<Request, Set<{ stream: NodeJS.ReadableStream & { destroy(err?: Error): void }; settled: Promise<void> }>>();

/**
 * multer storage that writes each file to `dir` and hashes it on the way, so the
 * content-addressed store never reads it back to name it. A write that does not finish
 * (limit hit, body cut off, client gone) removes its file before it settles.
 */
function hashingDiskStorage(dir: string): multer.StorageEngine {
  return {
    _handleFile(req: Request, file: Express.Multer.File, cb: (error?: unknown, info?: Partial<HashedUpload>) => void) {
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
      // A client that goes away mid-file leaves busboy's stream open forever: end it here.
      const onClose = () => {
        if (!req.complete) file.stream.destroy(new Error('the client went away mid-upload'));
      };
      req.once('close', onClose);
      const out = createWriteStream(path, { flags: 'wx', mode: 0o640 });
      const settled = pipeline(file.stream, tap, out).then(
        () => cb(null, { path, size, sha256: hash.digest('hex') }),
        async (err: unknown) => {
          // A body that fails at once can fail before the file is even open: the open still
          // creates it, so remove it only once the stream has closed.
          if (!out.closed) await once(out, 'close').catch(() => undefined);
          await rm(path, { force: true }).catch(() => undefined);
          cb(err);
        },
      );
      const entry = { stream: file.stream, settled: settled.finally(() => req.off('close', onClose)) };
      let set = inFlight.get(req);
      if (!set) inFlight.set(req, (set = new Set()));
      set.add(entry);
    },
    _removeFile(_req: Request, file: Express.Multer.File, cb: (error: Error | null) => void) {
      rm(file.path, { force: true }).then(
        () => cb(null),
        (err: Error) => cb(err),
      );
    },
  };
}

/** Ends the request's unfinished file writes and waits (briefly) until their files are removed. */
async function abandonWrites(req: Request): Promise<void> {
  const set = inFlight.get(req);
  if (!set) return;
  for (const w of set) w.stream.destroy(new Error('upload abandoned'));
  await Promise.race([Promise.all([...set].map((w) => w.settled)), new Promise((resolve) => setTimeout(resolve, 5_000))]);
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
      if (!err) return next();
      // A failed upload answers only once nothing of it is left on disk: files still being written
      // are ended and removed, a finished one is removed; a removal never rejects unhandled.
      void abandonWrites(req)
        .then(() => (req.file?.path ? rm(req.file.path, { force: true }) : undefined))
        .catch(() => undefined)
        .finally(() => next(uploadError(err)));
    });
  };
}

/** Removes the upload of a request that failed validation: bad input leaves nothing behind. */
export async function discardUpload(file: Express.Multer.File | undefined): Promise<void> {
  if (file?.path) await rm(file.path, { force: true });
}
