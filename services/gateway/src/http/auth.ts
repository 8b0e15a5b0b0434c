import { UnauthorizedError } from '@codebay/contracts';
import type { RequestHandler } from 'express';
import type { TokenDirectory } from '../identity.ts';

/** Every API route but health needs `Authorization: Bearer <token>`; the caller lands in `res.locals.caller`. */
export function requireApiToken(tokens: TokenDirectory): RequestHandler {
  return (req, res, next) => {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const caller = m ? tokens.authenticate(m[1]!) : undefined;
    if (!caller) return next(new UnauthorizedError());
    res.locals.caller = caller;
    next();
  };
}
