import { describe, expect, it } from 'vitest';
import { formatCpu, formatMemory, parseCpu, parseMemory } from './quantity.ts';

describe('parseMemory', () => {
  it.each([
    ['512Mi', 512 * 1024 ** 2],
    ['2Gi', 2 * 1024 ** 3],
    ['1Ki', 1024],
    ['1Ti', 1024 ** 4],
    ['1k', 1_000],
    ['5M', 5_000_000],
    ['2G', 2_000_000_000],
    ['1T', 1e12],
    ['100', 100],
    ['1.5Gi', 1.5 * 1024 ** 3],
    ['0.5Mi', 512 * 1024],
    ['0.5', 1],
  ])('%s is %d bytes', (q, bytes) => {
    expect(parseMemory(q)).toBe(bytes);
  });

  it('rounds fractions of a byte', () => {
    expect(parseMemory('1.4')).toBe(1);
    expect(parseMemory('1.6')).toBe(2);
    expect(parseMemory('0.3Ki')).toBe(307);
  });

  it.each([
    ['', 'empty'],
    ['0', 'zero'],
    ['0Gi', 'zero with a suffix'],
    ['0.4', 'rounds to zero bytes (would mean no limit)'],
    ['0.0000000001Ki', 'rounds to zero bytes with a suffix'],
    ['-1Gi', 'negative'],
    ['1gi', 'suffix in the wrong case'],
    ['1GB', 'unknown suffix'],
    ['1Pi', 'suffix not supported'],
    ['1 Gi', 'space before the suffix'],
    [' 1Gi', 'leading space'],
    ['1e3', 'exponent'],
    ['.5Gi', 'no leading digit'],
    ['1.Gi', 'no digit after the point'],
    ['Gi', 'no number'],
    ['0x10', 'hex'],
    ['1Gi\n', 'trailing newline'],
    ['9'.repeat(400), 'not finite'],
  ])('%j is not a quantity (%s)', (q) => {
    expect(parseMemory(q)).toBeUndefined();
  });
});

describe('parseCpu', () => {
  it.each([
    ['200m', 200],
    ['1000m', 1000],
    ['1', 1000],
    ['2', 2000],
    ['0.5', 500],
    ['1.25', 1250],
    ['0.0005', 1],
    ['1.4m', 1],
    ['1.6m', 2],
  ])('%s is %d millicores', (q, milli) => {
    expect(parseCpu(q)).toBe(milli);
  });

  it.each([
    ['', 'empty'],
    ['0', 'zero'],
    ['0m', 'zero millicores'],
    ['0.0004', 'rounds to zero millicores (would mean no limit)'],
    ['0.4m', 'rounds to zero millicores'],
    ['-1', 'negative'],
    ['1M', 'upper-case suffix'],
    ['100mi', 'memory-like suffix'],
    ['1 m', 'space'],
    ['1e3m', 'exponent'],
    ['one', 'words'],
    ['9'.repeat(400), 'not finite'],
  ])('%j is not a quantity (%s)', (q) => {
    expect(parseCpu(q)).toBeUndefined();
  });
});

describe('formatCpu and formatMemory', () => {
  it('writes whole cores as cores, else millicores', () => {
    expect(formatCpu(2000)).toBe('2');
    expect(formatCpu(1500)).toBe('1500m');
  });

  it('writes bytes in the largest binary unit that divides them', () => {
    expect(formatMemory(2 ** 30)).toBe('1Gi');
    expect(formatMemory(1536 * 2 ** 20)).toBe('1536Mi');
    expect(formatMemory(2 ** 40)).toBe('1Ti');
    expect(formatMemory(3 * 1024)).toBe('3Ki');
    expect(formatMemory(1000)).toBe('1000');
  });
});
