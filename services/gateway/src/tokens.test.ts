import { instanceIdSchema, userIdSchema } from '@codebay/contracts';
import { describe, expect, it } from 'vitest';
import { newAccessToken, newInstanceId, sameSecret } from './tokens.ts';

describe('newAccessToken', () => {
  it('is 40 alphanumeric characters, no hyphens (the seed form)', () => {
    for (let i = 0; i < 200; i++) expect(newAccessToken()).toMatch(/^[A-Za-z0-9]{40}$/);
  });

  it('is different every time', () => {
    const tokens = new Set(Array.from({ length: 2000 }, () => newAccessToken()));
    expect(tokens.size).toBe(2000);
  });

  it('uses the whole alphabet', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => newAccessToken()).join(''));
    expect(seen.size).toBe(62);
  });
});

describe('newInstanceId', () => {
  it('is the user id, a hyphen and 8 lower-case letters or digits', () => {
    for (let i = 0; i < 200; i++) expect(newInstanceId('alice')).toMatch(/^alice-[a-z0-9]{8}$/);
  });

  it('is a valid instance id even for the longest user id', () => {
    const longest = 'a'.repeat(40);
    expect(userIdSchema.safeParse(longest).success).toBe(true);
    for (const user of ['a', 'alice', 'team-7', longest]) {
      const id = newInstanceId(user);
      expect(instanceIdSchema.safeParse(id).success, id).toBe(true);
      expect(id.length).toBeLessThanOrEqual(63);
    }
  });

  it('is different every time', () => {
    expect(new Set(Array.from({ length: 2000 }, () => newInstanceId('bob'))).size).toBe(2000);
  });
});

describe('sameSecret', () => {
  it('is true for equal strings', () => {
    expect(sameSecret('s3cret-token', 's3cret-token')).toBe(true);
    expect(sameSecret('', '')).toBe(true);
  });

  it('is false for different strings of any length', () => {
    expect(sameSecret('s3cret-token', 's3cret-tokem')).toBe(false);
    expect(sameSecret('s3cret-token', 's3cret-token2')).toBe(false);
    expect(sameSecret('s3cret-token', 's3cret')).toBe(false);
    expect(sameSecret('s3cret-token', '')).toBe(false);
    expect(sameSecret('', 'x')).toBe(false);
    expect(sameSecret('abc', 'ABC')).toBe(false);
  });

  it('compares unicode by content', () => {
    expect(sameSecret('pässwörd', 'pässwörd')).toBe(true);
    expect(sameSecret('pässwörd', 'passwort')).toBe(false);
  });
});
