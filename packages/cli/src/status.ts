/** A Queued instance's place in the build queue, as the API gives it (`queue`). */
export interface QueueInfo {
  position: number;
  waiting: number;
  estimated_start_seconds: number | null;
}

/** `40 s` under two minutes, `3 min` above (rounded). */
function roughly(seconds: number): string {
  return seconds < 120 ? `${Math.max(1, Math.round(seconds))} s` : `${Math.round(seconds / 60)} min`;
}

/**
 * An instance's status for the progress line: the status, and while it is Queued with a place
 * in the build queue, `Queued (position 3 of 5, about 40 s)` — the estimate left out when the
 * API has none (`estimated_start_seconds: null`).
 */
export function statusText(instance: { status: string; queue?: QueueInfo | null }): string {
  const q = instance.queue;
  if (instance.status !== 'Queued' || !q) return instance.status;
  const estimate = q.estimated_start_seconds === null ? '' : `, about ${roughly(q.estimated_start_seconds)}`;
  return `Queued (position ${q.position} of ${q.waiting}${estimate})`;
}
