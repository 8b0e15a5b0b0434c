/** One entry of a build log stream, as the gateway serves it. */
export interface BuildLogLine {
  /** Redis stream id; SSE event id, usable as Last-Event-ID. */
  id: string;
  text: string;
}

/** `cached`: the image was already in the registry, nothing was built. */
export type BuildOutcome = 'success' | 'failure' | 'cancelled' | 'skipped' | 'cached';

export interface BuildLogEnd {
  id: string;
  outcome: BuildOutcome;
  reason?: string;
}

/** Longest line kept in a build log stream; longer ones are cut with a marker. */
export const MAX_LOG_LINE = 8_192;
/** Approximate cap on the entries of one build's stream (XADD MAXLEN ~). */
export const MAX_LOG_ENTRIES = 20_000;
