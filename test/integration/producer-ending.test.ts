import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReassemblerHandler } from '../../consumers/reassembler/handler.js';
import { ensureTable } from '../../local/resources.js';
import { createGeneratorHandler } from '../../producers/generator/handler.js';
import { TABLES } from '../../shared/tables.js';
import { createMetrics } from '../../shared/telemetry.js';
import type { CrashPoint } from '../../producers/generator/generation-env.js';
import type { ChunkRecord, WorkItem } from '../../shared/contracts/index.js';
import { kinesisEvent, TestShard } from '../factories/kinesis-events.js';
import { WorkItemShard } from '../factories/work-item-events.js';
import { recordingPublisher, telemetry } from './consumer-fixture.js';
import { checkAttempt, ProducerFixture } from './producer-fixture.js';

/** The records of `attempt`, duplicates (same seq) dropped as the consumer drops them. */
function attemptRecords(records: readonly ChunkRecord[], attempt: number): ChunkRecord[] {
  const bySeq = new Map<number, ChunkRecord>();
  for (const r of records) if (r.attempt === attempt && !bySeq.has(r.seq)) bySeq.set(r.seq, r);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}

describe('producer: one generation even across a crash while ending', () => {
  let fixture: ProducerFixture;
  beforeAll(async () => {
    fixture = await ProducerFixture.start();
  });
  afterAll(async () => {
    await fixture?.stop();
  });

  it.each<[CrashPoint, number]>([
    ['ending-recorded', 1],
    ['end-put', 1],
    ['before-ending', 2],
  ])(
    'a producer that dies at %s leaves an item a takeover completes with attempt %i, one end only',
    async (point, attempt) => {
      // Prepare: this producer dies at the step, as a process would (nothing after it runs).
      const item: WorkItem = {
        itemId: `crash-${point}`,
        prompt: `An answer to end at ${point}`,
        maxTokens: 60,
      };
      const dying = await fixture.handler(
        {},
        { crashAt: (p, itemId) => p === point && itemId === item.itemId },
      );
      const event = new WorkItemShard().event([item]);
      await expect(dying.handler(event)).rejects.toThrow(/simulated producer crash/);

      // Act: Lambda delivers the record again to a healthy producer, which waits out the dead one's lease.
      const healthy = {
        ...dying,
        handler: createGeneratorHandler({
          config: dying.config,
          clients: dying.clients,
          deadLetters: dying.deadLetters,
          logger: new Logger({ serviceName: 'producer-test', logLevel: 'SILENT' }),
          metrics: createMetrics('producer-test'),
          tuning: { leaseMs: 1_500 },
        }),
      };
      const response = await healthy.handler(event);

      // Assess: exactly one completed attempt whose text is the model's; no second generation after
      // the ending was recorded.
      expect(response.batchItemFailures).toEqual([]);
      const records = (await healthy.readChunks()).get(item.itemId) ?? [];
      const ends = records.filter((r) => r.type === 'end');
      expect(new Set(ends.map((r) => `${r.attempt}:${r.seq}`)).size).toBe(1);
      expect(ends[0]?.attempt).toBe(attempt);
      const { text } = checkAttempt(attemptRecords(records, attempt));
      expect(text).toBe(await fixture.expectedText(item, healthy.config));
      expect(await healthy.head(item.itemId)).toMatchObject({
        claimState: 'completed',
        claimedAttempt: attempt,
      });
      expect(healthy.handler.stats().generationsStarted).toBe(attempt === 1 ? 0 : 1);
    },
  );

  it('a producer that dies after putting the end record, the consumer completing the item first, leaves a claim the redelivery closes as completed', async () => {
    // Prepare: the producer dies once the `end` record is on the chunk stream, before finishing
    // its claim; the consumer then applies every record of the item, completing it.
    const item: WorkItem = { itemId: 'crash-end-put-consumer-first', prompt: 'An answer', maxTokens: 40 };
    const dying = await fixture.handler(
      {},
      { crashAt: (p, itemId) => p === 'end-put' && itemId === item.itemId },
    );
    const input = new WorkItemShard();
    const event = input.event([item]);
    await expect(dying.handler(event)).rejects.toThrow(/simulated producer crash/);
    await ensureTable(fixture.rawDynamo, dying.config.tables.text, TABLES.text);
    const consumer = createReassemblerHandler({
      config: dying.config,
      clients: dying.clients,
      deadLetters: dying.deadLetters,
      publisher: recordingPublisher(),
      ...telemetry('consumer'),
    });
    const put = (await dying.readChunks()).get(item.itemId) ?? [];
    const applied = await consumer(kinesisEvent(new TestShard().records(put)));
    expect(applied.batchItemFailures).toEqual([]);
    expect(await dying.head(item.itemId)).toMatchObject({ status: 'completed', claimState: 'ending' });

    // Act: Lambda delivers the work item again, and upstream sends it once more.
    const healthy = {
      ...dying,
      handler: createGeneratorHandler({
        config: dying.config,
        clients: dying.clients,
        deadLetters: dying.deadLetters,
        logger: new Logger({ serviceName: 'producer-test', logLevel: 'SILENT' }),
        metrics: createMetrics('producer-test'),
        tuning: { leaseMs: 1_500 },
      }),
    };
    const redelivered = await healthy.handler(event);
    const resent = await healthy.handler(input.event([item]));

    // Assess: the claim ends completed at the attempt that ended; nothing generated or put again.
    expect(redelivered.batchItemFailures).toEqual([]);
    expect(resent.batchItemFailures).toEqual([]);
    expect(await healthy.head(item.itemId)).toMatchObject({
      status: 'completed',
      claimState: 'completed',
      claimedAttempt: 1,
    });
    expect((await healthy.head(item.itemId))?.ending).toBeUndefined();
    expect(healthy.handler.stats().generationsStarted).toBe(0);
    expect((await healthy.readChunks()).get(item.itemId)).toHaveLength(put.length);
  });
});
