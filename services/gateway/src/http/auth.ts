import { UnauthorizedError } from '@codebay/contracts';
import type { RequestHandler } from 'express';
import { sameSecret } from '../tokens.ts';

/** Every API route but health and metrics needs `Authorization: Bearer <token>`. */
export function requireApiToken(adminToken: string): RequestHandler {
  return (req, _res, next) => {
    const header = req.headers.authorization ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m || !sameSecret(m[1]!, adminToken)) return next(new UnauthorizedError());
    next();
  };
}
