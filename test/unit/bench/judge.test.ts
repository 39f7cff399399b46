import { describe, expect, it } from 'vitest';
import { judge } from '../../../bench/chaos/run-chaos.js';
import type { StoredItem } from '../../../shared/contracts/stored-item.js';

const item = (over: Partial<StoredItem>): StoredItem => ({
  itemId: 'x',
  status: 'completed',
  attempt: 1,
  text: '',
  modelId: 'anthropic.claude-3-5-haiku-20241022-v1:0',
  tenant: 'default',
  metadata: null,
  usage: null,
  costUsd: null,
  createdAt: '2026-01-01T00:00:00.000Z',
  firstTokenAt: null,
  completedAt: null,
  error: null,
  ...over,
});
const expected = 'The stream keeps order.';

describe('the chaos verdict on one item', () => {
  it('accepts a completion with exactly the expected text', () => {
    expect(judge('x', item({ text: expected }), expected)).toBe('completed');
  });

  it('accepts a failure with a recorded reason and text the model produced', () => {
    const failed = item({
      status: 'failed',
      text: 'The stream',
      error: { code: 'stream_truncated', message: 'cut', retryable: false },
    });
    expect(judge('x', failed, expected)).toBe('failed');
  });

  it('calls an item lost when it never ended, ended short, or failed without a reason', () => {
    expect(judge('x', undefined, expected)).toMatchObject({ kind: 'lost' });
    expect(judge('x', item({ status: 'streaming', text: 'The' }), expected)).toMatchObject({ kind: 'lost' });
    expect(judge('x', item({ text: 'The stream keeps' }), expected)).toMatchObject({ kind: 'lost' });
    expect(judge('x', item({ status: 'failed', text: 'The' }), expected)).toMatchObject({ kind: 'lost' });
  });

  it('calls repeated text duplicated and any other difference corrupted', () => {
    expect(judge('x', item({ text: 'The stream stream keeps order.' }), expected)).toMatchObject({
      kind: 'duplicated',
    });
    expect(judge('x', item({ text: 'The stream keeps odrer.' }), expected)).toMatchObject({
      kind: 'corrupted',
    });
    const reordered = item({
      status: 'failed',
      text: 'stream The',
      error: { code: 'e', message: '', retryable: false },
    });
    expect(judge('x', reordered, expected)).toMatchObject({ kind: 'corrupted' });
  });
});
