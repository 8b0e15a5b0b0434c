import { describe, expect, it } from 'vitest';
import { createMasker, isSecretArgName, looksLikeCredential, secretBuildArgValues } from './masking.ts';

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
});

describe('secretBuildArgValues', () => {
  it('masks the value of an arg whose name is secret, never an ordinary one (FROM debian:bookworm stays readable)', () => {
    const config = { build: { args: { VARIANT: 'bookworm', GITHUB_TOKEN: 'plain-words-here', N: 2 } } };
    expect(secretBuildArgValues(config)).toEqual(['plain-words-here']);
    const mask = createMasker({ values: secretBuildArgValues(config) });
    expect(mask('Step 1/3 : FROM debian:bookworm')).toBe('Step 1/3 : FROM debian:bookworm');
    expect(mask('Step 2/3 : ARG GITHUB_TOKEN=plain-words-here')).toBe('Step 2/3 : ARG GITHUB_TOKEN=****');
    expect(secretBuildArgValues({ image: 'x' })).toEqual([]);
  });

  it('masks a credential-shaped value whatever its name', () => {
    const config = { build: { args: { MIRROR: 'https://bob:hunter22@mirror.example/npm', X: 'Zk3pQ9vL2mN8rT5wY1aB4cD7eF0gH6jK' } } };
    expect(secretBuildArgValues(config)).toEqual(['https://bob:hunter22@mirror.example/npm', 'Zk3pQ9vL2mN8rT5wY1aB4cD7eF0gH6jK']);
  });

  it.each([
    'GITHUB_TOKEN',
    'NPM_AUTH',
    'npmAuthToken',
    'DB_PASSWORD',
    'db-passwd',
    'API_KEY',
    'APIKEY',
    'AWS_SECRET_ACCESS_KEY',
    'PIP_CREDENTIALS',
    'SSH_PASSPHRASE',
    'MYTOKEN',
    'GH_PAT',
  ])('%s is a secret name', (name) => expect(isSecretArgName(name)).toBe(true));

  it.each(['VARIANT', 'NODE_VERSION', 'BASE_IMAGE', 'BYPASS_CACHE', 'KEYBOARD_LAYOUT', 'PUBLIC_KEY', 'USERNAME', 'PYTHON_VERSION'])(
    '%s is not a secret name',
    (name) => expect(isSecretArgName(name)).toBe(false),
  );

  it.each([
    ['bookworm', false],
    ['20', false],
    ['3.12.1', false],
    ['e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', false], // a hex digest
    ['https://deb.debian.org/debian', false],
    ['ghp_0123456789abcdefghijABCDEFGHIJ', true],
    ['https://user:pw@host/x', true],
    ['Bearer abc.def', true],
    ['Zk3pQ9vL2mN8rT5wY1aB4cD7eF0gH6jK', true],
  ])('%j looks like a credential: %s', (value, expected) => expect(looksLikeCredential(value)).toBe(expected));
});
