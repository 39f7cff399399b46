import { describe, expect, it } from 'vitest';
import { decideClaim } from '../../../../producers/generator/claims.js';
import { ItemHead } from '../../../../shared/items.js';

const NOW = 1_700_000_000_000;
const RECORD = 'shardId-000000000000:49600000000000000000000000000000000000000000000000000007';
const head = (fields: Record<string, unknown>) =>
  ItemHead.parse({
    itemId: 'item-1',
    status: 'queued',
    version: 1,
    modelId: 'anthropic.claude-3-5-haiku-20241022-v1:0',
    createdAt: new Date(NOW).toISOString(),
    ...fields,
  });

describe('decideClaim', () => {
  it('creates an item that has no head row', () => {
    expect(decideClaim(undefined, NOW, RECORD)).toBe('create');
  });

  it('never starts a second generation of a completed item, whoever recorded the completion', () => {
    expect(decideClaim(head({ claimState: 'completed', claimedAttempt: 1 }), NOW, RECORD)).toBe('completed');
    expect(
      decideClaim(head({ status: 'completed', claimState: 'running', claimedAttempt: 1 }), NOW, RECORD),
    ).toBe('completed');
  });

  it('closes a claim left ending once the consumer has completed the item, lease or not', () => {
    const ending = { status: 'completed', claimState: 'ending', claimedAttempt: 1 };
    expect(decideClaim(head({ ...ending, leaseUntil: NOW - 1 }), NOW, RECORD)).toBe('close-ending');
    expect(decideClaim(head({ ...ending, leaseUntil: NOW + 5_000 }), NOW, RECORD)).toBe('close-ending');
    // Not completed yet: the ending is finished by whoever holds it, or taken over once its lease ran out.
    expect(decideClaim(head({ ...ending, status: 'streaming', leaseUntil: NOW - 1 }), NOW, RECORD)).toBe(
      'finish-ending',
    );
  });

  it('leaves an item under an unexpired lease to its holder', () => {
    expect(
      decideClaim(head({ claimState: 'running', claimedAttempt: 1, leaseUntil: NOW + 1 }), NOW, RECORD),
    ).toBe('held');
  });

  it('keeps a running lease even when an older attempt has just been applied as failed', () => {
    expect(
      decideClaim(
        head({ status: 'failed', claimState: 'running', claimedAttempt: 2, leaseUntil: NOW + 5_000 }),
        NOW,
        RECORD,
      ),
    ).toBe('held');
  });

  it('lets a resend claim a new attempt of a finally failed item', () => {
    expect(
      decideClaim(head({ claimState: 'failed', claimedAttempt: 3, claimedBy: 'shardId-0:1' }), NOW, RECORD),
    ).toBe('reclaim');
    expect(
      decideClaim(
        head({ status: 'failed', claimState: 'running', claimedAttempt: 1, leaseUntil: NOW }),
        NOW,
        RECORD,
      ),
    ).toBe('reclaim');
  });

  it('keeps a final failure final when the same input record is delivered again (a Lambda retry)', () => {
    expect(
      decideClaim(head({ claimState: 'failed', claimedAttempt: 2, claimedBy: RECORD }), NOW, RECORD),
    ).toBe('ended');
  });

  it('takes over an item whose producer stopped renewing its lease', () => {
    expect(
      decideClaim(
        head({ status: 'streaming', claimState: 'running', claimedAttempt: 1, leaseUntil: NOW }),
        NOW,
        RECORD,
      ),
    ).toBe('takeover');
    // A head without claim fields (written by the consumer first) has no live producer either.
    expect(decideClaim(head({ status: 'streaming' }), NOW, RECORD)).toBe('takeover');
  });
});
