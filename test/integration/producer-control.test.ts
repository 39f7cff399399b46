import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WorkItem } from '../../shared/contracts/index.js';
import { lambdaContext, WorkItemShard } from '../factories/work-item-events.js';
import { checkAttempt, ProducerFixture, until } from './producer-fixture.js';

describe('producer: cancel, time budget and concurrency', () => {
  let fixture: ProducerFixture;
  beforeAll(async () => {
    fixture = await ProducerFixture.start();
  });
  afterEach(() => {
    fixture.bedrock.setTiming({ timeToFirstTokenMs: 0, tokensPerSecond: 0 });
  });
  afterAll(async () => {
    await fixture?.stop();
  });

  it('ends a generation whose item asks to stop with a final `cancelled` error, keeping the text so far', async () => {
    // Prepare: a model slow enough that the generation is still running when the cancel comes.
    fixture.bedrock.setTiming({ tokensPerSecond: 200 });
    const producer = await fixture.handler();
    const item: WorkItem = { itemId: 'to-cancel', prompt: 'A very long story', maxTokens: 4000 };
    const activeBefore = fixture.bedrock.stats().activeStreams;
    const running = producer.handler(new WorkItemShard().event([item]));
    await until(
      'some text is on the chunk stream',
      async () => ((await producer.readChunks()).get(item.itemId)?.length ?? 0) >= 2,
    );
    // Act
    await producer.requestCancel(item.itemId);
    const response = await running;
    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const { text, ending } = checkAttempt((await producer.readChunks()).get(item.itemId) ?? []);
    expect(ending).toMatchObject({
      type: 'error',
      final: true,
      error: { code: 'cancelled', retryable: false },
    });
    const expected = await fixture.expectedText(item, producer.config);
    expect(text.length).toBeGreaterThan(0);
    expect(text.length).toBeLessThan(expected.length);
    expect(expected.startsWith(text)).toBe(true);
    expect(await producer.head(item.itemId)).toMatchObject({ claimState: 'failed' });
    // The model request was aborted, not left streaming.
    await until('the model stream is closed', () => fixture.bedrock.stats().activeStreams === activeBefore);
    expect(producer.handler.stats().generationsCancelled).toBe(1);
  });

  it('stops writing, without an ending, when another producer claims a newer attempt of the item', async () => {
    // Prepare
    fixture.bedrock.setTiming({ tokensPerSecond: 200 });
    const producer = await fixture.handler();
    const item: WorkItem = { itemId: 'taken-over', prompt: 'A story someone else finishes', maxTokens: 4000 };
    const running = producer.handler(new WorkItemShard().event([item]));
    await until(
      'some text is on the chunk stream',
      async () => ((await producer.readChunks()).get(item.itemId)?.length ?? 0) >= 2,
    );
    // Act: another producer's takeover, as its claim writes it.
    await fixture.dynamo.send(
      new UpdateCommand({
        TableName: producer.config.tables.items,
        Key: { itemId: item.itemId },
        UpdateExpression: 'SET claimedAttempt = :two, claimedBy = :other',
        ExpressionAttributeValues: { ':two': 2, ':other': 'shardId-000000000001:1' },
      }),
    );
    await running;
    // Assess
    const records = (await producer.readChunks()).get(item.itemId) ?? [];
    expect(records.every((r) => r.attempt === 1 && r.type === 'delta')).toBe(true);
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i));
    expect(producer.handler.stats()).toMatchObject({ generationsSuperseded: 1, generationsFailed: 0 });
    expect(await producer.head(item.itemId)).toMatchObject({ claimedAttempt: 2, claimState: 'running' });
  });

  it('fails a generation that cannot finish in the time left as retryable, with a clear code', async () => {
    fixture.bedrock.setTiming({ tokensPerSecond: 200 });
    const producer = await fixture.handler({}, { safetyMarginMs: 1_000, minStartMs: 100 });
    const item: WorkItem = { itemId: 'too-long', prompt: 'An endless answer', maxTokens: 4000 };
    // Act: an invocation with 2 s left, half a second of it for the last puts.
    const response = await producer.handler(new WorkItemShard().event([item]), lambdaContext(2_000));
    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const { text, ending } = checkAttempt((await producer.readChunks()).get(item.itemId) ?? []);
    expect(ending).toMatchObject({
      type: 'error',
      final: true,
      error: { code: 'time_budget_exceeded', retryable: true },
    });
    expect((await fixture.expectedText(item, producer.config)).startsWith(text)).toBe(true);
    expect(producer.handler.stats().generationsTimedOut).toBe(1);
  });

  it('leaves items it has no time to start for a redelivery instead of starting them', async () => {
    const producer = await fixture.handler({}, { safetyMarginMs: 300, minStartMs: 1_000 });
    const event = new WorkItemShard().event([{ itemId: 'no-time', prompt: 'x', maxTokens: 10 } as WorkItem]);
    const response = await producer.handler(event, lambdaContext(800));
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: event.Records[0]!.kinesis.sequenceNumber },
    ]);
    expect(await producer.head('no-time')).toBeUndefined();
  });

  it('does not let one long generation hold back the records of the others', async () => {
    // Prepare: one long answer and several short ones on a paced model.
    fixture.bedrock.setTiming({ tokensPerSecond: 300 });
    const producer = await fixture.handler();
    const long: WorkItem = { itemId: 'long', prompt: 'The longest answer', maxTokens: 6000 };
    const short: WorkItem[] = Array.from({ length: 5 }, (_, i) => ({
      itemId: `short-${i}`,
      prompt: `Short ${i}`,
      maxTokens: 30,
    }));
    const running = producer.handler(new WorkItemShard().event([long, ...short]));
    // Act / Assess: every short item ends while the long one is still streaming.
    await until('every short item has its end record', async () => {
      const chunks = await producer.readChunks();
      return short.every((s) => chunks.get(s.itemId)?.some((r) => r.type === 'end'));
    });
    const chunks = await producer.readChunks();
    expect(chunks.get('long')?.some((r) => r.type !== 'delta')).toBe(false);
    for (const s of short)
      expect(checkAttempt(chunks.get(s.itemId) ?? []).text).toBe(
        await fixture.expectedText(s, producer.config),
      );
    await producer.requestCancel('long');
    await running;
  });

  it('runs at most maxConcurrentGenerations generations at once', async () => {
    fixture.bedrock.setTiming({ timeToFirstTokenMs: 0, tokensPerSecond: 400 });
    const producer = await fixture.handler({ MAX_CONCURRENT_GENERATIONS: '3' });
    const items: WorkItem[] = Array.from({ length: 7 }, (_, i) => ({
      itemId: `limited-${i}`,
      prompt: `Limit ${i}`,
      maxTokens: 60,
    }));
    let peak = 0;
    const base = fixture.bedrock.stats().activeStreams;
    const watch = setInterval(() => {
      peak = Math.max(peak, fixture.bedrock.stats().activeStreams - base);
    }, 2);
    try {
      await producer.handler(new WorkItemShard().event(items));
    } finally {
      clearInterval(watch);
    }
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(3);
    const chunks = await producer.readChunks();
    expect(items.every((i) => checkAttempt(chunks.get(i.itemId) ?? []).ending.type === 'end')).toBe(true);
  });
});
