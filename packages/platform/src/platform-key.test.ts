import { describe, expect, it } from 'vitest';
import { PlatformKey, hashToken, instanceSecrets, sameSecret } from './platform-key.ts';

const KEY = Buffer.alloc(32, 7).toString('base64');

describe('PlatformKey', () => {
  it('refuses keys shorter than 32 bytes or not base64/hex', () => {
    expect(() => new PlatformKey(Buffer.alloc(16).toString('base64'))).toThrow(/at least 32/);
    expect(() => new PlatformKey('not a key!')).toThrow(/at least 32/);
    expect(() => new PlatformKey('ab'.repeat(32))).not.toThrow(); // hex
  });

  it('seals so that only the same key opens, and any change is detected', () => {
    const key = new PlatformKey(KEY);
    const sealed = key.seal('token-123');
    expect(sealed).not.toContain('token-123');
    expect(key.seal('token-123')).not.toBe(sealed); // a fresh IV every time
    expect(key.open(sealed)).toBe('token-123');
    expect(() => new PlatformKey(Buffer.alloc(32, 8).toString('base64')).open(sealed)).toThrow();
    const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA');
    expect(() => key.open(tampered)).toThrow();
    expect(() => key.open('plain')).toThrow(/not a sealed value/);
  });

  it('derives per-instance secrets that depend on the key, the purpose and the instance', () => {
    const key = new PlatformKey(KEY);
    const other = new PlatformKey(Buffer.alloc(32, 9).toString('base64'));
    expect(instanceSecrets.editor(key, 'a-1')).toBe(instanceSecrets.editor(new PlatformKey(KEY), 'a-1'));
    expect(instanceSecrets.editor(key, 'a-1')).not.toBe(instanceSecrets.editor(key, 'a-2'));
    expect(instanceSecrets.editor(key, 'a-1')).not.toBe(instanceSecrets.seed(key, 'a-1'));
    expect(instanceSecrets.editor(key, 'a-1')).not.toBe(instanceSecrets.editor(other, 'a-1'));
    expect(instanceSecrets.editor(key, 'a-1')).toMatch(/^[0-9a-f]{64}$/);
    // Parts are separated: ('ab','c') is not ('a','bc').
    expect(key.derive('x', 'ab', 'c')).not.toBe(key.derive('x', 'a', 'bc'));
  });

  it('compares secrets by hash, in constant time', () => {
    expect(sameSecret('abc', 'abc')).toBe(true);
    expect(sameSecret('abc', 'abd')).toBe(false);
    expect(sameSecret(hashToken('t'), hashToken('t'))).toBe(true);
  });
});
