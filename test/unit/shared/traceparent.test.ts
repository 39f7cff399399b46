import { describe, expect, it } from 'vitest';
import { ChunkRecord } from '../../../shared/contracts/chunk-record.js';
import { Traceparent } from '../../../shared/contracts/traceparent.js';
import { WorkItem } from '../../../shared/contracts/work-item.js';

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('traceparent (W3C trace context, version 00)', () => {
  it.each([VALID, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00'])('accepts %s', (value) => {
    expect(Traceparent.parse(value)).toBe(value);
  });

  it.each([
    ['uppercase hex', VALID.toUpperCase()],
    ['another version', VALID.replace(/^00/, '01')],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
    ['an all-zero parent id', `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`],
    ['a short trace id', '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01'],
    ['trailing text', `${VALID}-x`],
    ['an empty string', ''],
  ])('rejects %s with a message saying the expected format', (_case, value) => {
    const result = Traceparent.safeParse(value);
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toMatch(/00-<32 lowercase hex trace id>-<16 hex parent id>/);
  });

  it('is optional on a work item and on a chunk record, and checked when present', () => {
    expect(WorkItem.safeParse({ itemId: 'a', prompt: 'p' }).success).toBe(true);
    expect(WorkItem.parse({ itemId: 'a', prompt: 'p', traceparent: VALID }).traceparent).toBe(VALID);
    expect(WorkItem.safeParse({ itemId: 'a', prompt: 'p', traceparent: 'abc' }).success).toBe(false);
    const delta = { v: 1, itemId: 'a', attempt: 1, seq: 0, type: 'delta', text: 't' };
    expect(ChunkRecord.parse({ ...delta, traceparent: VALID }).traceparent).toBe(VALID);
    expect(ChunkRecord.safeParse({ ...delta, traceparent: 'abc' }).success).toBe(false);
  });
});
