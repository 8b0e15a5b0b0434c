import { UnprocessableError, createFieldsSchema, type CreateFields } from '@codebay/contracts';
import { hostRequirementsOf } from '@codebay/devcontainer';
import { describe, expect, it } from 'vitest';
import { applyHostRequirements, type HostLimits, type ResourceField } from './host-requirements.ts';

const limits: HostLimits = { MAX_CPU_LIMIT: '4000m', MAX_MEMORY_LIMIT: '8Gi', MAX_STORAGE_SIZE: '100Gi', CODEBAY_RUNTIME: 'kubernetes' };

/** Create fields as the API parses them: `given` set, the rest defaults (512Mi/2Gi memory, 200m/1000m cpu, 2Gi storage). */
function apply(hostRequirements: Record<string, unknown>, given: Partial<Record<ResourceField, string>> = {}, over: Partial<HostLimits> = {}) {
  const fields: CreateFields = createFieldsSchema.parse({ user_id: 'alice', ...given });
  const host = hostRequirementsOf({ image: 'x', hostRequirements });
  return applyHostRequirements(fields, new Set(Object.keys(given) as ResourceField[]), host, { ...limits, ...over });
}

function refusal(run: () => unknown): UnprocessableError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(UnprocessableError);
    return err as UnprocessableError;
  }
  throw new Error('expected a 422');
}

describe('applyHostRequirements', () => {
  it('raises the default requests to the minimums, and the limits to the requests', () => {
    const { fields, warnings } = apply({ cpus: 2, memory: '1gb' });
    expect(fields).toMatchObject({ cpu_request: '2', cpu_limit: '2', memory_request: '1Gi', memory_limit: '2Gi', storage_size: '2Gi' });
    expect(warnings).toEqual([]);
  });

  it('keeps defaults that already meet the minimums', () => {
    const { fields } = apply({ memory: '256mb', storage: '1gb' });
    expect(fields).toMatchObject({ memory_request: '512Mi', memory_limit: '2Gi', storage_size: '2Gi', cpu_request: '200m', cpu_limit: '1000m' });
  });

  it('raises the workspace storage (the PersistentVolumeClaim’s request) to hostRequirements.storage', () => {
    expect(apply({ storage: '32gb' }).fields.storage_size).toBe('32Gi');
    expect(apply({ storage: '32gb' }).fields.shared_storage_size).toBe('5Gi');
  });

  it('keeps fields the caller gave that meet the minimums, raising only what was left out', () => {
    const { fields } = apply({ cpus: 2, memory: '1gb' }, { cpu_limit: '3', memory_request: '1536Mi' });
    expect(fields).toMatchObject({ cpu_request: '2', cpu_limit: '3', memory_request: '1536Mi', memory_limit: '2Gi' });
    // A request given above the default limit takes the limit with it.
    expect(apply({ cpus: 1 }, { cpu_request: '1500m' }).fields).toMatchObject({ cpu_request: '1500m', cpu_limit: '1500m' });
  });

  it('refuses a field the caller gave below a minimum: 422 below_host_requirements naming the property and the field', () => {
    const err = refusal(() => apply({ cpus: 2, memory: '4gb' }, { cpu_request: '1', memory_limit: '3Gi' }));
    expect(err.status).toBe(422);
    expect(err.code).toBe('below_host_requirements');
    expect(err.message).toBe(
      'devcontainer.json: 2 hostRequirements problems: cpu_request 1 is below hostRequirements.cpus (2 cores), the instance’s minimum; memory_limit 3Gi is below hostRequirements.memory (4Gi), the instance’s minimum',
    );
    expect(err.details).toEqual({
      problems: [
        { property: 'hostRequirements.cpus', field: 'cpu_request', message: expect.any(String) },
        { property: 'hostRequirements.memory', field: 'memory_limit', message: expect.any(String) },
      ],
    });
    expect(refusal(() => apply({ storage: '10gb' }, { storage_size: '5Gi' })).message).toMatch(/storage_size 5Gi is below hostRequirements\.storage \(10Gi\)/);
  });

  it('refuses minimums above the operator’s maxima: 422 unsupported_devcontainer naming the property, the asked value and the maximum', () => {
    const err = refusal(() => apply({ cpus: 8, memory: '16gb', storage: '1tb' }));
    expect(err.code).toBe('unsupported_devcontainer');
    expect(err.details).toEqual({
      problems: [
        { property: 'hostRequirements.cpus', message: 'hostRequirements.cpus: asks for 8 cores, and this deployment gives an instance at most 4000m of cpu' },
        { property: 'hostRequirements.memory', message: 'hostRequirements.memory: asks for 16Gi, and this deployment gives an instance at most 8Gi of memory' },
        {
          property: 'hostRequirements.storage',
          message: 'hostRequirements.storage: asks for 1Ti, and this deployment gives an instance at most 100Gi of workspace storage',
        },
      ],
    });
    // Checked before the caller's fields: none of them could make it fit.
    expect(refusal(() => apply({ cpus: 5 }, { cpu_request: '1' })).code).toBe('unsupported_devcontainer');
  });

  it('accepts minimums equal to the maxima', () => {
    expect(apply({ cpus: 4, memory: '8gb', storage: '100gb' }).fields).toMatchObject({
      cpu_request: '4',
      cpu_limit: '4',
      memory_request: '8Gi',
      memory_limit: '8Gi',
      storage_size: '100Gi',
    });
  });

  it('says on the Docker runtime that storage is recorded, not reserved', () => {
    expect(apply({ storage: '32gb' }, {}, { CODEBAY_RUNTIME: 'docker' }).warnings).toEqual([
      { property: 'hostRequirements.storage', message: expect.stringMatching(/^hostRequirements\.storage: recorded as storage_size 32Gi, not reserved/) },
    ]);
    expect(apply({ cpus: 1 }, {}, { CODEBAY_RUNTIME: 'docker' }).warnings).toEqual([]);
  });

  it('changes nothing without hostRequirements', () => {
    const fields = createFieldsSchema.parse({ user_id: 'alice' });
    expect(applyHostRequirements(fields, new Set(), hostRequirementsOf({ image: 'x' }), limits)).toEqual({ fields, warnings: [] });
  });
});
