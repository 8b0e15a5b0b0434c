/** One entry of a build log stream, as the gateway serves it. */
export interface BuildLogLine {
  /** Redis stream id; SSE event id, usable as Last-Event-ID. */
  id: string;
  text: string;
}

/**
 * `cached`: the image was already in the registry, nothing was built. An instance log ends
 * `deleted` (the instance was deleted) or `failure` (it failed).
 */
export type BuildOutcome = 'success' | 'failure' | 'cancelled' | 'skipped' | 'cached' | 'deleted';

/** The two logs of an instance: its build's (`build`), and its container's (`instance`: launcher, lifecycle commands, editor). */
export type LogKind = 'build' | 'instance';

export interface BuildLogEnd {
  id: string;
  outcome: BuildOutcome;
  reason?: string;
}

/** Longest line kept in a build log stream; longer ones are cut with a marker. */
export const MAX_LOG_LINE = 8_192;
/** Approximate cap on the entries of one build's stream (XADD MAXLEN ~). */
export const MAX_LOG_ENTRIES = 20_000;
