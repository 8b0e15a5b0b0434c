import {
  lifecycleStatusSchema,
  propertyWarningSchema,
  type InstanceRecord,
  type LifecycleStatus,
  type PropertyWarning,
  type RuntimeInfo,
} from '@codebay/contracts';
import type { BuildLogStream, InstanceStore, Logger } from '@codebay/platform';
import { setTimeout as sleep } from 'node:timers/promises';
import stripAnsi from 'strip-ansi';
import type { RuntimeDriver } from './runtime/driver.ts';

/** The launcher's lifecycle lines (packages/editor/launcher/launcher.mjs `Lifecycle`): `[codebay-launcher] <ISO time> lifecycle {json}`. */
const LIFECYCLE_LINE = /^\[codebay-launcher\] \S+ lifecycle (\{.*\})$/;
/** A log that ended is followed again after this long, ms, until REFOLLOW_QUIET_ROUNDS rounds in a row bring nothing new. */
const REFOLLOW_DELAY_MS = 1_000;
const REFOLLOW_QUIET_ROUNDS = 2;
/** Lines written to Redis at once. */
const BATCH_LINES = 200;
/** How long lines wait for more before they are written, milliseconds. */
const BATCH_MS = 100;
/**
 * Bytes per second an instance's log may average into Redis (a bucket of BURST_BYTES): the
 * log is the tenant's output, and `yes` in a postStartCommand must not become the platform's
 * load. Lines beyond are counted and said once the rate allows (the container log has them).
 */
const BYTES_PER_SECOND = 64 * 1024;
const BURST_BYTES = 1024 * 1024;
/** Longest line kept, bytes (UTF-8); the rest is cut. */
export const MAX_INSTANCE_LOG_LINE_BYTES = 1024;
/**
 * Lifecycle lines read per second (a bucket of LIFECYCLE_BURST): a real start has a few dozen;
 * more are the tenant's own and are dropped. The record is written at most every RECORD_WRITE_MS.
 */
const LIFECYCLE_LINES_PER_SECOND = 20;
const LIFECYCLE_BURST = 100;
const RECORD_WRITE_MS = 500;
/** How long a deleted instance's log stays (its followers read its end entry), seconds. */
const DELETED_LOG_TTL_SECONDS = 60;
/** Lines of a failed command's output repeated in its warning (the launcher sends at most 5). */
const WARNING_TAIL_LINES = 5;
/** Warnings an instance's log may add to its record (the log is the tenant's: it can write such lines itself). */
const MAX_LOG_WARNINGS = 20;

/** The spec's lifecycle command properties the launcher reports on; any other name in a line is ignored. */
const COMMANDS = new Set(['onCreateCommand', 'updateContentCommand', 'postCreateCommand', 'postStartCommand', 'postAttachCommand']);
const STATES = new Set(['running', 'succeeded', 'failed', 'skipped']);
/**
 * The properties the launcher itself warns about (`warnProperty`): a log line cannot warn about any
 * other. Its extensions warning (the ones that failed to install at start, and those the build
 * could not bake) replaces the build's about the same property.
 */
const LAUNCHER_WARNING_PROPERTIES = new Set(['remoteUser', 'containerUser', 'customizations.vscode.extensions']);

/** One lifecycle line, checked: a command's state, the start's end, or a launcher warning. */
type LifecycleLine =
  | {
      kind: 'command';
      phase: string;
      state: 'running' | 'succeeded' | 'failed' | 'skipped';
      exitCode?: number | null;
      durationMs?: number;
      command?: string;
      tail: string[];
    }
  | { kind: 'started'; ok: boolean }
  | { kind: 'warning'; warning: PropertyWarning };

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A lifecycle line's content, when it is one of the three kinds and well-formed; anything else is plain output. */
export function parseLifecycleLine(text: string): LifecycleLine | undefined {
  const m = LIFECYCLE_LINE.exec(text);
  if (!m) return undefined;
  let v: Record<string, unknown>;
  try {
    const value: unknown = JSON.parse(m[1]!);
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
    v = value as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (v.event === 'started' && typeof v.ok === 'boolean') return { kind: 'started', ok: v.ok };
  if (typeof v.phase === 'string' && COMMANDS.has(v.phase) && typeof v.state === 'string' && STATES.has(v.state)) {
    return {
      kind: 'command',
      phase: v.phase,
      state: v.state as 'running',
      ...(isCount(v.exitCode) && v.exitCode <= 100_000 ? { exitCode: v.exitCode } : v.exitCode === null ? { exitCode: null } : {}),
      ...(isCount(v.durationMs) ? { durationMs: v.durationMs } : {}),
      ...(typeof v.command === 'string' ? { command: v.command.slice(0, 500) } : {}),
      tail: Array.isArray(v.tail) ? v.tail.slice(-WARNING_TAIL_LINES).map((l) => String(l).slice(0, 300)) : [],
    };
  }
  const w = v.warning as { property?: unknown; message?: unknown } | undefined;
  if (w && typeof w.property === 'string' && LAUNCHER_WARNING_PROPERTIES.has(w.property) && typeof w.message === 'string')
    return { kind: 'warning', warning: { property: w.property, message: w.message.slice(0, 1_000) } };
  return undefined;
}

/**
 * The warning for a lifecycle command that failed: which, how, the last lines of its output, and
 * where the rest is. Its property is the command's (`postCreateCommand`).
 */
export function lifecycleFailureWarning(
  phase: string,
  line: { exitCode?: number | null; durationMs?: number; command?: string; tail: string[] },
  instanceId: string,
): PropertyWarning {
  const seconds = typeof line.durationMs === 'number' ? ` after ${(line.durationMs / 1000).toFixed(1)} s` : '';
  const command = line.command ? ` (${line.command.length > 120 ? `${line.command.slice(0, 119)}…` : line.command})` : '';
  const tail = line.tail.slice(-WARNING_TAIL_LINES);
  return {
    property: phase,
    message:
      `${phase} failed with exit code ${line.exitCode ?? 'unknown'}${seconds}${command}; the lifecycle commands after it were skipped.` +
      `${tail.length ? ` Last lines: ${tail.join(' | ')}.` : ''} Its whole output: GET /api/instances/${instanceId}/logs (codebay logs ${instanceId})`,
  };
}

/** A line as it is kept: terminal escapes and control characters but tabs removed, at most MAX_INSTANCE_LOG_LINE_BYTES of UTF-8. */
export function cleanLine(text: string): string {
  const clean = stripAnsi(text).replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, '');
  if (Buffer.byteLength(clean) <= MAX_INSTANCE_LOG_LINE_BYTES) return clean;
  return `${Buffer.from(clean)
    .subarray(0, MAX_INSTANCE_LOG_LINE_BYTES)
    .toString('utf8')
    .replace(/\uFFFD$/, '')} …[line cut]`;
}

export interface InstanceLogDeps {
  store: InstanceStore;
  /** The instance log streams (`BuildLogStream` of kind `instance`). */
  logs: BuildLogStream;
  driver: RuntimeDriver;
  logger: Logger;
}

/**
 * Mirrors each instance container's log into its instance log stream (Redis,
 * `codebay:instance:<id>:logs`, served by the gateway at `/api/instances/<id>/logs`) and reads
 * the launcher's lifecycle lines into the record (`lifecycle`; a failed command also becomes a
 * warning). One follower per instance and process, from the container's start until its log ends
 * (the container stopped or was removed); a provisioner that starts again resumes the Running
 * instances' logs after the last line mirrored (`resume`). Runtimes without `followLog` mirror nothing.
 */
export class InstanceLogMirror {
  private readonly following = new Map<string, { controller: AbortController; done: Promise<void> }>();
  private stopped = false;

  constructor(private readonly deps: InstanceLogDeps) {}

  /** Whether this process follows the instance's log now. */
  isFollowing(instanceId: string): boolean {
    return this.following.has(instanceId);
  }

  /**
   * Starts following the instance's container log (no-op when already followed, or when the
   * runtime cannot). Returns at once; the follower ends by itself when the log does.
   */
  follow(record: InstanceRecord, runtime: RuntimeInfo): void {
    const { driver, logs, logger } = this.deps;
    if (this.stopped || !driver.followLog || this.following.has(record.id)) return;
    const controller = new AbortController();
    const done = (async () => {
      const writer = new LineWriter(this.deps, record, logger);
      let last: string | undefined = await logs.lastAt(record.id).catch(() => undefined);
      try {
        // A log that ends while its container still runs (the runtime cut the stream) is followed
        // again after its last line; one that ends with nothing new means the container stopped.
        for (let quiet = 0; quiet < REFOLLOW_QUIET_ROUNDS && !controller.signal.aborted;) {
          const before = last;
          try {
            await driver.followLog!(record, runtime, last, (at, text) => ((last = at), writer.push(at, text)), controller.signal);
          } catch (err) {
            if (!controller.signal.aborted) logger.warn({ instanceId: record.id, err: (err as Error).message }, 'instance log: cannot follow it');
          }
          quiet = last === before ? quiet + 1 : 0;
          if (!controller.signal.aborted) await sleep(REFOLLOW_DELAY_MS, undefined, { signal: controller.signal }).catch(() => undefined);
        }
      } finally {
        await writer.close();
        if (this.following.get(record.id)?.controller === controller) this.following.delete(record.id);
      }
    })();
    this.following.set(record.id, { controller, done });
  }

  /** Stops following the instance's log (it is being removed). */
  stop(instanceId: string): void {
    this.following.get(instanceId)?.controller.abort();
    this.following.delete(instanceId);
  }

  /**
   * Ends the instance's log for good (`failure` with the reason, or `deleted`): its follower
   * stops once the lines it read are written, then the log's end entry goes in (followers of
   * the log through the gateway end there; the log expires a week later).
   */
  async end(instanceId: string, outcome: 'failure' | 'deleted', reason?: string): Promise<void> {
    const following = this.following.get(instanceId);
    this.stop(instanceId);
    await following?.done;
    // A deleted instance's log goes soon after (its record does too); a failed one's stays a week.
    await this.deps.logs.end(instanceId, outcome, reason, outcome === 'deleted' ? DELETED_LOG_TTL_SECONDS : undefined);
  }

  /** Follows again the logs of the Running instances this runtime holds (a provisioner that starts). */
  async resume(driverName: RuntimeInfo['driver']): Promise<number> {
    const records = await this.deps.store.many(await this.deps.store.allIds());
    let n = 0;
    for (const record of records) {
      if (record.status !== 'Running' || record.runtime?.driver !== driverName) continue;
      this.follow(record, record.runtime);
      n += 1;
    }
    return n;
  }

  /** Stops every follower (the provisioner stops). */
  close(): void {
    this.stopped = true;
    for (const { controller } of this.following.values()) controller.abort();
    this.following.clear();
  }
}

/**
 * Batches one instance's lines into its stream within the byte budget, and reads its lifecycle
 * lines (within their own budget) into the record, at most every RECORD_WRITE_MS: one read and
 * one checked write of the record however many lines came.
 */
class LineWriter {
  private lines: string[] = [];
  private ats: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private tokens = BURST_BYTES;
  private lifecycleTokens = LIFECYCLE_BURST;
  private refilledAt = Date.now();
  private dropped = 0;
  /** Lifecycle lines read and not yet written to the record (at most LIFECYCLE_BURST). */
  private pending: { line: LifecycleLine; at: string }[] = [];
  private recordTimer: NodeJS.Timeout | undefined;
  private lifecycle: LifecycleStatus | undefined;

  constructor(
    private readonly deps: InstanceLogDeps,
    private readonly record: InstanceRecord,
    private readonly logger: Logger,
  ) {}

  push(at: string, raw: string): void {
    const text = cleanLine(raw);
    const bytes = Buffer.byteLength(text) + 1;
    const now = Date.now();
    const seconds = (now - this.refilledAt) / 1000;
    this.refilledAt = now;
    this.tokens = Math.min(BURST_BYTES, this.tokens + seconds * BYTES_PER_SECOND);
    this.lifecycleTokens = Math.min(LIFECYCLE_BURST, this.lifecycleTokens + seconds * LIFECYCLE_LINES_PER_SECOND);
    const lifecycleLine = this.lifecycleTokens >= 1 ? parseLifecycleLine(text) : undefined;
    if (lifecycleLine) {
      this.lifecycleTokens -= 1;
      if (this.pending.length < LIFECYCLE_BURST) this.pending.push({ line: lifecycleLine, at });
      this.recordTimer ??= setTimeout(() => this.enqueue(() => this.writeRecord()), RECORD_WRITE_MS);
    }
    // Lifecycle lines within their budget always go into the log: they are what the user looks for.
    if (this.tokens < bytes && !lifecycleLine) {
      this.dropped += 1;
      return;
    }
    this.tokens -= bytes;
    if (this.dropped > 0) {
      this.lines.push(
        `[codebay] ${this.dropped} line(s) left out here: the instance wrote more than ${BYTES_PER_SECOND / 1024} KiB/s (the container's own log has them)`,
      );
      this.ats.push(at);
      this.dropped = 0;
    }
    this.lines.push(text);
    this.ats.push(at);
    if (this.lines.length >= BATCH_LINES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const lines = this.lines.splice(0);
    const ats = this.ats.splice(0);
    if (lines.length) this.enqueue(() => this.deps.logs.append(this.record.id, lines, ats));
  }

  /** Writes happen in order, one at a time; a failed one is logged, not retried (the container log keeps everything). */
  private enqueue(write: () => Promise<unknown>): void {
    this.writing = this.writing.then(write).then(
      () => undefined,
      (err: Error) => this.logger.warn({ instanceId: this.record.id, err: err.message }, 'instance log: write failed'),
    );
  }

  /** Applies the pending lifecycle lines to the record in one checked write. */
  private async writeRecord(): Promise<void> {
    clearTimeout(this.recordTimer);
    this.recordTimer = undefined;
    const lines = this.pending.splice(0);
    if (lines.length === 0) return;
    const { store } = this.deps;
    const current = await store.get(this.record.id);
    if (!current || current.status === 'Deleting' || current.status === 'Deleted') return;
    let lifecycle = this.lifecycle ?? current.lifecycle ?? undefined;
    const added = new Map<string, PropertyWarning>();
    for (const { line, at } of lines) {
      if (line.kind === 'warning') {
        added.set(line.warning.property, line.warning);
        continue;
      }
      // The launcher of a container started again reports from the start: a new lifecycle.
      if (!lifecycle || (line.kind === 'command' && line.state === 'running' && lifecycle.ended))
        lifecycle = { waitFor: current.launch?.waitFor ?? 'updateContentCommand', commands: {}, ended: false, ok: true };
      if (line.kind === 'started') {
        lifecycle = { ...lifecycle, ended: true, ok: line.ok && lifecycle.ok };
        continue;
      }
      const status = {
        state: line.state,
        at,
        ...(line.exitCode !== undefined ? { exitCode: line.exitCode } : {}),
        ...(line.durationMs !== undefined ? { durationMs: line.durationMs } : {}),
      };
      lifecycle = { ...lifecycle, commands: { ...lifecycle.commands, [line.phase]: status } };
      if (line.state === 'failed') {
        // A failed postAttachCommand stops nothing after it: the start's lifecycle stays as it was.
        if (line.phase !== 'postAttachCommand') lifecycle.ok = false;
        added.set(line.phase, lifecycleFailureWarning(line.phase, line, this.record.id));
      }
    }
    const patch: Partial<InstanceRecord> = {};
    if (lifecycle) {
      const checked = lifecycleStatusSchema.safeParse(lifecycle);
      if (!checked.success) return void this.logger.warn({ instanceId: this.record.id }, 'instance log: a lifecycle that does not check out; not written');
      this.lifecycle = lifecycle;
      patch.lifecycle = checked.data;
    }
    if (added.size > 0) {
      // The log's warnings replace their own kind (by property), never the config's; at most MAX_LOG_WARNINGS of them.
      const fromLog = (w: PropertyWarning) => COMMANDS.has(w.property) || LAUNCHER_WARNING_PROPERTIES.has(w.property);
      const kept = (current.warnings ?? []).filter((w) => !added.has(w.property));
      const logWarnings = kept.filter(fromLog).length;
      const fresh = [...added.values()].slice(0, Math.max(0, MAX_LOG_WARNINGS - logWarnings)).filter((w) => propertyWarningSchema.safeParse(w).success);
      patch.warnings = [...kept, ...fresh];
    }
    await store.patch(this.record.id, patch);
  }

  async close(): Promise<void> {
    this.flush();
    if (this.recordTimer) this.enqueue(() => this.writeRecord());
    await this.writing;
  }
}
