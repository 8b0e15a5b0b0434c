import { TooManyRequestsError, type InstanceRecord, type LogKind } from '@codebay/contracts';
import type { LogEntry, LogFollowers } from '@codebay/platform';
import type { Request, Response } from 'express';

const HEARTBEAT_MS = 15_000;
/** Bytes a follower may leave unread before it is cut off (it resumes with Last-Event-ID when it reads again). */
export const MAX_UNREAD_BYTES = 1024 * 1024;
/** Followers one instance's log may have at once. */
export const MAX_FOLLOWERS_PER_INSTANCE = 20;

/** Each entry is formatted once, however many followers it goes to (they share the objects). */
const formatted = new WeakMap<LogEntry, string>();

function sseEvent(entry: LogEntry): string {
  let text = formatted.get(entry);
  if (text === undefined) {
    text =
      entry.kind === 'line'
        ? `id: ${entry.line.id}\nevent: line\ndata: ${JSON.stringify({ text: entry.line.text })}\n\n`
        : `id: ${entry.end.id}\nevent: end\ndata: ${JSON.stringify({ outcome: entry.end.outcome, reason: entry.end.reason ?? null })}\n\n`;
    formatted.set(entry, text);
  }
  return text;
}

/**
 * Serves an instance's log stream of `kind` (its build's, or its container's) as Server-Sent
 * Events until its end entry, resuming after `Last-Event-ID` (or `?after=`). Simple instances
 * have no build: one end event says so.
 * Entries come from the process's shared reader (one Redis connection for all followers).
 * A client that stops reading is cut off once MAX_UNREAD_BYTES wait for it (the gateway's
 * memory is everyone's), and an instance has at most MAX_FOLLOWERS_PER_INSTANCE (429).
 */
export async function followBuildLogs(req: Request, res: Response, record: InstanceRecord, followers: LogFollowers, kind: LogKind = 'build'): Promise<void> {
  if (followers.count(record.id, kind) >= MAX_FOLLOWERS_PER_INSTANCE) {
    throw new TooManyRequestsError(`instance ${record.id} already has ${MAX_FOLLOWERS_PER_INSTANCE} ${kind}-log followers; close one first`);
  }
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(`retry: 2000\n\n`);
  if (kind === 'build' && record.source === 'simple') {
    res.write(`event: end\ndata: ${JSON.stringify({ outcome: 'skipped', reason: 'simple instances have no build' })}\n\n`);
    res.end();
    return;
  }
  const after = (req.get('last-event-id') ?? (typeof req.query.after === 'string' ? req.query.after : undefined) ?? '0').trim();
  const cursor = /^[0-9]+(-[0-9]+)?$/.test(after) ? after : '0';
  const heartbeat = setInterval(() => res.write(`: keep-alive\n\n`), HEARTBEAT_MS);
  await new Promise<void>((resolve) => {
    const subscription = followers.subscribe(
      record.id,
      cursor,
      (entries) => {
        // One write per batch: a build's lines arrive in bursts.
        res.write(entries.map(sseEvent).join(''));
        if (entries.at(-1)?.kind === 'end') finish();
        else if (res.writableLength > MAX_UNREAD_BYTES) finish(true);
      },
      kind,
    );
    function finish(cutOff = false) {
      subscription.close();
      clearInterval(heartbeat);
      req.off('close', onClose);
      followers.closed.removeEventListener('abort', onClose);
      if (cutOff) res.destroy();
      else res.end();
      resolve();
    }
    function onClose() {
      finish();
    }
    req.on('close', onClose);
    // The gateway is shutting down: the stream ends, and the client resumes from its last event on another.
    if (followers.closed.aborted) finish();
    else followers.closed.addEventListener('abort', onClose);
  });
}
