import { InputError, UnprocessableError } from '@codebay/contracts';
import { describe, expect, it } from 'vitest';
import { baseImageOf, checkFeatureRefs, checkSupported, parseDevcontainerJson, type DevcontainerConfig } from './parse.ts';

function parseError(text: string, name?: string): InputError {
  try {
    parseDevcontainerJson(text, name);
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected a parse error');
}

function unsupported(config: DevcontainerConfig, hasContext: boolean, name?: string): UnprocessableError {
  try {
    checkSupported(config, { hasContext }, name);
  } catch (err) {
    expect(err).toBeInstanceOf(UnprocessableError);
    return err as UnprocessableError;
  }
  throw new Error('expected checkSupported to refuse');
}

describe('parseDevcontainerJson', () => {
  it('parses a plain JSON object', () => {
    expect(parseDevcontainerJson('{ "image": "ubuntu:22.04", "forwardPorts": [3000] }')).toEqual({ image: 'ubuntu:22.04', forwardPorts: [3000] });
  });

  it('accepts line and block comments and trailing commas (JSONC)', () => {
    const text = [
      '// a devcontainer',
      '{',
      '  /* the base */ "image": "ubuntu:22.04", // trailing comment',
      '  "features": {',
      '    "ghcr.io/devcontainers/features/node:1": { "version": "20", },',
      '  },',
      '  "forwardPorts": [3000, 8080,],',
      '}',
      '',
    ].join('\n');
    expect(parseDevcontainerJson(text)).toEqual({
      image: 'ubuntu:22.04',
      features: { 'ghcr.io/devcontainers/features/node:1': { version: '20' } },
      forwardPorts: [3000, 8080],
    });
  });

  it('does not mistake // inside strings for comments', () => {
    expect(parseDevcontainerJson('{ "image": "registry.example.com//x", "name": "/* not a comment */" }')).toEqual({
      image: 'registry.example.com//x',
      name: '/* not a comment */',
    });
  });

  it('names line and column of a missing comma', () => {
    const err = parseError('{\n  "image": "ubuntu:22.04"\n  "name": "broken"\n}\n');
    expect(err.code).toBe('invalid_jsonc');
    expect(err.status).toBe(400);
    expect(err.message).toBe('devcontainer.json: line 3, column 3: CommaExpected');
    expect(err.details).toEqual({ problems: [{ line: 3, column: 3, error: 'CommaExpected' }] });
  });

  it('counts columns from 1 on the line of the error, tabs as one column', () => {
    const err = parseError('{\n\t"a": 1,\n\t"b": [1, 2,, 3]\n}');
    expect(err.message).toBe('devcontainer.json: line 3, column 13: ValueExpected');
  });

  it('counts lines across CRLF line ends', () => {
    const err = parseError('{\r\n  "image": "a"\r\n  "name": "b"\r\n}');
    expect(err.message).toMatch(/^devcontainer\.json: line 3, column 3: /);
  });

  it('reports a missing value on line 1', () => {
    expect(parseError('{ "image": }').message).toBe('devcontainer.json: line 1, column 12: ValueExpected');
  });

  it('refuses empty text', () => {
    expect(parseError('').message).toBe('devcontainer.json: line 1, column 1: ValueExpected');
    expect(parseError('   \n  ').code).toBe('invalid_jsonc');
  });

  it('refuses two top-level values', () => {
    expect(parseError('{"a":1}\n{"b":2}').message).toBe('devcontainer.json: line 2, column 1: EndOfFileExpected');
  });

  it('lists every problem in details, the first in the message', () => {
    const err = parseError('{ "a": "unterminated }');
    expect(err.message).toBe('devcontainer.json: line 1, column 8: UnexpectedEndOfString');
    const problems = (err.details as { problems: Array<{ line: number; column: number; error: string }> }).problems;
    expect(problems.length).toBeGreaterThan(1);
    expect(problems[0]).toEqual({ line: 1, column: 8, error: 'UnexpectedEndOfString' });
  });

  it('uses the given file name in the message', () => {
    expect(parseError('{ "image": }', '.devcontainer/devcontainer.json').message).toMatch(/^\.devcontainer\/devcontainer\.json: line 1, column 12: /);
  });

  it.each([
    ['an array', '[{ "image": "ubuntu" }]'],
    ['a string', '"ubuntu:22.04"'],
    ['a number', '42'],
    ['null', 'null'],
    ['true', 'true'],
  ])('refuses valid JSON that is %s', (_what, text) => {
    const err = parseError(text);
    expect(err.code).toBe('invalid_devcontainer');
    expect(err.message).toBe('devcontainer.json must be a JSON object');
  });
});

describe('checkSupported', () => {
  it.each([
    ['image, lone file', { image: 'ubuntu:22.04' }, false],
    ['image, workspace', { image: 'ubuntu:22.04' }, true],
    ['build.dockerfile, workspace', { build: { dockerfile: 'Dockerfile', context: '..' } }, true],
    ['legacy dockerFile, workspace', { dockerFile: 'Dockerfile' }, true],
    ['image and build.dockerfile, workspace', { image: 'x', build: { dockerfile: 'Dockerfile' } }, true],
  ] as Array<[string, DevcontainerConfig, boolean]>)('accepts %s', (_what, config, hasContext) => {
    expect(() => checkSupported(config, { hasContext })).not.toThrow();
  });

  it('refuses Docker Compose configs, with or without a workspace', () => {
    for (const hasContext of [false, true]) {
      const err = unsupported({ dockerComposeFile: 'compose.yml', service: 'app', image: 'ubuntu' }, hasContext);
      expect(err.status).toBe(422);
      expect(err.code).toBe('unsupported_devcontainer');
      expect(err.message).toMatch(/dockerComposeFile is not supported/);
    }
    expect(unsupported({ dockerComposeFile: ['a.yml', 'b.yml'] }, true).code).toBe('unsupported_devcontainer');
  });

  it('refuses a config with neither image nor Dockerfile', () => {
    const err = unsupported({ name: 'nothing', build: { context: '.' } }, true);
    expect(err.code).toBe('unsupported_devcontainer');
    expect(err.message).toBe('devcontainer.json: needs "image" or "build.dockerfile"');
  });

  it('refuses a Dockerfile build without a build context', () => {
    for (const config of [{ build: { dockerfile: 'Dockerfile' } }, { dockerFile: 'Dockerfile' }, { image: 'ubuntu', build: { dockerfile: 'Dockerfile' } }]) {
      const err = unsupported(config, false);
      expect(err.code).toBe('needs_workspace');
      expect(err.message).toMatch(/POST \/instances\/workspace/);
    }
  });

  it('refuses an image that is not an image reference', () => {
    expect(unsupported({ image: 'debian bookworm; rm -rf /' }, false).code).toBe('invalid_devcontainer');
    expect(unsupported({ image: '-debian' }, false).code).toBe('invalid_devcontainer');
  });

  it('refuses image and dockerfile of the wrong type', () => {
    expect(unsupported({ image: 42 }, false).code).toBe('invalid_devcontainer');
    expect(unsupported({ image: ['ubuntu'] }, true).message).toBe('devcontainer.json: "image" must be an image reference such as debian:bookworm');
    expect(unsupported({ build: { dockerfile: true } }, true).message).toBe('devcontainer.json: "build.dockerfile" must be a string');
    expect(unsupported({ dockerFile: {} }, true).code).toBe('invalid_devcontainer');
  });

  it('treats a non-object build like no build', () => {
    expect(unsupported({ build: 'Dockerfile' }, true).code).toBe('unsupported_devcontainer');
    expect(() => checkSupported({ build: 'Dockerfile', image: 'ubuntu' }, { hasContext: false })).not.toThrow();
  });

  it('uses the given file name in the message', () => {
    expect(unsupported({ dockerComposeFile: 'x' }, true, '.devcontainer.json').message).toMatch(/^\.devcontainer\.json: /);
  });
});

describe('baseImageOf', () => {
  it('is the image when there is one', () => {
    expect(baseImageOf({ image: 'mcr.microsoft.com/devcontainers/base:ubuntu' })).toBe('mcr.microsoft.com/devcontainers/base:ubuntu');
    expect(baseImageOf({ build: { dockerfile: 'Dockerfile' } })).toBeNull();
    expect(baseImageOf({ image: 42 })).toBeNull();
  });
});

describe('checkFeatureRefs', () => {
  const ok =
    (features: Record<string, unknown>, hasContext = true) =>
    () =>
      checkFeatureRefs({ image: 'x', features }, { hasContext });
  it('accepts OCI references, tarballs and local folders with a workspace', () => {
    expect(ok({ 'ghcr.io/devcontainers/features/node:1': { version: '18' } })).not.toThrow();
    expect(ok({ [`localhost:5000/org/features/hello@sha256:${'a'.repeat(64)}`]: {} })).not.toThrow();
    expect(ok({ 'https://example.com/feature.tgz': true })).not.toThrow();
    expect(ok({ './hello-feature': {} })).not.toThrow();
  });
  it('refuses malformed references, local folders that climb out or come without a workspace', () => {
    expect(ok({ 'not a ref': {} })).toThrow(/not a feature reference/);
    expect(ok({ 'http://insecure.example/f.tgz': {} })).toThrow(/not a feature reference/);
    expect(ok({ './../../etc': {} })).toThrow(/inside .devcontainer/);
    expect(ok({ './hello-feature': {} }, false)).toThrow(/needs its folder/);
  });
});

describe('files as editors save them', () => {
  it('reads a UTF-8 byte-order mark, CRLF line endings and comments as the reference CLI does', () => {
    expect(parseDevcontainerJson('\uFEFF// saved by an editor\r\n{\r\n  "image": "debian:bookworm", /* why */\r\n}\r\n')).toEqual({ image: 'debian:bookworm' });
  });

  it('names UTF-16 instead of failing on an invalid symbol', () => {
    const utf16 = Buffer.from('\uFEFF{"image":"debian:bookworm"}', 'utf16le').toString('utf8');
    expect(() => parseDevcontainerJson(utf16)).toThrow(/not UTF-8 \(it looks like UTF-16\)/);
  });
});
