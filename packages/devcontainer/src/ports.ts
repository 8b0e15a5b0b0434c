import { INSTANCE_EDITOR_PORT, type ForwardedPort, type PropertyWarning } from '@codebay/contracts';
import type { DevcontainerConfig } from './parse.ts';

/** At most this many forwardPorts are listed on an instance (the rest are said in a warning). */
export const MAX_FORWARDED_PORTS = 50;
/** Longest `portsAttributes` label kept (characters). */
const MAX_LABEL = 200;

const HOW = 'every port of the instance is reachable at its own origin, <id>-<port>.<domain>';

function portNumber(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d{1,5}$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}

/**
 * The ports an instance lists (`forwardPorts`, containers.dev/implementors/json_reference: "An
 * array of port numbers or "host:port" values … that should always be forwarded from inside the
 * primary container to the local machine"), each with its `portsAttributes` label, and warnings
 * for what is not applied: a `host:port` naming another host (a Compose service: codebay runs one
 * container), the editor's own port, port attributes other than `label` (`onAutoForward`,
 * `elevateIfNeeded`, `requireLocalPort`: about a local machine's forwarding; `protocol: https`:
 * the gateway speaks http to the instance), attributes of port ranges or patterns, and
 * `otherPortsAttributes`. Every port is reachable whether listed or not; the list is what the API
 * shows. Pure; never throws; at most MAX_FORWARDED_PORTS ports.
 */
export function forwardedPorts(config: DevcontainerConfig): { ports: ForwardedPort[]; warnings: PropertyWarning[] } {
  const warnings: PropertyWarning[] = [];
  const warn = (property: string, message: string) => warnings.push({ property, message: `${property}: ${message}` });
  const ports: ForwardedPort[] = [];
  const attributes = config.portsAttributes && typeof config.portsAttributes === 'object' ? (config.portsAttributes as Record<string, unknown>) : {};
  const foreign: string[] = [];
  const list = Array.isArray(config.forwardPorts) ? config.forwardPorts : [];
  for (const entry of list) {
    let port = portNumber(entry);
    if (port === undefined && typeof entry === 'string') {
      const m = /^(.*):(\d{1,5})$/.exec(entry);
      if (m && ['localhost', '127.0.0.1', '0.0.0.0'].includes(m[1]!)) port = portNumber(m[2]);
      else foreign.push(entry.slice(0, 60));
    }
    if (port === undefined) continue;
    if (port === INSTANCE_EDITOR_PORT) {
      warn('forwardPorts', `${port} is the editor's own port in the instance; an application there cannot be reached`);
      continue;
    }
    if (ports.some((p) => p.port === port)) continue;
    if (ports.length >= MAX_FORWARDED_PORTS) {
      warn('forwardPorts', `only the first ${MAX_FORWARDED_PORTS} are listed (${HOW})`);
      break;
    }
    const attrs = attributes[String(port)];
    const label =
      attrs && typeof attrs === 'object' && typeof (attrs as Record<string, unknown>).label === 'string'
        ? ((attrs as Record<string, unknown>).label as string)
        : undefined;
    ports.push(label ? { port, label: label.slice(0, MAX_LABEL) } : { port });
  }
  if (foreign.length > 0)
    warn('forwardPorts', `${foreign.slice(0, 5).join(', ')}: not forwarded: another host's port (a Compose service); an instance is one container`);

  const unapplied = new Set<string>();
  const patterns: string[] = [];
  for (const [key, attrs] of Object.entries(attributes)) {
    if (!attrs || typeof attrs !== 'object') continue;
    const a = attrs as Record<string, unknown>;
    if (portNumber(key) === undefined && Object.keys(a).length > 0) patterns.push(key.slice(0, 40));
    for (const name of Object.keys(a)) {
      if (name === 'label') continue;
      if (name === 'protocol' && a.protocol !== 'https') continue;
      unapplied.add(name === 'protocol' ? 'protocol: https (the gateway speaks http to the instance)' : name);
    }
  }
  if (unapplied.size > 0)
    warn(
      'portsAttributes',
      `${[...unapplied].slice(0, 6).join(', ')} not applied: they are about forwarding to a local machine; ${HOW}, and its label is shown`,
    );
  if (patterns.length > 0)
    warn('portsAttributes', `${patterns.slice(0, 5).join(', ')}: attributes of port ranges or patterns are not shown; list the ports in forwardPorts`);
  const other = config.otherPortsAttributes;
  if (other && typeof other === 'object' && Object.keys(other).length > 0) warn('otherPortsAttributes', `not applied: ${HOW}`);
  return { ports, warnings };
}
