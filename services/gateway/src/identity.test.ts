import { newInstanceRecord, resourcesSchema } from '@codebay/contracts';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { TokenDirectory, hashToken, mustSee, ownerFor } from './identity.ts';

const logger = pino({ level: 'silent' });
const record = newInstanceRecord({
  id: 'alice-abcdefgh',
  userId: 'alice',
  source: 'simple',
  accessTokenHash: 'h',
  accessTokenSealed: 's',
  baseImage: 'debian:bookworm',
  artifact: null,
  resources: resourcesSchema.parse({}),
  vscodeVersion: '1.100.3',
});

describe('identity', () => {
  it('maps tokens to callers by hash, the admin token to admin', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tokens-')), 'tokens.json');
    writeFileSync(
      file,
      JSON.stringify({
        tokens: [
          { sha256: hashToken('alice-secret'), user: 'alice' },
          { sha256: hashToken('ops'), user: 'ops', role: 'admin' },
        ],
      }),
    );
    const dir = new TokenDirectory('the-admin-token-123', file, logger);
    expect(dir.authenticate('alice-secret')).toEqual({ role: 'user', userId: 'alice' });
    expect(dir.authenticate('ops')).toEqual({ role: 'admin', userId: null });
    expect(dir.authenticate('the-admin-token-123')).toEqual({ role: 'admin', userId: null });
    expect(dir.authenticate('nope')).toBeUndefined();
  });

  it('refuses a broken tokens file at start', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'tokens-')), 'tokens.json');
    writeFileSync(file, JSON.stringify({ tokens: [{ sha256: 'plain-text-token', user: 'alice' }] }));
    expect(() => new TokenDirectory('the-admin-token-123', file, logger)).toThrow(/sha256/);
  });

  it('settles the owner of a create', () => {
    expect(ownerFor({ role: 'user', userId: 'alice' }, undefined)).toBe('alice');
    expect(ownerFor({ role: 'user', userId: 'alice' }, 'alice')).toBe('alice');
    expect(() => ownerFor({ role: 'user', userId: 'alice' }, 'bob')).toThrow(expect.objectContaining({ status: 403, code: 'forbidden_user' }));
    expect(ownerFor({ role: 'admin', userId: null }, 'bob')).toBe('bob');
    expect(() => ownerFor({ role: 'admin', userId: null }, undefined)).toThrow(expect.objectContaining({ status: 400 }));
  });

  it("hides someone else's instance as not found", () => {
    expect(mustSee({ role: 'user', userId: 'alice' }, record)).toBe(record);
    expect(mustSee({ role: 'admin', userId: null }, record)).toBe(record);
    expect(() => mustSee({ role: 'user', userId: 'bob' }, record)).toThrow(expect.objectContaining({ status: 404 }));
  });
});
