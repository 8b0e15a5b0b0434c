import type { InstanceRecord, LifecycleStatus, PropertyWarning, RuntimeInfo } from '@codebay/contracts';
import type { BuildLogStream, InstanceStore, Logger } from '@codebay/platform';
import { setTimeout as sleep } from 'node:timers/promises';
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
/** Lines of a failed command's output repeated in its warning (the launcher sends at most 5). */
const WARNING_TAIL_LINES = 5;
/** Warnings an instance's log may add to its record (the log is the tenant's: it can write such lines itself). */
const MAX_WARNINGS = 50;

/** `warnings` with `warning` in place of any of its property, unless that would pass MAX_WARNINGS. */
function withWarning(warnings: readonly PropertyWarning[], warning: PropertyWarning): PropertyWarning[] | undefined {
  const others = warnings.filter((w) => w.property !== warning.property);
  return others.length >= MAX_WARNINGS ? undefined : [...others, warning];
}

/** The spec's lifecycle command properties the launcher reports on; any other name in a line is ignored. */
const COMMANDS = new Set(['onCreateCommand', 'updateContentCommand', 'postCreateCommand', 'postStartCommand', 'postAttachCommand']);
const STATES = new Set(['running', 'succeeded', 'failed', 'skipped']);

interface LifecycleLine {
  phase?: string;
  state?: 'running' | 'succeeded' | 'failed' | 'skipped';
  event?: string;
  ok?: boolean;
  exitCode?: number | null;
  durationMs?: number;
  command?: string | null;
  tail?: string[];
  reason?: string;
  /** A property the launcher could not apply as written (`remoteUser` it cannot switch to, …). */
  warning?: { property?: unknown; message?: unknown };
}

function parseLifecycleLine(text: string): LifecycleLine | undefined {
  const m = LIFECYCLE_LINE.exec(text);
  if (!m) return undefined;
  try {
    const value: unknown = JSON.parse(m[1]!);
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as LifecycleLine) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The warning for a lifecycle command that failed: which, how, the last lines of its output, and
 * where the rest is. Its property is the command's (`postCreateCommand`).
 */
export function lifecycleFailureWarning(phase: string, line: LifecycleLine, instanceId: string): PropertyWarning {
  const seconds = typeof line.durationMs === 'number' ? ` after ${(line.durationMs / 1000).toFixed(1)} s` : '';
  const command = line.command ? ` (${line.command.length > 120 ? `${line.command.slice(0, 119)}…` : line.command})` : '';
  const tail = (line.tail ?? []).slice(-WARNING_TAIL_LINES).map((l) => String(l).slice(0, 300));
  return {
    property: phase,
    message:
      `${phase} failed with exit code ${line.exitCode ?? 'unknown'}${seconds}${command}; the lifecycle commands after it were skipped.` +
      `${tail.length ? ` Last lines: ${tail.join(' | ')}.` : ''} Its whole output: GET /api/instances/${instanceId}/logs (codebay logs ${instanceId})`,
  };
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
    await this.deps.logs.end(instanceId, outcome, reason);
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

/** Batches one instance's lines into its stream, rate-limited, and applies its lifecycle lines to the record. */
class LineWriter {
  private lines: string[] = [];
  private ats: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private tokens = BURST_BYTES;
  private refilledAt = Date.now();
  private dropped = 0;
  private lifecycle: LifecycleStatus | undefined;

  constructor(
    private readonly deps: InstanceLogDeps,
    private readonly record: InstanceRecord,
    private readonly logger: Logger,
  ) {}

  push(at: string, text: string): void {
    const lifecycleLine = parseLifecycleLine(text);
    if (lifecycleLine) this.enqueue(() => this.apply(lifecycleLine, at));
    const now = Date.now();
    this.tokens = Math.min(BURST_BYTES, this.tokens + ((now - this.refilledAt) / 1000) * BYTES_PER_SECOND);
    this.refilledAt = now;
    // Lifecycle lines always go through: they are what the user looks for.
    if (this.tokens < text.length && !lifecycleLine) {
      this.dropped += 1;
      return;
    }
    this.tokens -= text.length + 1;
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

  private async apply(line: LifecycleLine, at: string): Promise<void> {
    const { store } = this.deps;
    const current = await store.get(this.record.id);
    if (!current || current.status === 'Deleting' || current.status === 'Deleted') return;
    let lifecycle = this.lifecycle ?? current.lifecycle ?? undefined;
    const startsAgain = line.phase !== undefined && line.state === 'running' && lifecycle?.ended === true;
    if (!lifecycle || startsAgain) lifecycle = { waitFor: current.launch?.waitFor ?? 'updateContentCommand', commands: {}, ended: false, ok: true };
    const patch: Partial<InstanceRecord> = {};
    if (line.warning) {
      const { property, message } = line.warning;
      if (typeof property !== 'string' || typeof message !== 'string') return;
      const warning = { property: property.slice(0, 200), message: message.slice(0, 1_000) };
      const warnings = withWarning(current.warnings ?? [], warning);
      if (warnings) await store.patch(this.record.id, { warnings });
      return;
    }
    if (line.event === 'started') {
      lifecycle = { ...lifecycle, ended: true, ok: line.ok !== false && lifecycle.ok };
    } else if (typeof line.phase === 'string' && COMMANDS.has(line.phase) && typeof line.state === 'string' && STATES.has(line.state)) {
      const status = {
        state: line.state,
        at,
        ...(typeof line.exitCode === 'number' || line.exitCode === null ? { exitCode: line.exitCode } : {}),
        ...(typeof line.durationMs === 'number' ? { durationMs: line.durationMs } : {}),
      };
      lifecycle = { ...lifecycle, commands: { ...lifecycle.commands, [line.phase]: status } };
      if (line.state === 'failed') {
        // A failed postAttachCommand stops nothing after it: the start's lifecycle stays as it was.
        if (line.phase !== 'postAttachCommand') lifecycle.ok = false;
        const warnings = withWarning(current.warnings ?? [], lifecycleFailureWarning(line.phase, line, this.record.id));
        if (warnings) patch.warnings = warnings;
      }
    } else return;
    this.lifecycle = lifecycle;
    await store.patch(this.record.id, { ...patch, lifecycle });
  }

  async close(): Promise<void> {
    this.flush();
    await this.writing;
  }
}
