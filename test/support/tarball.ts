import { gzipSync } from 'node:zlib';

/**
 * Raw tar writing, header by header, so tests can make archives no well-behaved
 * tar tool would: `../` paths, absolute paths, links out of the root, devices, fifos.
 */
export interface RawEntry {
  path: string;
  /** ustar type flag: '0' file, '1' hard link, '2' symlink, '3' char device, '4' block device, '5' directory, '6' fifo, 'x' pax header. */
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6' | 'x' | 'L';
  data?: Buffer | string;
  /** Size written in the header; defaults to the data's length. */
  size?: number;
  linkpath?: string;
  mode?: number;
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

export function tarHeader(e: RawEntry): Buffer {
  const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
  const h = Buffer.alloc(512);
  const type = e.type ?? '0';
  h.write(e.path, 0, 100, 'utf8');
  h.write(octal(e.mode ?? (type === '5' ? 0o755 : 0o644), 8), 100, 'ascii');
  h.write(octal(1000, 8), 108, 'ascii');
  h.write(octal(1000, 8), 116, 'ascii');
  h.write(octal(e.size ?? data.length, 12), 124, 'ascii');
  h.write(octal(Math.floor(Date.UTC(2024, 0, 1) / 1000), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(type, 156, 'ascii');
  if (e.linkpath) h.write(e.linkpath, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write('user', 265, 'ascii');
  h.write('user', 297, 'ascii');
  h.write(octal(0, 8), 329, 'ascii');
  h.write(octal(0, 8), 337, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

function pad(data: Buffer): Buffer {
  const rest = data.length % 512;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(512 - rest)]);
}

/** A pax extended header record (`<len> key=value\n`, the length counting itself). */
export function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return `${len}${body}`;
}

/** An uncompressed tar of the entries, with the two zero blocks at the end. */
export function rawTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(tarHeader(e));
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : (e.data ?? Buffer.alloc(0));
    if (data.length > 0) parts.push(pad(data));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function rawTarGz(entries: RawEntry[]): Buffer {
  return gzipSync(rawTar(entries));
}
