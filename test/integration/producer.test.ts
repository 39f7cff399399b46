import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WorkItem } from '../../shared/contracts/index.js';
import { WorkItemShard } from '../factories/work-item-events.js';
import { attemptOf, checkAttempt, ProducerFixture } from './producer-fixture.js';

describe('producer on the local stand-ins', () => {
  let fixture: ProducerFixture;
  beforeAll(async () => {
    fixture = await ProducerFixture.start();
  });
  afterAll(async () => {
    await fixture?.stop();
  });

  it('turns each work item into chunk records whose text is the model output, seq dense from 0, one end', async () => {
    // Prepare
    const producer = await fixture.handler();
    const items: WorkItem[] = [
      { itemId: 'claude-1', prompt: 'Tell me about Kinesis shards', maxTokens: 300 },
      { itemId: 'claude-2', messages: [{ role: 'user', content: 'And about DynamoDB' }], system: 'Be brief' },
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
      const head = await producer.head(item.itemId);
      expect(head).toMatchObject({ claimedAttempt: 1, claimState: 'completed', status: 'queued' });
    }
    const stats = producer.handler.stats();
    expect(stats.generationsCompleted).toBe(items.length);
  });
});
