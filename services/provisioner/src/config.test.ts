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

  it('keeps a failed instance 600 s by default; FAILED_INSTANCE_KEEP_SECONDS 0 removes at once; negative, fractional or over 7 days refused', () => {
    expect(loadConfig(base).FAILED_INSTANCE_KEEP_SECONDS).toBe(600);
    expect(loadConfig({ ...base, FAILED_INSTANCE_KEEP_SECONDS: '0' }).FAILED_INSTANCE_KEEP_SECONDS).toBe(0);
    expect(loadConfig({ ...base, FAILED_INSTANCE_KEEP_SECONDS: '604800' }).FAILED_INSTANCE_KEEP_SECONDS).toBe(604_800);
    vi.spyOn(process, 'exit').mockImplementation((code) => {
      throw new Error(`exit ${String(code)}`);
    });
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    for (const value of ['-1', '1.5', 'ten', '604801']) {
      expect(() => loadConfig({ ...base, FAILED_INSTANCE_KEEP_SECONDS: value })).toThrow('exit 2');
      expect(String(stderr.mock.calls.at(-1)?.[0])).toMatch(/FAILED_INSTANCE_KEEP_SECONDS/);
    }
  });
});
