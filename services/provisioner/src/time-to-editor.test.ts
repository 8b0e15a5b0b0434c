import type { InstanceRecord } from '@codebay/contracts';
import { describe, expect, it } from 'vitest';
import { timeToEditor } from './time-to-editor.ts';

const t = (s: number) => new Date(Date.UTC(2026, 11, 1, 9, 0, 0) + s * 1000).toISOString();

describe('timeToEditor', () => {
  it('splits a built instance into queued, build, push, provision and editor start', () => {
    const record = {
      status: 'Running',
      build: { key: 'k', family: 'f', cache: 'miss' },
      createdAt: t(0),
      queuedAt: t(0),
      buildStartedAt: t(2),
      buildEndedAt: t(32),
      pushEndedAt: t(35),
      provisionStartedAt: t(35),
      containerStartedAt: t(37),
      runningAt: t(38.5),
    } as unknown as InstanceRecord;
    expect(timeToEditor(record)).toEqual({ cache: 'miss', total: 38.5, phases: { queued: 2, build: 30, push: 3, provision: 2, editor_start: 1.5 } });
  });

  it('leaves out phases that did not happen (a cache hit) and counts from creation without a queue time; nothing for a record not Running', () => {
    const hit = {
      status: 'Running',
      build: { key: 'k', family: 'f', cache: 'hit' },
      createdAt: t(0),
      queuedAt: null,
      provisionStartedAt: t(0.2),
      containerStartedAt: t(0.7),
      runningAt: t(1.5),
    } as unknown as InstanceRecord;
    expect(timeToEditor(hit)).toEqual({ cache: 'hit', total: 1.5, phases: { provision: 0.5, editor_start: 0.8 } });
    expect(timeToEditor({ ...hit, build: null })?.cache).toBe('none');
    expect(timeToEditor({ ...hit, status: 'Provisioning' })).toBeUndefined();
  });
});
