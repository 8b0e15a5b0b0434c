export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** Reads a Server-Sent Events response until `until` says stop or the stream ends. */
export async function readSse(res: Response, until: (e: SseEvent) => boolean, timeoutMs: number): Promise<SseEvent[]> {
  if (!res.body) throw new Error('no body');
  const events: SseEvent[] = [];
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const timer = setTimeout(() => void reader.cancel(new Error('SSE timeout')), timeoutMs);
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let sep: number;
      while ((sep = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, sep);
        buffer = buffer.slice(sep + 2);
        const e: SseEvent = { event: 'message', data: '' };
        let hasData = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) continue;
          const [k, ...rest] = line.split(':');
          const v = rest.join(':').replace(/^ /, '');
          if (k === 'id') e.id = v;
          else if (k === 'event') e.event = v;
          else if (k === 'data') {
            e.data += (hasData ? '\n' : '') + v;
            hasData = true;
          }
        }
        if (!hasData) continue;
        events.push(e);
        if (until(e)) return events;
      }
    }
    return events;
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => undefined);
  }
}
