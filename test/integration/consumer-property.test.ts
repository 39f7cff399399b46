import fc from 'fast-check';
import type { KinesisStreamEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReassemblerHandler } from '../../consumers/reassembler/handler.js';
import type { ChunkRecord } from '../../shared/contracts/chunk-record.js';
import { readItem } from '../../shared/items.js';
import { attemptRecords } from '../factories/chunk-records.js';
import { deliverLikeLambda, kinesisEvent, TestShard } from '../factories/kinesis-events.js';
import {
  type ConsumerWorld,
  putClaimedHead,
  recordingPublisher,
  startConsumerWorld,
  telemetry,
} from './consumer-fixture.js';

const pieces = fc.array(fc.string({ unit: 'binary', minLength: 1, maxLength: 8 }), {
  minLength: 1,
  maxLength: 14,
});

/**
 * Two items on one shard. Item A's first attempt is abandoned part-way (non-final error, and only
 * some of its records arrive) and a second attempt completes; item B completes in one attempt.
 * Every record arrives at least once, some several times, in any order, in batches of any size,
 * and some invocations crash after applying only a prefix of their batch.
 */
const delivery = fc
  .record({
    a1: pieces,
    a2: pieces,
    b: pieces,
    a1Delivered: fc.nat(),
    seed: fc.integer(),
  })
  .chain((s) => {
    const pool = (run: number) => {
      const a = `a-${run}`;
      const b = `b-${run}`;
      const a1 = attemptRecords(a, 1, s.a1, { type: 'error', final: false });
      return [
        ...a1.slice(0, s.a1Delivered % (a1.length + 1)),
        ...attemptRecords(a, 2, s.a2, { type: 'end' }),
        ...attemptRecords(b, 1, s.b, { type: 'end' }),
      ];
    };
    const size = pool(0).length;
    return fc.record({
      scenario: fc.constant(s),
      pool: fc.constant(pool),
      extra: fc.array(fc.nat({ max: size - 1 }), { maxLength: size }),
      order: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), {
        minLength: size * 2,
        maxLength: size * 2,
      }),
      batchSizes: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 5 }),
      crashes: fc.array(fc.option(fc.nat({ max: 8 }), { nil: undefined }), { maxLength: 6 }),
      sealBytes: fc.integer({ min: 4, max: 40 }),
    });
  });

describe('reassembly property, through the real handler on dynalite', () => {
  let world: ConsumerWorld;
  let run = 0;

  beforeAll(async () => {
    world = await startConsumerWorld();
  });
  afterAll(async () => {
    await world.stop();
  });

  it('duplicated, reordered and replayed records, a new attempt part-way and crashed invocations always reassemble exactly', async () => {
    await fc.assert(
      fc.asyncProperty(delivery, async ({ scenario, pool, extra, order, batchSizes, crashes, sealBytes }) => {
        // Prepare
        const current = ++run;
        const records = pool(current);
        const sent: ChunkRecord[] = [...records, ...extra.map((i) => records[i]!)]
          .map((record, i) => ({ record, key: order[i] ?? 0 }))
          .sort((x, y) => x.key - y.key)
          .map((k) => k.record);
        await putClaimedHead(world, `a-${current}`);
        await putClaimedHead(world, `b-${current}`);
        const handler = createReassemblerHandler({
          config: world.config,
          clients: world.clients,
          deadLetters: { send: async () => {} },
          publisher: recordingPublisher(),
          ...telemetry('consumer'),
          sealBytes,
        });
        const pendingCrashes = [...crashes];
        const crashing = async (event: KinesisStreamEvent) => {
          const crashAfter = pendingCrashes.shift();
          if (crashAfter === undefined) return handler(event);
          await handler(kinesisEvent(event.Records.slice(0, crashAfter)));
          throw new Error('the function crashed');
        };

        // Act
        await deliverLikeLambda(crashing, new TestShard().records(sent), { batchSizes });

        // Assess
        const a = await readItem(world.dynamo, world.config.tables, `a-${current}`);
        const b = await readItem(world.dynamo, world.config.tables, `b-${current}`);
        expect(a).toMatchObject({ status: 'completed', attempt: 2, text: scenario.a2.join('') });
        expect(b).toMatchObject({ status: 'completed', attempt: 1, text: scenario.b.join('') });
      }),
      { numRuns: 15 },
    );
  });
});
