import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGeneratorHandler } from '../../producers/generator/handler.js';
import { createMetrics } from '../../shared/telemetry.js';
import type { CrashPoint } from '../../producers/generator/generation-env.js';
import type { ChunkRecord, WorkItem } from '../../shared/contracts/index.js';
import { WorkItemShard } from '../factories/work-item-events.js';
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
});
