import type { InstanceRecord } from '@codebay/contracts';
import type { LogEntry, LogFollowers } from '@codebay/platform';
import type { Request, Response } from 'express';

const HEARTBEAT_MS = 15_000;

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
 * Serves a build's log stream as Server-Sent Events until its end entry, resuming
 * after `Last-Event-ID` (or `?after=`). Simple instances have no build: one end event says so.
 * Entries come from the process's shared reader (one Redis connection for all followers).
 */
export async function followBuildLogs(req: Request, res: Response, record: InstanceRecord, followers: LogFollowers): Promise<void> {
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(`retry: 2000\n\n`);
  if (record.source === 'simple') {
    res.write(`event: end\ndata: ${JSON.stringify({ outcome: 'skipped', reason: 'simple instances have no build' })}\n\n`);
    res.end();
    return;
  }
  const after = (req.get('last-event-id') ?? (typeof req.query.after === 'string' ? req.query.after : undefined) ?? '0').trim();
  const cursor = /^[0-9]+(-[0-9]+)?$/.test(after) ? after : '0';
  const heartbeat = setInterval(() => res.write(`: keep-alive\n\n`), HEARTBEAT_MS);
  await new Promise<void>((resolve) => {
    const subscription = followers.subscribe(record.id, cursor, (entries) => {
      // One write per batch: a build's lines arrive in bursts.
      res.write(entries.map(sseEvent).join(''));
      if (entries.at(-1)?.kind === 'end') finish();
    });
    function finish() {
      subscription.close();
      clearInterval(heartbeat);
      req.off('close', finish);
      res.end();
      resolve();
    }
    req.on('close', finish);
  });
}
