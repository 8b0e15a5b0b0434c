import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from './config.ts';

const base = { CODEBAY_SECRET_KEY: Buffer.alloc(32, 7).toString('base64') };

describe('provisioner configuration', () => {
  afterEach(() => vi.restoreAllMocks());

  it('reads INSTANCE_EGRESS_EXCEPT as a list of IPv4 CIDRs (empty by default)', () => {
    expect(loadConfig(base).INSTANCE_EGRESS_EXCEPT).toEqual([]);
    expect(loadConfig({ ...base, INSTANCE_EGRESS_EXCEPT: ' 192.0.2.2/32, 198.51.100.0/24 ,' }).INSTANCE_EGRESS_EXCEPT).toEqual([
      '192.0.2.2/32',
      '198.51.100.0/24',
    ]);
  });

  it('refuses an INSTANCE_EGRESS_EXCEPT entry that is not an IPv4 CIDR, naming it', () => {
    vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${String(code)}`);
    });
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    for (const entry of ['192.0.2.2', '2001:db8::/32', 'node-1', '0.0.0.0/0']) {
      expect(() => loadConfig({ ...base, INSTANCE_EGRESS_EXCEPT: `10.9.0.0/16,${entry}` })).toThrow('exit 2');
      expect(String(stderr.mock.calls.at(-1)?.[0])).toMatch(new RegExp(`INSTANCE_EGRESS_EXCEPT\\.1: .*${entry.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    }
  });
});
