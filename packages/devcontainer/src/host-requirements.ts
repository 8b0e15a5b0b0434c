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
