/**
 * A lifecycle command (exec form) that serves HTTP on each of `ports` in the foreground with the
 * editor bundle's Node (every instance has it at /opt/codebay/editor/bin/node): it answers
 * `app-<port> <method> <url>` and accepts WebSocket handshakes by hand. For postStartCommand:
 * the editor does not wait for it (waitFor's default).
 */
export function portAppCommand(ports: number[]): string[] {
  const server = [
    "const http = require('http'), crypto = require('crypto');",
    'const app = (name) => { const s = http.createServer((q, r) => r.end(`${name} ${q.method} ${q.url}`));',
    "  s.on('upgrade', (q, sock) => { const k = crypto.createHash('sha1').update(q.headers['sec-websocket-key'] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');",
    "    sock.end('HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: ' + k + '\\r\\n\\r\\n'); });",
    '  return s; };',
    `for (const port of ${JSON.stringify(ports)}) app('app-' + port).listen(port, () => console.log('listening on ' + port));`,
  ].join('\n');
  return ['/opt/codebay/editor/bin/node', '-e', server];
}
