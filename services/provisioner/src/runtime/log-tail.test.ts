import { describe, expect, it } from 'vitest';
import { lastLogLines } from './log-tail.ts';

describe('lastLogLines', () => {
  it('joins the last 8 non-blank lines, trimmed', () => {
    const text = Array.from({ length: 12 }, (_, i) => `  line ${i}  `).join('\n\n');
    expect(lastLogLines(text)).toBe('line 4 | line 5 | line 6 | line 7 | line 8 | line 9 | line 10 | line 11');
    expect(lastLogLines('a\nb\nc', 2)).toBe('b | c');
  });

  it('drops colours and control characters, and ends a line at a carriage return', () => {
    expect(lastLogLines('\u001b[31merror:\u001b[0m bad\u0007\r\nprogress 10%\rprogress 100%\n')).toBe('error: bad | progress 10% | progress 100%');
  });

  it('is empty for nothing', () => {
    expect(lastLogLines('')).toBe('');
    expect(lastLogLines('\n \n')).toBe('');
  });
});
