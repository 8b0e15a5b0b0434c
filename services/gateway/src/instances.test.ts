import { InputError, createFieldsSchema, type CreateFields } from '@codebay/contracts';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from './config.ts';
import { checkResources, resolveVscodeVersion } from './instances.ts';

describe('resolveVscodeVersion', () => {
  const available = ['1.100.3', '1.99.2', '1.9.1'];

  it('defaults to the first available version', () => {
    expect(resolveVscodeVersion(undefined, available)).toBe('1.100.3');
  });

  it('matches an exact version', () => {
    expect(resolveVscodeVersion('1.99.2', available)).toBe('1.99.2');
    expect(resolveVscodeVersion('1.9.1', available)).toBe('1.9.1');
  });

  it('matches a major.minor prefix at a dot boundary only', () => {
    expect(resolveVscodeVersion('1.99', available)).toBe('1.99.2');
    expect(resolveVscodeVersion('1.9', available)).toBe('1.9.1');
    expect(resolveVscodeVersion('1.100', available)).toBe('1.100.3');
  });

  it('picks the newest patch release for major.minor, whatever the order', () => {
    expect(resolveVscodeVersion('1.100', ['1.139.1', '1.100.2', '1.100.10', '1.100.3'])).toBe('1.100.10');
  });

  it('refuses everything when no version is available, and says so', () => {
    expect(() => resolveVscodeVersion(undefined, [])).toThrow('vscode_version (default) is not available; available: none');
  });

  it.each(['1.10', '1.100.4', '2.0', '1.99.20', '0.1'])('refuses %s, naming the available versions', (requested) => {
    let err: unknown;
    try {
      resolveVscodeVersion(requested, available);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InputError);
    const e = err as InputError;
    expect(e.status).toBe(400);
    expect(e.code).toBe('unsupported_vscode_version');
    expect(e.message).toBe(`vscode_version ${requested} is not available; available: 1.100.3, 1.99.2, 1.9.1`);
    expect(e.details).toEqual({ available });
  });
});

describe('checkResources', () => {
  const config = loadConfig({
    MAX_MEMORY_LIMIT: '8Gi',
    MAX_CPU_LIMIT: '4000m',
    MAX_STORAGE_SIZE: '100Gi',
    LOG_LEVEL: 'silent',
    CODEBAY_SECRET_KEY: 'k'.repeat(64),
  });
  const fields = (over: Partial<Record<keyof CreateFields, string>> = {}): CreateFields => createFieldsSchema.parse({ user_id: 'alice', ...over });

  function problems(f: CreateFields): string[] {
    try {
      checkResources(f, config);
    } catch (err) {
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).code).toBe('invalid_resources');
      expect((err as InputError).status).toBe(400);
      const list = ((err as InputError).details as { problems: string[] }).problems;
      expect((err as InputError).message).toBe(list.join('; '));
      return list;
    }
    return [];
  }

  it('accepts the defaults', () => {
    expect(problems(fields())).toEqual([]);
  });

  it('accepts requests equal to limits and limits equal to the maxima', () => {
    expect(
      problems(
        fields({ memory_request: '8Gi', memory_limit: '8Gi', cpu_request: '4', cpu_limit: '4000m', storage_size: '100Gi', shared_storage_size: '100Gi' }),
      ),
    ).toEqual([]);
  });

  it('compares across units', () => {
    expect(problems(fields({ memory_request: '1000M', memory_limit: '1Gi' }))).toEqual([]);
    expect(problems(fields({ memory_request: '1Gi', memory_limit: '1000M' }))).toEqual(['memory_request is above memory_limit']);
    expect(problems(fields({ cpu_request: '0.5', cpu_limit: '500m' }))).toEqual([]);
    expect(problems(fields({ cpu_request: '501m', cpu_limit: '0.5' }))).toEqual(['cpu_request is above cpu_limit']);
  });

  it('refuses a memory request above the limit', () => {
    expect(problems(fields({ memory_request: '3Gi', memory_limit: '2Gi' }))).toEqual(['memory_request is above memory_limit']);
  });

  it('refuses a cpu request above the limit', () => {
    expect(problems(fields({ cpu_request: '2', cpu_limit: '1' }))).toEqual(['cpu_request is above cpu_limit']);
  });

  it('refuses limits above the operator maxima', () => {
    expect(problems(fields({ memory_limit: '9Gi' }))).toEqual(['memory_limit is above the maximum 8Gi']);
    expect(problems(fields({ cpu_limit: '4001m' }))).toEqual(['cpu_limit is above the maximum 4000m']);
    expect(problems(fields({ storage_size: '101Gi' }))).toEqual(['storage_size is above the maximum 100Gi']);
    expect(problems(fields({ shared_storage_size: '1Ti' }))).toEqual(['shared_storage_size is above the maximum 100Gi']);
  });

  it('reports every problem at once', () => {
    expect(problems(fields({ memory_request: '16Gi', memory_limit: '12Gi', cpu_request: '8', cpu_limit: '6', storage_size: '1Ti' }))).toEqual([
      'memory_request is above memory_limit',
      'cpu_request is above cpu_limit',
      'memory_limit is above the maximum 8Gi',
      'cpu_limit is above the maximum 4000m',
      'storage_size is above the maximum 100Gi',
    ]);
  });

  it.each([
    ['MAX_MEMORY_LIMIT', 'eight gigs'],
    ['MAX_CPU_LIMIT', '4 cores'],
    ['MAX_STORAGE_SIZE', '0'],
  ])('refuses to start with %s=%j, naming it (a maximum that does not parse would let every request through)', (name, value) => {
    const said: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => said.push(String(chunk)) > 0);
    const exit = vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${code}`);
    });
    try {
      expect(() => loadConfig({ [name]: value, LOG_LEVEL: 'silent', CODEBAY_SECRET_KEY: 'k'.repeat(64) })).toThrow('exit 2');
    } finally {
      write.mockRestore();
      exit.mockRestore();
    }
    expect(said.join('')).toMatch(new RegExp(`${name}: ${name} must be`));
  });

  it('follows the configured maxima', () => {
    const small = loadConfig({
      MAX_MEMORY_LIMIT: '1Gi',
      MAX_CPU_LIMIT: '1',
      MAX_STORAGE_SIZE: '10Gi',
      LOG_LEVEL: 'silent',
      CODEBAY_SECRET_KEY: 'k'.repeat(64),
    });
    expect(() =>
      checkResources(fields({ memory_request: '512Mi', memory_limit: '1Gi', cpu_limit: '1', storage_size: '2Gi', shared_storage_size: '5Gi' }), small),
    ).not.toThrow();
    expect(() => checkResources(fields(), small)).toThrow(/memory_limit is above the maximum 1Gi/);
  });
});
