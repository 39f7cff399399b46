import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WorkItem } from '../../shared/contracts/index.js';
import { WorkItemShard } from '../factories/work-item-events.js';
import { attemptOf, checkAttempt, ProducerFixture, until } from './producer-fixture.js';

describe('producer on the local stand-ins', () => {
  let fixture: ProducerFixture;
  beforeAll(async () => {
    fixture = await ProducerFixture.start();
  });
  afterEach(() => {
    fixture.bedrock.setFaults({});
    fixture.bedrock.setTiming({ timeToFirstTokenMs: 0, tokensPerSecond: 0 });
  });
  afterAll(async () => {
    await fixture?.stop();
  });

  describe('generations', () => {
    it('turns each work item into chunk records whose text is the model output, seq dense from 0, one end', async () => {
      // Prepare
      const producer = await fixture.handler();
      const items: WorkItem[] = [
        { itemId: 'claude-1', prompt: 'Tell me about Kinesis shards', maxTokens: 300 },
        {
          itemId: 'claude-2',
          messages: [{ role: 'user', content: 'And about DynamoDB' }],
          system: 'Be brief',
        },
        {
          itemId: 'llama-1',
          prompt: 'Hello Llama',
          modelId: 'us.meta.llama3-1-8b-instruct-v1:0',
          maxTokens: 200,
        },
        { itemId: 'nova-1', prompt: 'Hello Nova', modelId: 'amazon.nova-lite-v1:0', maxTokens: 200 },
        { itemId: 'unicode-1', prompt: 'Émoji 😀 and 日本語', maxTokens: 500 },
      ];
      // Act
      const response = await producer.handler(new WorkItemShard().event(items));
      // Assess
      expect(response.batchItemFailures).toEqual([]);
      const chunks = await producer.readChunks();
      for (const item of items) {
        const records = chunks.get(item.itemId) ?? [];
        expect(new Set(records.map((r) => r.attempt))).toEqual(new Set([1]));
        const { text, ending } = checkAttempt(attemptOf(records, 1));
        expect(text).toBe(await fixture.expectedText(item, producer.config));
        expect(ending.type).toBe('end');
        if (ending.type === 'end') {
          expect(ending.usage.outputTokens).toBeGreaterThan(0);
          expect(ending.usage.inputTokens).toBeGreaterThan(0);
        }
        expect(await producer.head(item.itemId)).toMatchObject({
          claimedAttempt: 1,
          claimState: 'completed',
          status: 'queued',
          modelId: item.modelId ?? producer.config.defaultModelId,
        });
      }
      expect(producer.handler.stats().generationsCompleted).toBe(items.length);
    });

    it('meters the end record: usage from the invocation metrics and the estimated cost', async () => {
      const producer = await fixture.handler();
      const item: WorkItem = { itemId: 'metered', prompt: 'Count my tokens', maxTokens: 100 };
      await producer.handler(new WorkItemShard().event([item]));
      const records = (await producer.readChunks()).get('metered') ?? [];
      const { ending } = checkAttempt(records);
      if (ending.type !== 'end') throw new Error(`expected an end record, got ${ending.type}`);
      const price = producer.config.modelPrices[producer.config.defaultModelId]!;
      expect(ending.usage.invocationLatencyMs).toBeGreaterThanOrEqual(0);
      expect(ending.usage.firstByteLatencyMs).toBeGreaterThanOrEqual(0);
      expect(ending.costUsd).toBeCloseTo(
        (ending.usage.inputTokens / 1000) * price.inputPer1k +
          (ending.usage.outputTokens / 1000) * price.outputPer1k,
        12,
      );
      expect(ending.stopReason).toMatch(/^(end_turn|max_tokens)$/);
      const stats = producer.handler.stats();
      expect(stats.outputTokens).toBe(ending.usage.outputTokens);
      expect(stats.firstTokenMs.count).toBe(1);
    });

    it('uses the configured default model for items that name none', async () => {
      const producer = await fixture.handler({ DEFAULT_MODEL_ID: 'eu.amazon.nova-micro-v1:0' });
      const item: WorkItem = { itemId: 'default-model', prompt: 'Which model are you?', maxTokens: 80 };
      await producer.handler(new WorkItemShard().event([item]));
      const { text } = checkAttempt((await producer.readChunks()).get('default-model') ?? []);
      expect(text).toBe(await fixture.expectedText(item, producer.config));
      expect((await producer.head('default-model'))?.modelId).toBe('eu.amazon.nova-micro-v1:0');
    });
  });

  describe('one generation per work item', () => {
    it('starts one generation for an item delivered twice in the same batch', async () => {
      const producer = await fixture.handler();
      const item: WorkItem = { itemId: 'twice-in-batch', prompt: 'Once only', maxTokens: 50 };
      const streamsBefore = fixture.bedrock.stats().streams;
      const response = await producer.handler(new WorkItemShard().event([item, item]));
      expect(response.batchItemFailures).toEqual([]);
      expect(fixture.bedrock.stats().streams - streamsBefore).toBe(1);
      checkAttempt((await producer.readChunks()).get('twice-in-batch') ?? []);
      expect(producer.handler.stats().duplicatesSkipped).toBe(1);
    });

    it('starts no second generation when a completed item is delivered again', async () => {
      const producer = await fixture.handler();
      const item: WorkItem = { itemId: 'resent-after-done', prompt: 'Once only', maxTokens: 50 };
      const shard = new WorkItemShard();
      await producer.handler(shard.event([item]));
      const streamsBefore = fixture.bedrock.stats().streams;
      // A Lambda retry or an upstream resend, possibly on another producer instance.
      const response = await producer.sibling().handler(shard.event([item]));
      expect(response.batchItemFailures).toEqual([]);
      expect(fixture.bedrock.stats().streams).toBe(streamsBefore);
      const records = (await producer.readChunks()).get('resent-after-done') ?? [];
      expect(records.every((r) => r.attempt === 1)).toBe(true);
      checkAttempt(records);
    });

    it('starts no second generation when the item is delivered to another producer while it runs', async () => {
      // Prepare: a slow model, and a first producer generating the item.
      fixture.bedrock.setTiming({ tokensPerSecond: 100 });
      const first = await fixture.handler();
      const second = first.sibling();
      const item: WorkItem = { itemId: 'resent-while-running', prompt: 'A long answer', maxTokens: 2000 };
      const shard = new WorkItemShard();
      const streamsBefore = fixture.bedrock.stats().streams;
      const running = first.handler(shard.event([item]));
      await until('the first producer streams', async () => (await first.readChunks()).has(item.itemId));
      // Act: the duplicate watches the lease, sees it renewed, and leaves the item to its holder.
      const duplicate = await second.handler(shard.event([item]));
      await first.requestCancel(item.itemId);
      await running;
      // Assess
      expect(duplicate.batchItemFailures).toEqual([]);
      expect(second.handler.stats()).toMatchObject({ duplicatesSkipped: 1, generationsStarted: 0 });
      expect(fixture.bedrock.stats().streams - streamsBefore).toBe(1);
    });

    it('lets a resend of a finally failed item claim a new attempt', async () => {
      // Prepare: every stream of this prompt fails, and only one attempt is allowed.
      const producer = await fixture.handler({ MAX_GENERATION_ATTEMPTS: '1' });
      const item: WorkItem = { itemId: 'failed-then-resent', prompt: 'fail-me please', maxTokens: 60 };
      fixture.bedrock.setFaults({ midStream: { match: 'fail-me', probability: 1, afterTokens: 3 } });
      const shard = new WorkItemShard();
      await producer.handler(shard.event([item]));
      expect(await producer.head(item.itemId)).toMatchObject({ claimedAttempt: 1, claimState: 'failed' });
      // Act
      fixture.bedrock.setFaults({});
      await producer.handler(shard.event([item]));
      // Assess
      const records = (await producer.readChunks()).get(item.itemId) ?? [];
      const first = checkAttempt(attemptOf(records, 1));
      expect(first.ending).toMatchObject({ type: 'error', final: true });
      const second = checkAttempt(attemptOf(records, 2));
      expect(second.ending.type).toBe('end');
      expect(second.text).toBe(await fixture.expectedText(item, producer.config));
      expect(await producer.head(item.itemId)).toMatchObject({
        claimedAttempt: 2,
        claimState: 'completed',
        status: 'queued',
      });
    });

    it('starts nothing when the record whose generation failed for good is delivered again (a Lambda retry)', async () => {
      const producer = await fixture.handler({ MAX_GENERATION_ATTEMPTS: '1' });
      const item: WorkItem = { itemId: 'failed-then-retried', prompt: 'fail-me again', maxTokens: 60 };
      fixture.bedrock.setFaults({ midStream: { match: 'fail-me', probability: 1, afterTokens: 3 } });
      const event = new WorkItemShard().event([item]);
      await producer.handler(event);
      fixture.bedrock.setFaults({});
      const streamsBefore = fixture.bedrock.stats().streams;
      const response = await producer.handler(event);
      expect(response.batchItemFailures).toEqual([]);
      expect(fixture.bedrock.stats().streams).toBe(streamsBefore);
      const records = (await producer.readChunks()).get(item.itemId) ?? [];
      expect(checkAttempt(records).ending).toMatchObject({ type: 'error', attempt: 1, final: true });
      expect(await producer.head(item.itemId)).toMatchObject({ claimedAttempt: 1, claimState: 'failed' });
    });

    it('takes over an item whose producer died, once its lease runs out', async () => {
      // Prepare: the head a crashed producer left behind, its lease about to run out.
      const producer = await fixture.handler();
      const itemId = 'orphaned';
      await fixture.dynamo.send(
        new PutCommand({
          TableName: producer.config.tables.items,
          Item: {
            itemId,
            status: 'streaming',
            version: 3,
            claimedAttempt: 1,
            claimState: 'running',
            leaseUntil: Date.now() + 300,
            modelId: producer.config.defaultModelId,
            createdAt: new Date().toISOString(),
          },
        }),
      );
      const item: WorkItem = { itemId, prompt: 'Pick up where it died', maxTokens: 80 };
      // Act: the redelivery after the crash.
      const response = await producer.handler(new WorkItemShard().event([item]));
      // Assess
      expect(response.batchItemFailures).toEqual([]);
      const records = (await producer.readChunks()).get(itemId) ?? [];
      expect(records.every((r) => r.attempt === 2)).toBe(true);
      expect(checkAttempt(records).text).toBe(await fixture.expectedText(item, producer.config));
      expect(await producer.head(itemId)).toMatchObject({ claimedAttempt: 2, claimState: 'completed' });
    });
  });

  describe('invalid work items', () => {
    it('sends each invalid record to the dead-letter store with its reason while the others complete', async () => {
      // Prepare
      const producer = await fixture.handler();
      const shard = new WorkItemShard();
      const good: WorkItem = { itemId: 'good-1', prompt: 'Fine', maxTokens: 40 };
      const event = shard.event([
        { raw: '{not json', partitionKey: 'broken' },
        good,
        { raw: JSON.stringify({ itemId: 'has spaces', prompt: 'x' }), partitionKey: 'has spaces' },
        { raw: JSON.stringify({ itemId: 'no-prompt' }), partitionKey: 'no-prompt' },
        {
          raw: JSON.stringify({ itemId: 'odd-model', prompt: 'x', modelId: 'cohere.command-r-v1:0' }),
          partitionKey: 'odd-model',
        },
      ]);
      // Act
      const response = await producer.handler(event);
      // Assess
      expect(response.batchItemFailures).toEqual([]);
      expect(producer.deadLetters.letters).toHaveLength(4);
      const letters = producer.deadLetters.invalidRecords();
      expect(letters.map((l) => l.record.partitionKey)).toEqual([
        'broken',
        'has spaces',
        'no-prompt',
        'odd-model',
      ]);
      const reasons = letters.map((l) => l.reason);
      expect(reasons[0]).toMatch(/work item is not valid JSON/);
      expect(reasons[1]).toMatch(/itemId must be 1–128 characters/);
      expect(reasons[2]).toMatch(/exactly one of prompt or messages is required/);
      expect(reasons[3]).toMatch(/modelId "cohere.command-r-v1:0" is not supported/);
      letters.forEach((letter, i) => {
        expect(letter.source).toBe('producer');
        // The record is kept whole, as it arrived.
        expect(letter.record.data).toBe(event.Records[i === 0 ? 0 : i + 1]?.kinesis.data);
      });
      const chunks = await producer.readChunks();
      expect([...chunks.keys()]).toEqual(['good-1']);
      expect(checkAttempt(chunks.get('good-1') ?? []).ending.type).toBe('end');
      expect(producer.handler.stats().invalidItems).toBe(4);
    });

    it('reports only a record whose dead-lettering failed, and completes the rest', async () => {
      const producer = await fixture.handler();
      producer.deadLetters.failing = true;
      const shard = new WorkItemShard();
      const event = shard.event([
        { itemId: 'fine-a', prompt: 'a', maxTokens: 20 } as WorkItem,
        { raw: 'garbage', partitionKey: 'garbage' },
        { itemId: 'fine-b', prompt: 'b', maxTokens: 20 } as WorkItem,
      ]);
      const response = await producer.handler(event);
      expect(response.batchItemFailures).toEqual([
        { itemIdentifier: event.Records[1]!.kinesis.sequenceNumber },
      ]);
      const chunks = await producer.readChunks();
      expect([...chunks.keys()].sort()).toEqual(['fine-a', 'fine-b']);
      expect(producer.handler.stats().deadLetterFailures).toBe(1);
    });
  });
});
