import type { InstanceRecord } from '@codebay/contracts';
import type { BuildLogStream, LogEntry, Redis } from '@codebay/platform';
import type { Request, Response } from 'express';

const HEARTBEAT_MS = 15_000;

function sse(res: Response, entry: LogEntry): void {
  if (entry.kind === 'line') {
    res.write(`id: ${entry.line.id}\nevent: line\ndata: ${JSON.stringify({ text: entry.line.text })}\n\n`);
  } else {
    res.write(`id: ${entry.end.id}\nevent: end\ndata: ${JSON.stringify({ outcome: entry.end.outcome, reason: entry.end.reason ?? null })}\n\n`);
  }
}

/**
 * Serves a build's log stream as Server-Sent Events until its end entry, resuming
 * after `Last-Event-ID` (or `?after=`). Simple instances have no build: one end event says so.
 */
export async function followBuildLogs(req: Request, res: Response, record: InstanceRecord, logs: BuildLogStream, redis: Redis): Promise<void> {
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
  const abort = new AbortController();
  const blocking = redis.duplicate();
  const heartbeat = setInterval(() => res.write(`: keep-alive\n\n`), HEARTBEAT_MS);
  // Closing the blocking connection ends a pending XREAD at once when the client goes away.
  const stop = () => {
    abort.abort();
    blocking.disconnect();
  };
  req.on('close', stop);
  try {
    for await (const entry of logs.follow(blocking, record.id, cursor, abort.signal)) {
      sse(res, entry);
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearInterval(heartbeat);
    req.off('close', stop);
    blocking.disconnect();
    res.end();
  }
}
