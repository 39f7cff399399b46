import { describe, expect, it } from 'vitest';
import { planSnapshot } from '../../../../consumers/viewers/snapshot.js';
import { ItemHead } from '../../../../shared/items.js';

const head = (fields: Partial<ItemHead>) =>
  ItemHead.parse({ itemId: 'i', status: 'streaming', version: 3, modelId: 'm', createdAt: 'now', ...fields });
const TEXT = 'The quick brown fox';

describe('planSnapshot', () => {
  const streaming = head({ attempt: 2, nextSeq: 10 });

  it('an item without a head is queued, attempt 0, seq 0, empty', () => {
    expect(planSnapshot('i', undefined, '', { attempt: 1, seq: 3, offset: 5 })).toEqual({
      itemId: 'i',
      attempt: 0,
      seq: 0,
      status: 'queued',
      text: '',
    });
  });

  it('without a resume point: the whole text', () => {
    expect(planSnapshot('i', streaming, TEXT)).toEqual({
      itemId: 'i',
      attempt: 2,
      seq: 10,
      status: 'streaming',
      text: TEXT,
    });
  });

  it('same attempt with an offset: only the text after it', () => {
    expect(planSnapshot('i', streaming, TEXT, { attempt: 2, seq: 6, offset: 4 })).toMatchObject({
      seq: 10,
      offset: 4,
      text: 'quick brown fox',
    });
  });

  it('same attempt, no offset, seq at the head: no text, offset at the end', () => {
    expect(planSnapshot('i', streaming, TEXT, { attempt: 2, seq: 10 })).toMatchObject({
      offset: TEXT.length,
      text: '',
    });
  });

  it.each([
    ['another attempt', { attempt: 1, seq: 6, offset: 4 }],
    ['a seq ahead of the head', { attempt: 2, seq: 11, offset: 4 }],
    ['an offset past the text', { attempt: 2, seq: 6, offset: TEXT.length + 1 }],
    ['no offset and a seq behind the head', { attempt: 2, seq: 6 }],
    ['an offset without a seq', { attempt: 2, offset: 4 }],
  ])('%s: the whole text', (_name, resume) => {
    const snapshot = planSnapshot('i', streaming, TEXT, resume);
    expect(snapshot.text).toBe(TEXT);
    expect(snapshot).not.toHaveProperty('offset');
  });

  it('usage and cost on a completed item, the error on a failed one', () => {
    const usage = { inputTokens: 1, outputTokens: 2 };
    const error = { code: 'cancelled', message: 'm', retryable: false };
    expect(planSnapshot('i', head({ status: 'completed', usage, costUsd: 0.1 }), '')).toMatchObject({
      usage,
      costUsd: 0.1,
    });
    expect(planSnapshot('i', head({ status: 'failed', error }), '')).toMatchObject({ error });
    expect(planSnapshot('i', head({ status: 'streaming', usage }), '')).not.toHaveProperty('usage');
  });
});
