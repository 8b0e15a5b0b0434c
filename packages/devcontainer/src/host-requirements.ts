import {
  formatCpu,
  formatMemory,
  listProblems,
  parseCpu,
  parseMemory,
  type ImageHostRequirements,
  type PropertyWarning,
  type ResourceMaxima,
  type Resources,
} from '@codebay/contracts';
import type { DevcontainerConfig } from './parse.ts';

/**
 * A devcontainer.json's `hostRequirements` (containers.dev/implementors/json_reference): the
 * minimum host an instance needs. Read from a config that passed the spec's schema
 * (`checkSchema`: `cpus` an integer ≥ 1, `memory`/`storage` matching `^\d+([tgmk]b)?$`, `gpu`
 * true, false, "optional" or `{cores, memory}`); anything else reads as absent.
 */
export interface HostRequirements {
  /** `cpus`: the minimum number of cores, in millicores (cores × 1000). */
  cpuMillis?: number;
  /** `memory`: the minimum memory, in bytes (`parseHostBytes`). */
  memoryBytes?: number;
  /** `storage`: the minimum disk space, in bytes (`parseHostBytes`). */
  storageBytes?: number;
  /**
   * `gpu`: `required` for `true` and for the object form (`{cores, memory}` only details a
   * GPU that is needed), `optional` for "optional", `none` for false or absent.
   */
  gpu: 'required' | 'optional' | 'none';
}

const UNIT: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/**
 * Bytes of a hostRequirements size (`memory`, `storage`, `gpu.memory`): digits with an optional
 * `kb`, `mb`, `gb` or `tb`, binary multiples (1gb = 2^30 bytes), as the reference CLI reads them
 * (devcontainers/cli, src/spec-node/imageMetadata.ts, `parseBytes`: `{ t: 2 ** 40, g: 2 ** 30,
 * m: 2 ** 20, k: 2 ** 10 }`, at commit f683c29f). No suffix means bytes. Undefined when the
 * text is not such a size, or is 0.
 */
export function parseHostBytes(text: string): number | undefined {
  const m = /^(\d+)([tgmk]b)?$/.exec(text);
  if (!m) return undefined;
  const bytes = Number(m[1]) * (m[2] ? UNIT[m[2][0]!]! : 1);
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined;
}

/** The config's `hostRequirements`, read (`HostRequirements`); `{gpu: 'none'}` when it has none. Pure; never throws. */
export function hostRequirementsOf(config: DevcontainerConfig): HostRequirements {
  const host = config.hostRequirements;
  if (!host || typeof host !== 'object' || Array.isArray(host)) return { gpu: 'none' };
  const { cpus, memory, storage, gpu } = host as Record<string, unknown>;
  const out: HostRequirements = {
    gpu: gpu === 'optional' ? 'optional' : gpu === true || (gpu !== null && typeof gpu === 'object') ? 'required' : 'none',
  };
  if (typeof cpus === 'number' && Number.isSafeInteger(cpus) && cpus >= 1) out.cpuMillis = cpus * 1000;
  const memoryBytes = typeof memory === 'string' ? parseHostBytes(memory) : undefined;
  if (memoryBytes !== undefined) out.memoryBytes = memoryBytes;
  const storageBytes = typeof storage === 'string' ? parseHostBytes(storage) : undefined;
  if (storageBytes !== undefined) out.storageBytes = storageBytes;
  return out;
}

/**
 * The hostRequirements of an image's metadata: every `devcontainer.metadata` entry's (the base
 * image's, each feature's, then the config's own; `parseMetadataLabel`) merged the way the
 * reference CLI merges them — the largest `cpus`, `memory` and `storage` of any entry, and a GPU
 * `required` when any entry requires one (`true` or `{cores, memory}`), else `optional` when any
 * says so (devcontainers/cli, src/spec-node/imageMetadata.ts, `mergeHostRequirements` and
 * `mergeGpuRequirements`, at commit 0349e729). Each entry is read as `hostRequirementsOf` reads a
 * config (a malformed field counts as absent). `{gpu: 'none'}` when no entry asks for anything.
 * Pure; never throws.
 */
export function mergeHostRequirements(entries: readonly Record<string, unknown>[]): HostRequirements {
  const merged: HostRequirements = { gpu: 'none' };
  for (const entry of entries) {
    const host = hostRequirementsOf(entry);
    for (const field of ['cpuMillis', 'memoryBytes', 'storageBytes'] as const) {
      const value = host[field];
      if (value !== undefined && value > (merged[field] ?? 0)) merged[field] = value;
    }
    if (host.gpu === 'required' || (host.gpu === 'optional' && merged.gpu === 'none')) merged.gpu = host.gpu;
  }
  return merged;
}

/** One resource field raised to an image's hostRequirements (`applyImageHostRequirements`). */
export interface RaisedField {
  field: keyof Resources;
  /** The quantity before (`512Mi`) and after (`3Gi`). */
  from: string;
  to: string;
}

/** What an image's hostRequirements make of an instance's resources (`applyImageHostRequirements`). */
export interface ImageRequirementsOutcome {
  /** The resources to start the instance with (unchanged when `refused` is not empty). */
  resources: Resources;
  /** The fields raised, in order. */
  raised: RaisedField[];
  /** What the instance cannot be given, `[{property, message}]` (`hostRequirements.memory`, …); empty when it can start. */
  refused: { property: string; message: string }[];
  /** All of `refused` in one sentence, for the instance's `error`; undefined when it can start. */
  reason?: string;
  /**
   * Said on the instance when fields were raised (`{property: 'hostRequirements', message}`,
   * each field `from → to`): the caller's own values may be among them, and the create's answer
   * showed the resources before the image was built. Undefined when nothing was raised.
   */
  warning?: PropertyWarning;
}

/** Where an image's hostRequirements come from, as errors say it. */
const FROM_IMAGE = "the image's metadata (its devcontainer.metadata label, from its base image)";

/**
 * Applies the hostRequirements of a built image (`mergeHostRequirements` over its metadata: its
 * base image's, its features' and the config's own) to the resources an instance was created
 * with. They are the instance's minimums, as the config's are at create (the gateway's
 * `applyHostRequirements`), but known only once the image is built, after the create answered:
 *
 * - `cpuMillis` → `cpu_request` at least that (as `2`), `cpu_limit` at least the request;
 *   `memoryBytes` → `memory_request` and `memory_limit` likewise (as `3Gi`); `storageBytes` →
 *   `storage_size`. Every field below is raised, those the caller gave too (the caller could not
 *   know the image's needs; the API then shows the raised values).
 * - A minimum above what the operator allowed the instance (`max`: MAX_CPU_LIMIT,
 *   MAX_MEMORY_LIMIT, MAX_STORAGE_SIZE as recorded at create) → refused, naming the property,
 *   the value asked, the maximum and that the image's metadata asked it; `gpu: 'required'` →
 *   refused (codebay offers no GPUs). Refused: the instance cannot start; nothing is raised.
 *
 * `gpu: 'optional'` is a warning of the image's (`metadataWarnings`), not an outcome here. Pure; never throws.
 */
export function applyImageHostRequirements(
  resources: Resources,
  host: ImageHostRequirements | HostRequirements,
  max: ResourceMaxima,
): ImageRequirementsOutcome {
  const dims = [
    {
      property: 'hostRequirements.cpus',
      minimum: host.cpuMillis,
      request: 'cpu_request',
      limit: 'cpu_limit',
      max: max.cpu,
      what: 'cpu',
      parse: parseCpu,
      format: formatCpu,
      asked: (n: number) => `${n / 1000} cores`,
    },
    {
      property: 'hostRequirements.memory',
      minimum: host.memoryBytes,
      request: 'memory_request',
      limit: 'memory_limit',
      max: max.memory,
      what: 'memory',
      parse: parseMemory,
      format: formatMemory,
      asked: formatMemory,
    },
    {
      property: 'hostRequirements.storage',
      minimum: host.storageBytes,
      request: 'storage_size',
      limit: undefined,
      max: max.storage,
      what: 'workspace storage',
      parse: parseMemory,
      format: formatMemory,
      asked: formatMemory,
    },
  ] as const;
  const refused: ImageRequirementsOutcome['refused'] = [];
  for (const d of dims) {
    const maximum = d.parse(d.max);
    if (d.minimum !== undefined && maximum !== undefined && d.minimum > maximum)
      refused.push({
        property: d.property,
        message: `${d.property}: ${FROM_IMAGE} asks for ${d.asked(d.minimum)}, and this deployment gives an instance at most ${d.max} of ${d.what}`,
      });
  }
  if (host.gpu === 'required')
    refused.push({ property: 'hostRequirements.gpu', message: `hostRequirements.gpu: ${FROM_IMAGE} requires a GPU, and codebay offers none` });
  if (refused.length > 0) {
    const { message } = listProblems(
      refused.map((r) => r.message),
      'hostRequirements problems',
    );
    return { resources, raised: [], refused, reason: `${message}; the image is built, and no instance was started from it` };
  }

  const out: Resources = { ...resources };
  const raised: RaisedField[] = [];
  const raise = (field: keyof Resources, to: string) => {
    raised.push({ field, from: out[field], to });
    out[field] = to;
  };
  for (const d of dims) {
    if (d.minimum === undefined) continue;
    if ((d.parse(out[d.request]) ?? 0) < d.minimum) raise(d.request, d.format(d.minimum));
    if (d.limit && (d.parse(out[d.limit]) ?? 0) < (d.parse(out[d.request]) ?? 0)) raise(d.limit, out[d.request]);
  }
  if (raised.length === 0) return { resources: out, raised, refused };
  const fields = raised.map((r) => `${r.field} ${r.from} → ${r.to}`).join(', ');
  const warning = {
    property: 'hostRequirements',
    message: `hostRequirements: ${FROM_IMAGE} asks for more than the instance was created with; raised ${fields}`,
  };
  return { resources: out, raised, refused, warning };
}
