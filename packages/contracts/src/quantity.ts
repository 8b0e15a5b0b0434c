/** Kubernetes resource quantities (the seed's `512Mi`, `2Gi`, `200m`, `1`). */

const MEMORY_SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

const MEMORY_RE = /^([0-9]+(?:\.[0-9]+)?)(k|M|G|T|Ki|Mi|Gi|Ti)?$/;
const CPU_RE = /^([0-9]+(?:\.[0-9]+)?)(m)?$/;

/** Bytes of a memory/storage quantity, or undefined when it is not one. */
export function parseMemory(quantity: string): number | undefined {
  const m = MEMORY_RE.exec(quantity);
  if (!m) return undefined;
  const bytes = Math.round(Number(m[1]) * (MEMORY_SUFFIX[m[2] ?? ''] ?? 1));
  // Checked after rounding: a quantity that rounds to 0 would mean "no limit" to the runtime.
  return Number.isFinite(bytes) && bytes > 0 ? bytes : undefined;
}

/** Millicores of a CPU quantity, or undefined when it is not one. */
export function parseCpu(quantity: string): number | undefined {
  const m = CPU_RE.exec(quantity);
  if (!m) return undefined;
  const milli = Math.round(m[2] === 'm' ? Number(m[1]) : Number(m[1]) * 1000);
  return Number.isFinite(milli) && milli > 0 ? milli : undefined;
}

/** Millicores as a Kubernetes CPU quantity: whole cores as `2`, else `1500m`. */
export function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? `${millis / 1000}` : `${millis}m`;
}

/** Bytes as a Kubernetes memory quantity, in the largest binary unit that divides it: `1Gi`, `1536Mi`, `1000` (bytes). */
export function formatMemory(bytes: number): string {
  for (const [suffix, unit] of [
    ['Ti', 1024 ** 4],
    ['Gi', 1024 ** 3],
    ['Mi', 1024 ** 2],
    ['Ki', 1024],
  ] as const) {
    if (bytes % unit === 0) return `${bytes / unit}${suffix}`;
  }
  return `${bytes}`;
}
