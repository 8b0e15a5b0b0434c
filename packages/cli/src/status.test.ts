import { describe, expect, it } from 'vitest';
import { statusText } from './status.ts';

describe('statusText', () => {
  it('says where a queued instance waits and about when it starts', () => {
    expect(statusText({ status: 'Queued', queue: { position: 3, waiting: 5, estimated_start_seconds: 40 } })).toBe('Queued (position 3 of 5, about 40 s)');
    expect(statusText({ status: 'Queued', queue: { position: 2, waiting: 9, estimated_start_seconds: 400 } })).toBe('Queued (position 2 of 9, about 7 min)');
    expect(statusText({ status: 'Queued', queue: { position: 1, waiting: 1, estimated_start_seconds: 0 } })).toBe('Queued (position 1 of 1, about 1 s)');
  });

  it('leaves the estimate out when there is none, and the place when the API gives none', () => {
    expect(statusText({ status: 'Queued', queue: { position: 1, waiting: 2, estimated_start_seconds: null } })).toBe('Queued (position 1 of 2)');
    expect(statusText({ status: 'Queued', queue: null })).toBe('Queued');
    expect(statusText({ status: 'Queued' })).toBe('Queued');
  });

  it('is the bare status otherwise', () => {
    expect(statusText({ status: 'Building', queue: { position: 1, waiting: 1, estimated_start_seconds: 3 } })).toBe('Building');
    expect(statusText({ status: 'Running', queue: null })).toBe('Running');
  });
});
