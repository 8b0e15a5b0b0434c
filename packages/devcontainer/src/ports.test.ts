import { describe, expect, it } from 'vitest';
import { forwardedPorts } from './ports.ts';

describe('forwardedPorts', () => {
  it('lists forwardPorts as people write them, with their portsAttributes labels', () => {
    const r = forwardedPorts({
      forwardPorts: [3000, '5173', 'localhost:8000', 3000],
      portsAttributes: { '3000': { label: 'App' }, '8000': { label: 'API' } },
    });
    expect(r.ports).toEqual([{ port: 3000, label: 'App' }, { port: 5173 }, { port: 8000, label: 'API' }]);
    expect(r.warnings).toEqual([]);
  });

  it('says what it does not apply: another host’s port, the editor’s port, local-forwarding attributes, patterns, otherPortsAttributes', () => {
    const r = forwardedPorts({
      forwardPorts: ['db:5432', 8080, 4000],
      portsAttributes: { '4000': { label: 'x', onAutoForward: 'openBrowser', protocol: 'https' }, '9000-9100': { label: 'range' } },
      otherPortsAttributes: { onAutoForward: 'ignore' },
    });
    expect(r.ports).toEqual([{ port: 4000, label: 'x' }]);
    expect(r.warnings.map((w) => w.property)).toEqual(['forwardPorts', 'forwardPorts', 'portsAttributes', 'portsAttributes', 'otherPortsAttributes']);
    const text = r.warnings.map((w) => w.message).join('\n');
    expect(text).toMatch(/forwardPorts: 8080 is the editor's own port/);
    expect(text).toMatch(/forwardPorts: db:5432: not forwarded: another host's port/);
    expect(text).toMatch(/portsAttributes: onAutoForward, protocol: https .* not applied/);
    expect(text).toMatch(/portsAttributes: 9000-9100: attributes of port ranges or patterns are not shown/);
  });

  it('skips what is no port, and lists at most 50', () => {
    expect(forwardedPorts({ forwardPorts: [0, 70000, 'x', -1, 1.5, null] }).ports).toEqual([]);
    const many = forwardedPorts({ forwardPorts: Array.from({ length: 80 }, (_, i) => 10000 + i) });
    expect(many.ports).toHaveLength(50);
    expect(many.warnings[0]!.message).toMatch(/only the first 50 are listed/);
  });
});
