import { describe, expect, it } from 'vitest';
import { applyImageHostRequirements, hostRequirementsOf, mergeHostRequirements, parseHostBytes } from './host-requirements.ts';
import { checkSchema } from './schema.ts';
import { createFieldsSchema } from '@codebay/contracts';

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

describe('mergeHostRequirements', () => {
  it('takes the largest cpus, memory and storage of any entry', () => {
    expect(
      mergeHostRequirements([
        { hostRequirements: { cpus: 2, memory: '8gb' } },
        { id: 'ghcr.io/x/f:1', init: true },
        { hostRequirements: { cpus: 4, memory: '1gb', storage: '16gb' } },
      ]),
    ).toEqual({ cpuMillis: 4000, memoryBytes: 8 * 2 ** 30, storageBytes: 16 * 2 ** 30, gpu: 'none' });
  });

  it('merges gpu as the reference CLI does: required over optional over none', () => {
    const gpu = (...values: unknown[]) => mergeHostRequirements(values.map((gpu) => ({ hostRequirements: { gpu } }))).gpu;
    expect(gpu(false, undefined)).toBe('none');
    expect(gpu('optional', false)).toBe('optional');
    expect(gpu('optional', 'optional')).toBe('optional');
    expect(gpu('optional', true)).toBe('required');
    expect(gpu({ cores: 1 }, 'optional')).toBe('required');
  });

  it('reads a malformed field as absent, and no entries as nothing asked', () => {
    expect(mergeHostRequirements([{ hostRequirements: { cpus: '8', memory: '8GB', storage: 7 } }, { hostRequirements: 'big' }])).toEqual({ gpu: 'none' });
    expect(mergeHostRequirements([])).toEqual({ gpu: 'none' });
  });
});

describe('applyImageHostRequirements', () => {
  const resources = createFieldsSchema.omit({ user_id: true, vscode_version: true }).parse({});
  const max = { cpu: '4000m', memory: '8Gi', storage: '100Gi' };

  it('raises requests to the minimums and limits to at least the requests, naming each field raised', () => {
    const out = applyImageHostRequirements(resources, { cpuMillis: 2000, memoryBytes: 3 * 2 ** 30, storageBytes: 10 * 2 ** 30, gpu: 'none' }, max);
    expect(out.refused).toEqual([]);
    expect(out.reason).toBeUndefined();
    expect(out.resources).toEqual({ ...resources, cpu_request: '2', cpu_limit: '2', memory_request: '3Gi', memory_limit: '3Gi', storage_size: '10Gi' });
    expect(out.raised).toEqual([
      { field: 'cpu_request', from: '200m', to: '2' },
      { field: 'cpu_limit', from: '1000m', to: '2' },
      { field: 'memory_request', from: '512Mi', to: '3Gi' },
      { field: 'memory_limit', from: '2Gi', to: '3Gi' },
      { field: 'storage_size', from: '2Gi', to: '10Gi' },
    ]);
    expect(out.warning).toEqual({
      property: 'hostRequirements',
      message:
        "hostRequirements: the image's metadata (its devcontainer.metadata label, from its base image) asks for more than the instance was created with; raised cpu_request 200m → 2, cpu_limit 1000m → 2, memory_request 512Mi → 3Gi, memory_limit 2Gi → 3Gi, storage_size 2Gi → 10Gi",
    });
  });

  it('leaves fields already at or above the minimums (the config’s, raised at create, or the caller’s)', () => {
    const out = applyImageHostRequirements({ ...resources, memory_request: '4Gi', memory_limit: '6Gi' }, { memoryBytes: 2 ** 30, gpu: 'none' }, max);
    expect(out).toEqual({ resources: { ...resources, memory_request: '4Gi', memory_limit: '6Gi' }, raised: [], refused: [] });
  });

  it('refuses minimums above the maxima and a required GPU, naming the value, the maximum and the image’s metadata; nothing raised', () => {
    const out = applyImageHostRequirements(resources, { cpuMillis: 64_000, memoryBytes: 2 ** 30, storageBytes: 2 ** 40, gpu: 'required' }, max);
    expect(out.resources).toBe(resources);
    expect(out.raised).toEqual([]);
    expect(out.refused.map((r) => r.property)).toEqual(['hostRequirements.cpus', 'hostRequirements.storage', 'hostRequirements.gpu']);
    expect(out.refused[0]!.message).toBe(
      "hostRequirements.cpus: the image's metadata (its devcontainer.metadata label, from its base image) asks for 64 cores, and this deployment gives an instance at most 4000m of cpu",
    );
    expect(out.refused[1]!.message).toMatch(/asks for 1Ti, and this deployment gives an instance at most 100Gi of workspace storage$/);
    expect(out.refused[2]!.message).toMatch(/^hostRequirements\.gpu: the image's metadata .* requires a GPU, and codebay offers none$/);
    expect(out.reason).toMatch(/^3 hostRequirements problems: hostRequirements\.cpus: .*; the image is built, and no instance was started from it$/);
  });
});
