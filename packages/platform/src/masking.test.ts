import { describe, expect, it } from 'vitest';
import { buildArgValues, createMasker } from './masking.ts';

describe('createMasker', () => {
  it('masks given values wherever they appear, longest first', () => {
    const mask = createMasker({ values: ['s3cr3t-value', 's3cr3t', 'ab'] });
    expect(mask('Step 3/5 : ARG TOKEN=s3cr3t-value and s3cr3t')).toBe('Step 3/5 : ARG TOKEN=**** and ****');
    expect(mask('a tab b')).toBe('a tab b'); // values under 4 characters are not secrets worth breaking words for
  });

  it('masks credential shapes and authorization headers', () => {
    const mask = createMasker();
    expect(mask('using ghp_0123456789abcdefghijABCDEFGHIJ here')).toBe('using **** here');
    expect(mask('key AKIAABCDEFGHIJKLMNOP')).toBe('key ****');
    expect(mask('curl -H "Authorization: Bearer eyJhbGciOi.x.y" url')).toBe('curl -H "Authorization: Bearer ****" url');
    expect(mask('an ordinary line')).toBe('an ordinary line');
  });

  it('replaces host paths by the names users see, the deepest first', () => {
    const mask = createMasker({ paths: { '/var/lib/codebay/builds/u1-x': '<job>', '/var/lib/codebay/builds/u1-x/workspace': '<workspace>' } });
    expect(mask('open /var/lib/codebay/builds/u1-x/workspace/.devcontainer/Dockerfile: no such file')).toBe(
      'open <workspace>/.devcontainer/Dockerfile: no such file',
    );
    expect(mask('tmp /var/lib/codebay/builds/u1-x/tmp')).toBe('tmp <job>/tmp');
  });

  it('reads build arg values from a config', () => {
    expect(buildArgValues({ build: { args: { A: 'one', B: 2 } } })).toEqual(['one']);
    expect(buildArgValues({ image: 'x' })).toEqual([]);
  });
});
