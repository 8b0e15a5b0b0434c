import { describe, expect, it } from 'vitest';
import { hostRequirementsOf, parseHostBytes } from './host-requirements.ts';
import { checkSchema } from './schema.ts';

describe('parseHostBytes', () => {
  it('reads kb, mb, gb and tb as binary multiples, as the reference CLI does', () => {
    expect(parseHostBytes('1kb')).toBe(1024);
    expect(parseHostBytes('512mb')).toBe(512 * 2 ** 20);
    expect(parseHostBytes('1gb')).toBe(2 ** 30);
    expect(parseHostBytes('4gb')).toBe(4 * 2 ** 30);
    expect(parseHostBytes('2tb')).toBe(2 * 2 ** 40);
  });

  it('reads bare digits as bytes', () => {
    expect(parseHostBytes('1073741824')).toBe(2 ** 30);
  });

  it.each(['', '0', '0gb', '4GB', '4g', '4gib', '1.5gb', ' 4gb', '-1gb', '4 gb', '99999999999999tb'])('refuses %j', (text) => {
    expect(parseHostBytes(text)).toBeUndefined();
  });
});

describe('hostRequirementsOf', () => {
  it('reads cpus as millicores and sizes as bytes', () => {
    expect(hostRequirementsOf({ image: 'x', hostRequirements: { cpus: 2, memory: '1gb', storage: '32gb' } })).toEqual({
      cpuMillis: 2000,
      memoryBytes: 2 ** 30,
      storageBytes: 32 * 2 ** 30,
      gpu: 'none',
    });
  });

  it('reads gpu: true and the object form as required, "optional" as optional, false as none', () => {
    const gpu = (value: unknown) => hostRequirementsOf({ image: 'x', hostRequirements: { gpu: value } }).gpu;
    expect(gpu(true)).toBe('required');
    expect(gpu({ cores: 2, memory: '8gb' })).toBe('required');
    expect(gpu({})).toBe('required');
    expect(gpu('optional')).toBe('optional');
    expect(gpu(false)).toBe('none');
    expect(gpu(undefined)).toBe('none');
  });

  it('has nothing to say of a config without hostRequirements', () => {
    expect(hostRequirementsOf({ image: 'x' })).toEqual({ gpu: 'none' });
    expect(hostRequirementsOf({ image: 'x', hostRequirements: {} })).toEqual({ gpu: 'none' });
  });

  it('reads only what the spec’s schema accepts (the schema refuses the rest first)', () => {
    for (const hostRequirements of [{ cpus: 0 }, { cpus: 1.5 }, { memory: '4GB' }, { storage: '4 gb' }, { gpu: 'yes' }, { disk: '1gb' }])
      expect(() => checkSchema({ image: 'x', hostRequirements }), JSON.stringify(hostRequirements)).toThrow();
    expect(() => checkSchema({ image: 'x', hostRequirements: { cpus: 2, memory: '4gb', storage: '32gb', gpu: 'optional' } })).not.toThrow();
  });
});
