import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { createLagReporter, firstHandings, type LagBatch } from '../../../shared/coordination.js';

/** A batch of `shardId` with records written `<sequence number>@<arrival s>`, space-separated. */
function batch(shardId: string, records: string): LagBatch {
  return {
    Records: records.split(' ').map((record) => {
      const [sequenceNumber, arrivalS] = record.split('@');
      return {
        eventID: `${shardId}:${sequenceNumber}`,
        kinesis: { approximateArrivalTimestamp: Number(arrivalS) },
      };
    }),
  };
}

describe('firstHandings', () => {
  it('tells the oldest arrival of a first batch', () => {
    const handed = firstHandings();
    expect(handed(batch('shard-0', '101@5 102@6'))).toEqual({ shardId: 'shard-0', oldestMs: 5_000 });
  });

  it('leaves a retried batch out of the lag, with the records that queued up behind it', () => {
    const handed = firstHandings();
    handed(batch('shard-0', '101@5 102@6'));
    // The same records again, as after a crash: how long the fault lasted is not load lag.
    expect(handed(batch('shard-0', '101@5 102@6'))).toBeUndefined();
    // Retried from a failed record on, with a record that waited behind it.
    expect(handed(batch('shard-0', '102@6 103@9'))).toBeUndefined();
    // The next batch is the consumer's own pace again.
    expect(handed(batch('shard-0', '104@12'))).toEqual({ shardId: 'shard-0', oldestMs: 12_000 });
  });

  it('counts a record of an interleaved batch of the same shard although a later one came first', () => {
    const handed = firstHandings();
    handed(batch('shard-0', '105@5'));
    // Another partition-key lane of the shard (parallelization factor above one).
    expect(handed(batch('shard-0', '102@4'))).toEqual({ shardId: 'shard-0', oldestMs: 4_000 });
    expect(handed(batch('shard-1', '105@7'))).toEqual({ shardId: 'shard-1', oldestMs: 7_000 });
  });

  it('forgets the oldest records beyond its limit', () => {
    const handed = firstHandings(2);
    handed(batch('shard-0', '1@1 2@2 3@3'));
    expect(handed(batch('shard-0', '3@3'))).toBeUndefined();
    expect(handed(batch('shard-0', '1@1'))).toEqual({ shardId: 'shard-0', oldestMs: 1_000 });
    expect(handed(batch('shard-0', '1@1'))).toBeUndefined();
  });

  it('says nothing of an empty batch', () => {
    expect(firstHandings()({ Records: [] })).toBeUndefined();
  });
});

describe('createLagReporter', () => {
  /** A reporter on a simulated clock whose writes are kept, not sent. */
  function reporter(everyMs = 500) {
    const clock = { t: 100_000 };
    const written: Array<{ shard: string; lagMs: number }> = [];
    const dynamo = {
      send: async (command: {
        input: {
          ExpressionAttributeNames?: Record<string, string>;
          ExpressionAttributeValues?: Record<string, { lagMs: number }>;
        };
      }) => {
        const shard = command.input.ExpressionAttributeNames?.['#shard'] ?? '?';
        const entry = command.input.ExpressionAttributeValues?.[':entry'];
        if (entry) written.push({ shard, lagMs: entry.lagMs });
        return {};
      },
    } as unknown as DynamoDBDocumentClient;
    const report = createLagReporter({
      dynamo,
      table: 'coordination',
      everyMs,
      now: () => clock.t,
      onError: () => {},
    });
    return { report, clock, written };
  }

  it('writes once the batch is handled, holding the handling, and the largest lag since its last write', async () => {
    const { report, clock, written } = reporter();
    const first = report(batch('shard-0', '1@99.8'));
    clock.t += 100;
    first();
    // Two batches within the interval, then one after it: the write carries the worst of them.
    const slow = report(batch('shard-0', '2@97'));
    const quick = report(batch('shard-0', '3@100.1'));
    clock.t += 200;
    slow();
    quick();
    clock.t += 300;
    report(batch('shard-0', '4@100.5'))();
    await Promise.resolve();
    expect(written).toEqual([
      { shard: 'shard-0', lagMs: 300 },
      { shard: 'shard-0', lagMs: 3_300 },
    ]);
  });

  it('writes nothing for a retried batch', async () => {
    const { report, clock, written } = reporter(0);
    report(batch('shard-0', '1@99'))();
    clock.t += 10_000;
    report(batch('shard-0', '1@99'))();
    await Promise.resolve();
    expect(written).toEqual([{ shard: 'shard-0', lagMs: 1_000 }]);
  });
});
