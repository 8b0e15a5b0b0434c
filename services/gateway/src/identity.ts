import { ForbiddenError, InputError, NotFoundError, UnauthorizedError, userIdSchema, type InstanceRecord } from '@codebay/contracts';
import type { Logger } from '@codebay/platform';
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { hashToken, sameSecret } from './tokens.ts';

export { hashToken };

/** Who is calling: an admin (sees everything) or one user (sees only their own instances). */
export type Caller = { role: 'admin'; userId: null } | { role: 'user'; userId: string };

/**
 * The tokens file (`CODEBAY_TOKENS_FILE`, e.g. a mounted Kubernetes Secret): API tokens
 * stored only as sha256 hashes, each mapped to a user and a role.
 */
export const tokensFileSchema = z.object({
  tokens: z.array(
    z.object({
      sha256: z.string().regex(/^[a-f0-9]{64}$/, 'sha256 must be 64 hex digits'),
      user: userIdSchema,
      role: z.enum(['user', 'admin']).default('user'),
    }),
  ),
});
export type TokensFile = z.infer<typeof tokensFileSchema>;

/** Maps bearer tokens to callers. Re-reads the tokens file when it changes (checked at most every few seconds). */
export class TokenDirectory {
  private byHash = new Map<string, Caller>();
  private mtimeMs = -1;
  private checkedAt = 0;

  constructor(
    private readonly adminToken: string,
    private readonly file: string | undefined,
    private readonly logger: Logger,
    private readonly recheckMs = 3_000,
  ) {
    this.reload(true);
  }

  private reload(initial = false): void {
    if (!this.file) return;
    let mtimeMs: number;
    try {
      mtimeMs = statSync(this.file).mtimeMs;
    } catch (err) {
      if (initial) throw new Error(`CODEBAY_TOKENS_FILE ${this.file}: ${(err as Error).message}`);
      return;
    }
    if (mtimeMs === this.mtimeMs) return;
    try {
      const parsed = tokensFileSchema.parse(JSON.parse(readFileSync(this.file, 'utf8')));
      this.byHash = new Map(parsed.tokens.map((t) => [t.sha256, t.role === 'admin' ? { role: 'admin', userId: null } : { role: 'user', userId: t.user }]));
      this.mtimeMs = mtimeMs;
      this.logger.info({ file: this.file, tokens: this.byHash.size }, 'API tokens loaded');
    } catch (err) {
      // A broken edit keeps the last good set; at start it is fatal.
      if (initial) throw new Error(`CODEBAY_TOKENS_FILE ${this.file}: ${(err as Error).message}`);
      this.logger.error({ file: this.file, err: (err as Error).message }, 'tokens file unreadable; keeping the previous tokens');
    }
  }

  authenticate(token: string): Caller | undefined {
    if (sameSecret(token, this.adminToken)) return { role: 'admin', userId: null };
    const now = Date.now();
    if (now - this.checkedAt > this.recheckMs) {
      this.checkedAt = now;
      this.reload();
    }
    return this.byHash.get(hashToken(token));
  }
}

/** The user a create request is for: a user's own (given or implied); an admin must name one. */
export function ownerFor(caller: Caller, requested: string | undefined): string {
  if (caller.role === 'admin') {
    if (!requested) throw new InputError('invalid_request', 'user_id: user_id is required');
    return requested;
  }
  if (requested !== undefined && requested !== caller.userId) {
    throw new ForbiddenError('forbidden_user', `this token belongs to user ${caller.userId}; user_id must be that user or omitted`);
  }
  return caller.userId;
}

/** Someone else's instance is "not found", so ids do not leak. */
export function mustSee(caller: Caller, record: InstanceRecord): InstanceRecord {
  if (caller.role === 'admin' || record.userId === caller.userId) return record;
  throw new NotFoundError(`instance ${record.id}`);
}

export function callerOf(locals: Record<string, unknown>): Caller {
  const caller = locals.caller as Caller | undefined;
  if (!caller) throw new UnauthorizedError();
  return caller;
}
