import type { InstanceRecord } from '@codebay/contracts';

/** The phases of time-to-editor, in order, and the record timestamps that bound each. */
export const EDITOR_PHASES = [
  ['queued', 'queuedAt', 'buildStartedAt'],
  ['build', 'buildStartedAt', 'buildEndedAt'],
  ['push', 'buildEndedAt', 'pushEndedAt'],
  ['provision', 'provisionStartedAt', 'containerStartedAt'],
  ['editor_start', 'containerStartedAt', 'runningAt'],
] as const;

export type EditorPhase = (typeof EDITOR_PHASES)[number][0];
export type CacheLabel = 'hit' | 'miss' | 'none';

export interface TimeToEditor {
  cache: CacheLabel;
  /** Queued (or created) → the editor answering, seconds. */
  total: number;
  /** Seconds per phase that took place (a cache hit has no build or push; a simple instance no queue for a builder). */
  phases: Partial<Record<EditorPhase, number>>;
}

/**
 * How long an instance took to reach a working editor, from the timestamps its record gathered on
 * the way (gateway, builder, provisioner), for `codebay_time_to_editor_seconds{cache}` and
 * `codebay_instance_phase_duration_seconds{phase,cache}`. Undefined for a record that is not
 * Running with a `runningAt`. A phase whose bounds are missing or out of order is left out: the
 * push, when the instance started from its builder's own image before the push ended.
 */
export function timeToEditor(record: InstanceRecord): TimeToEditor | undefined {
  if (record.status !== 'Running' || !record.runningAt) return undefined;
  const at = (field: keyof InstanceRecord) => {
    const v = record[field];
    return typeof v === 'string' ? Date.parse(v) : NaN;
  };
  const start = Number.isFinite(at('queuedAt')) ? at('queuedAt') : at('createdAt');
  const phases: Partial<Record<EditorPhase, number>> = {};
  for (const [phase, from, to] of EDITOR_PHASES) {
    const seconds = (at(to) - at(from)) / 1000;
    if (Number.isFinite(seconds) && seconds >= 0) phases[phase] = seconds;
  }
  return { cache: record.build?.cache ?? 'none', total: Math.max(0, (at('runningAt') - start) / 1000), phases };
}
