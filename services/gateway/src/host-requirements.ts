import { UnprocessableError, formatCpu, formatMemory, listProblems, parseCpu, parseMemory, type PropertyWarning, type Resources } from '@codebay/contracts';
import type { HostRequirements } from '@codebay/devcontainer';

/** The create fields a caller may give (`resourcesSchema`), each of which has a default. */
export type ResourceField = keyof Resources;
export const RESOURCE_FIELDS: readonly ResourceField[] = ['storage_size', 'shared_storage_size', 'memory_request', 'memory_limit', 'cpu_request', 'cpu_limit'];

/** What the operator allows one instance (the gateway's MAX_CPU_LIMIT, MAX_MEMORY_LIMIT, MAX_STORAGE_SIZE) and where instances run. */
export interface HostLimits {
  MAX_CPU_LIMIT: string;
  MAX_MEMORY_LIMIT: string;
  MAX_STORAGE_SIZE: string;
  CODEBAY_RUNTIME: 'docker' | 'kubernetes';
}

/** A problem with `details.problems` of the 422s: the hostRequirements property, and the create field it concerns. */
export interface HostProblem {
  property: string;
  field?: ResourceField;
  message: string;
}

interface Dimension {
  property: string;
  /** What the config asks: millicores or bytes. */
  minimum: number;
  asked: string;
  request: ResourceField;
  /** The limit raised with the request (cpu, memory); storage has none. */
  limit?: ResourceField;
  max: string;
  maxName: string;
  parse: (q: string) => number | undefined;
  format: (n: number) => string;
}

/**
 * Applies a devcontainer.json's hostRequirements (`hostRequirementsOf`) to an instance's create
 * fields. The spec makes them minimums of the host, so they become the instance's minimums:
 *
 * - `cpus` (cores) → `cpu_request` at least `cpus` (as `2`), `cpu_limit` at least the request;
 *   `memory` (bytes, binary units: `parseHostBytes`) → `memory_request` and `memory_limit`
 *   likewise (as `1Gi`); `storage` → `storage_size` (the workspace volume: the PersistentVolumeClaim's
 *   storage request on Kubernetes). Fields the caller left out are raised from their defaults;
 *   fields the caller gave are kept.
 * - A field the caller gave below the minimum (`cpu_request: 1` with `cpus: 2`, or a limit below
 *   it) → 422 `below_host_requirements`, naming the property, the field and both values: the
 *   instance could not have what the config says it needs, and codebay does not pick one over the other.
 * - A minimum above what the operator allows one instance (MAX_CPU_LIMIT, MAX_MEMORY_LIMIT,
 *   MAX_STORAGE_SIZE) → 422 `unsupported_devcontainer`, naming the property, the asked value and
 *   the maximum. This one is checked first: no field can fix it.
 *
 * `given`: the resource fields the caller sent (the others hold their defaults). Returns the fields
 * to create with, and warnings: on the Docker runtime `storage` is recorded as `storage_size` but
 * a local volume has no size (instances share the host's disk), which is said. `gpu` is refused
 * or warned about with the config (`checkRefused`, `configWarnings`). Pure; throws only the 422s.
 */
export function applyHostRequirements<F extends Resources>(
  fields: F,
  given: ReadonlySet<ResourceField>,
  host: HostRequirements,
  limits: HostLimits,
): { fields: F; warnings: PropertyWarning[] } {
  const dims: Dimension[] = [];
  const bytes = { parse: parseMemory, format: formatMemory };
  if (host.cpuMillis !== undefined)
    dims.push({
      property: 'hostRequirements.cpus',
      minimum: host.cpuMillis,
      asked: `${host.cpuMillis / 1000} cores`,
      request: 'cpu_request',
      limit: 'cpu_limit',
      max: limits.MAX_CPU_LIMIT,
      maxName: 'cpu',
      parse: parseCpu,
      format: formatCpu,
    });
  if (host.memoryBytes !== undefined)
    dims.push({
      property: 'hostRequirements.memory',
      minimum: host.memoryBytes,
      asked: formatMemory(host.memoryBytes),
      request: 'memory_request',
      limit: 'memory_limit',
      max: limits.MAX_MEMORY_LIMIT,
      maxName: 'memory',
      ...bytes,
    });
  if (host.storageBytes !== undefined)
    dims.push({
      property: 'hostRequirements.storage',
      minimum: host.storageBytes,
      asked: formatMemory(host.storageBytes),
      request: 'storage_size',
      max: limits.MAX_STORAGE_SIZE,
      maxName: 'workspace storage',
      ...bytes,
    });

  const tooLarge: HostProblem[] = [];
  for (const d of dims) {
    const max = d.parse(d.max);
    if (max !== undefined && d.minimum > max)
      tooLarge.push({
        property: d.property,
        message: `${d.property}: asks for ${d.asked}, and this deployment gives an instance at most ${d.max} of ${d.maxName}`,
      });
  }
  if (tooLarge.length > 0) throw refusal('unsupported_devcontainer', tooLarge);

  const below: HostProblem[] = [];
  const out: F = { ...fields };
  for (const d of dims) {
    for (const field of [d.request, d.limit]) {
      if (field === undefined || !given.has(field)) continue;
      const value = d.parse(fields[field]);
      if (value !== undefined && value < d.minimum)
        below.push({ property: d.property, field, message: `${field} ${fields[field]} is below ${d.property} (${d.asked}), the instance’s minimum` });
    }
    if (!given.has(d.request) && (d.parse(out[d.request]) ?? 0) < d.minimum) out[d.request] = d.format(d.minimum);
    if (d.limit && !given.has(d.limit) && (d.parse(out[d.limit]) ?? 0) < (d.parse(out[d.request]) ?? 0)) out[d.limit] = out[d.request];
  }
  if (below.length > 0) throw refusal('below_host_requirements', below);

  const warnings: PropertyWarning[] = [];
  if (host.storageBytes !== undefined && limits.CODEBAY_RUNTIME === 'docker')
    warnings.push({
      property: 'hostRequirements.storage',
      message: `hostRequirements.storage: recorded as storage_size ${out.storage_size}, not reserved: on the Docker runtime a volume has no size, and instances share the host’s disk`,
    });
  return { fields: out, warnings };
}

function refusal(code: string, problems: HostProblem[]): UnprocessableError {
  const { message } = listProblems(
    problems.map((p) => p.message),
    'hostRequirements problems',
  );
  return new UnprocessableError(code, `devcontainer.json: ${message}`, { problems });
}
