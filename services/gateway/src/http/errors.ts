import { CodebayError, errorBody } from '@codebay/contracts';
import type { Logger } from '@codebay/platform';
import type { ErrorRequestHandler } from 'express';
import multer from 'multer';
import { ZodError } from 'zod';
import { discardUpload } from './uploads.ts';

const MULTER_413 = new Set(['LIMIT_FILE_SIZE', 'LIMIT_FIELD_VALUE', 'LIMIT_PART_COUNT', 'LIMIT_FILE_COUNT', 'LIMIT_FIELD_COUNT']);

/** Turns a ZodError into one readable sentence plus per-field details. */
function describeZod(err: ZodError): { message: string; details: Array<{ field: string; message: string }> } {
  const details = err.issues.map((i) => ({ field: i.path.join('.') || '(body)', message: i.message }));
  return { message: details.map((d) => `${d.field}: ${d.message}`).join('; '), details };
}

/**
 * One error model for every route: `{"error":{"code","message","details?"}}`; no stack traces
 * to clients. A refused request's upload is removed before the answer: bad input leaves nothing.
 */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  const answer = describeError(logger);
  return (err, req, res, next) => {
    void discardUpload(req.file)
      .catch((e: Error) => logger.warn({ err: e.message, path: req.file?.path }, 'could not remove a refused upload'))
      .finally(() => {
        try {
          answer(err, req, res, next);
        } catch (e) {
          // Never an unhandled rejection: express's own last-resort handler answers.
          next(e);
        }
      });
  };
}

function describeError(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    if (res.headersSent) {
      res.end();
      return;
    }
    if (err instanceof CodebayError) {
      res.status(err.status).json(errorBody(err.code, err.message, err.details));
      return;
    }
    if (err instanceof ZodError) {
      const { message, details } = describeZod(err);
      res.status(400).json(errorBody('invalid_request', message, details));
      return;
    }
    if (err instanceof multer.MulterError) {
      const status = MULTER_413.has(err.code) ? 413 : 400;
      const field = err.field ? ` (field ${err.field})` : '';
      res.status(status).json(errorBody(status === 413 ? 'payload_too_large' : 'invalid_upload', `${err.message}${field}`));
      return;
    }
    const e = err as { type?: string; status?: number; message?: string; code?: string };
    if (e?.type === 'request.aborted' || e?.code === 'ECONNABORTED' || e?.message === 'Request aborted') {
      // The client went away mid-request: nothing to answer, nothing to alarm anyone about.
      logger.info({ method: req.method, url: req.originalUrl }, 'client aborted the request');
      res.status(400).json(errorBody('request_aborted', 'the request was aborted by the client'));
      return;
    }
    if (e?.type === 'entity.parse.failed') {
      res.status(400).json(errorBody('invalid_json', `request body is not valid JSON: ${e.message ?? ''}`.trim()));
      return;
    }
    if (e?.type === 'entity.too.large') {
      res.status(413).json(errorBody('payload_too_large', 'request body is too large'));
      return;
    }
    if (typeof e?.status === 'number' && e.status >= 400 && e.status < 500) {
      res.status(e.status).json(errorBody('bad_request', e.message ?? 'bad request'));
      return;
    }
    logger.error({ err, method: req.method, url: req.originalUrl }, 'unhandled error');
    res.status(500).json(errorBody('internal', 'internal error'));
  };
}
