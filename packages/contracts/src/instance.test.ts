import { describe, expect, it } from 'vitest';
import { newInstanceRecord, resourcesSchema, toInstanceResponse, type InstanceRecord } from './instance.ts';

const record: InstanceRecord = newInstanceRecord({
  id: 'u1-abcdefgh',
  userId: 'u1',
  source: 'simple',
  accessTokenHash: 'h',
  accessTokenSealed: 's',
  baseImage: 'debian:bookworm',
  artifact: null,
  resources: resourcesSchema.parse({}),
  vscodeVersion: '1.139.1',
});
const respond = (r: InstanceRecord) => toInstanceResponse(r, 'http://127.0.0.1:8080', { protocol: 'http:', domain: 'localhost', port: ':8080' }, 'tkn');

describe('the API’s view of an instance', () => {
  it('says until when a Failed instance’s container is kept for inspection; null otherwise', () => {
    const kept = { until: '2026-12-01T10:10:00.000Z', by: 'docker:codebay' };
    expect(respond({ ...record, status: 'Failed', kept }).kept_until).toBe(kept.until);
    expect(respond({ ...record, status: 'Failed', kept: null }).kept_until).toBeNull();
    expect(respond({ ...record, status: 'Failed' }).kept_until).toBeNull();
    // Being deleted: removed at once, whatever the record still says.
    expect(respond({ ...record, status: 'Deleting', kept }).kept_until).toBeNull();
  });
});
