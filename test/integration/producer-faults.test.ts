import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createGeneratorHandler } from '../../producers/generator/handler.js';
import { createLogger, createMetrics } from '../../shared/telemetry.js';
import type { ChunkRecord, WorkItem } from '../../shared/contracts/index.js';
import { WorkItemShard } from '../factories/work-item-events.js';
import {
  attemptOf,
  checkAttempt,
  ProducerFixture,
  type ProducerUnderTest,
  until,
} from './producer-fixture.js';

/** Short pauses, so retries take milliseconds. */
const FAST_RETRIES = {
  attemptBackoff: { maxAttempts: 1, baseDelayMs: 5, maxDelayMs: 20 },
  putRetry: { maxAttempts: 30, baseDelayMs: 5, maxDelayMs: 50 },
};

const errorOf = (record: ChunkRecord | undefined) => {
  if (record?.type !== 'error') throw new Error(`expected an error record, got ${JSON.stringify(record)}`);
  return record;
};

describe('producer under injected faults', () => {
  let fixture: ProducerFixture;
  beforeAll(async () => {
    fixture = await ProducerFixture.start();
  });
  afterEach(() => {
    fixture.bedrock.setFaults({});
    fixture.kinesisFaults.setFaults({ putRecordsFailureRate: 0, throttleRate: 0, delayMs: 0 });
  });
  afterAll(async () => {
    await fixture?.stop();
  });
  /** The item's records are all of its first attempt, and hold exactly the model's text. */
  const expectFirstAttemptText = async (producer: ProducerUnderTest, item: WorkItem) => {
    const records = (await producer.readChunks()).get(item.itemId) ?? [];
    expect(records.every((r) => r.attempt === 1)).toBe(true);
    expect(checkAttempt(records).text).toBe(await fixture.expectedText(item, producer.config));
  };

  describe('model faults', () => {
    it('waits out a throttled request without using an attempt and completes in the same attempt', async () => {
      // Prepare: every second stream request of this prompt is throttled; the warm-up takes the first.
      const producer = await fixture.handler({}, FAST_RETRIES);
      const item: WorkItem = { itemId: 'throttled-once', prompt: 'throttle-me once', maxTokens: 80 };
      fixture.bedrock.setFaults({ throttle: { match: 'throttle-me', everyNth: 2 } });
      await fixture.streamOnce(item, producer.config);
      const throttledBefore = fixture.bedrock.stats().throttled;
      // Act
      await producer.handler(new WorkItemShard().event([item]));
      // Assess
      expect(fixture.bedrock.stats().throttled - throttledBefore).toBe(1);
      await expectFirstAttemptText(producer, item);
      expect(producer.handler.stats()).toMatchObject({
        modelThrottles: 1,
        requestsRefused: 1,
        attemptRetries: 0,
      });
    });

    it('keeps an item waiting for quota through a throttling storm, then completes it in its first attempt', async () => {
      // Prepare: every request is throttled until the storm is lifted.
      const producer = await fixture.handler({ MAX_GENERATION_ATTEMPTS: '1' }, FAST_RETRIES);
      const item: WorkItem = { itemId: 'storm', prompt: 'throttle-me storm', maxTokens: 80 };
      fixture.bedrock.setFaults({ throttle: { match: 'throttle-me', probability: 1 } });
      const throttledBefore = fixture.bedrock.stats().throttled;
      // Act: the storm lasts until the item has been refused five times and says it waits.
      const done = producer.handler(new WorkItemShard().event([item]));
      await until(
        'the item waits for quota after five refusals',
        async () =>
          fixture.bedrock.stats().throttled - throttledBefore >= 5 &&
          (await producer.head(item.itemId))?.waiting === 'quota',
      );
      fixture.bedrock.setFaults({});
      const response = await done;
      // Assess: nothing failed, no attempt was used up, the text is the model's.
      expect(response.batchItemFailures).toEqual([]);
      await expectFirstAttemptText(producer, item);
      expect(await producer.head(item.itemId)).toMatchObject({ claimedAttempt: 1, claimState: 'completed' });
      expect(producer.handler.stats().requestsRefused).toBeGreaterThanOrEqual(5);
    });

    it('opens the breaker on a run of ServiceUnavailableException, fails nothing, and completes the item in its first attempt', async () => {
      const producer = await fixture.handler(
        { MAX_GENERATION_ATTEMPTS: '1' },
        { ...FAST_RETRIES, breaker: { failureThreshold: 3, coolDownMs: 200, maxCoolDownMs: 400 } },
      );
      const item: WorkItem = { itemId: 'overloaded', prompt: 'overloaded model', maxTokens: 80 };
      fixture.bedrock.setFaults({ unavailable: { match: 'overloaded', probability: 1 } });
      const before = fixture.bedrock.stats().unavailable;
      // Act: the model is unavailable until the breaker has opened twice.
      const done = producer.handler(new WorkItemShard().event([item]));
      await until(
        'the breaker opened twice and the item waits',
        async () =>
          producer.handler.stats().breakerOpenings >= 2 &&
          (await producer.head(item.itemId))?.waiting === 'quota',
      );
      fixture.bedrock.setFaults({});
      const response = await done;
      // Assess
      expect(response.batchItemFailures).toEqual([]);
      // Three to open it, then the half-open probe that opened it again.
      expect(fixture.bedrock.stats().unavailable - before).toBeGreaterThanOrEqual(4);
      await expectFirstAttemptText(producer, item);
      expect(await producer.head(item.itemId)).toMatchObject({ claimedAttempt: 1, claimState: 'completed' });
    });

    it('hands the half-open probe to the next request when the probe is throttled, so the breaker still closes', async () => {
      const producer = await fixture.handler(
        { MAX_GENERATION_ATTEMPTS: '1' },
        { ...FAST_RETRIES, breaker: { failureThreshold: 3, coolDownMs: 200, maxCoolDownMs: 400 } },
      );
      const item: WorkItem = {
        itemId: 'overloaded-then-busy',
        prompt: 'overloaded then busy',
        maxTokens: 80,
      };
      fixture.bedrock.setFaults({ unavailable: { match: 'overloaded', probability: 1 } });
      const done = producer.handler(new WorkItemShard().event([item]));
      await until('the breaker opened', async () => producer.handler.stats().breakerOpenings >= 1);
      // Act: the model comes back throttling, so the probes after the cool-down are refused with 429,
      // which says nothing of its availability; then it answers.
      fixture.bedrock.setFaults({ throttle: { match: 'overloaded', probability: 1 } });
      const throttledBefore = fixture.bedrock.stats().throttled;
      await until(
        'two probes were throttled',
        async () => fixture.bedrock.stats().throttled - throttledBefore >= 2,
      );
      fixture.bedrock.setFaults({});
      const response = await done;
      // Assess: a later probe closed the breaker and the item completed in its only attempt.
      expect(response.batchItemFailures).toEqual([]);
      await expectFirstAttemptText(producer, item);
    });

    it('fails an item that waits longer than the maximum wait with quota_wait_exceeded, as its only record', async () => {
      const producer = await fixture.handler({ MAX_QUOTA_WAIT_SECONDS: '1' }, FAST_RETRIES);
      const item: WorkItem = { itemId: 'throttled-always', prompt: 'throttle-me always', maxTokens: 80 };
      fixture.bedrock.setFaults({ throttle: { match: 'throttle-me', probability: 1 } });
      const response = await producer.handler(new WorkItemShard().event([item]));
      expect(response.batchItemFailures).toEqual([]);
      const records = (await producer.readChunks()).get(item.itemId) ?? [];
      expect(records).toHaveLength(1);
      const last = errorOf(checkAttempt(attemptOf(records, 1)).ending);
      expect(last).toMatchObject({
        seq: 0,
        final: true,
        error: { code: 'quota_wait_exceeded', retryable: false },
      });
      expect(await producer.head(item.itemId)).toMatchObject({ claimedAttempt: 1, claimState: 'failed' });
      expect(producer.handler.stats().quotaWaitExceeded).toBe(1);
    });

    it('ends an attempt that fails mid-stream with an error record, then completes a new attempt', async () => {
      // Prepare: the warm-up takes the first matching stream, the producer's first attempt the second.
      const producer = await fixture.handler({}, FAST_RETRIES);
      const item: WorkItem = { itemId: 'mid-stream', prompt: 'break-mid-stream please', maxTokens: 200 };
      fixture.bedrock.setFaults({ midStream: { match: 'break-mid-stream', everyNth: 2, afterTokens: 40 } });
      await fixture.streamOnce(item, producer.config);
      // Act
      await producer.handler(new WorkItemShard().event([item]));
      // Assess
      const records = (await producer.readChunks()).get(item.itemId) ?? [];
      const expected = await fixture.expectedText(item, producer.config);
      const broken = checkAttempt(attemptOf(records, 1));
      expect(errorOf(broken.ending)).toMatchObject({
        final: false,
        error: { code: 'model_stream_error', retryable: true },
      });
      expect(broken.text.length).toBeGreaterThan(0);
      expect(expected.startsWith(broken.text)).toBe(true);
      const retried = checkAttempt(attemptOf(records, 2));
      expect(retried.ending.type).toBe('end');
      expect(retried.text).toBe(expected);
      expect(producer.handler.stats()).toMatchObject({
        attempts: 2,
        attemptRetries: 1,
        generationsCompleted: 1,
      });
    });

    it('releases the item for a redelivery when DynamoDB fails the claim of a new attempt, which the redelivery then completes', async () => {
      // Prepare: the first attempt breaks mid-stream, and every write of the next attempt's claim
      // (the fence) fails as in a DynamoDB brownout; the other calls go through.
      const healthy = await fixture.handler({}, FAST_RETRIES);
      const item: WorkItem = { itemId: 'fence-fails', prompt: 'break-mid-stream again', maxTokens: 200 };
      fixture.bedrock.setFaults({ midStream: { match: 'break-mid-stream', everyNth: 2, afterTokens: 40 } });
      await fixture.streamOnce(item, healthy.config);
      const raw = new DynamoDBClient({ region: 'us-east-1', endpoint: fixture.dynalite.endpoint });
      raw.middlewareStack.add(
        (next) => async (args) => {
          const input = args.input as { UpdateExpression?: string };
          if (input.UpdateExpression?.startsWith('SET claimedAttempt = :to'))
            throw Object.assign(new Error('injected InternalServerError'), {
              name: 'InternalServerError',
              $metadata: { httpStatusCode: 500 },
            });
          return next(args);
        },
        { step: 'initialize', name: 'failFences' },
      );
      const browningOut = createGeneratorHandler({
        config: healthy.config,
        clients: { ...healthy.clients, dynamo: DynamoDBDocumentClient.from(raw) },
        deadLetters: healthy.deadLetters,
        logger: createLogger('producer-test'),
        metrics: createMetrics('producer-test'),
        tuning: { leaseMs: 1_500, ...FAST_RETRIES },
      });
      const event = new WorkItemShard().event([item]);

      // Act: the record as delivered, then (when reported failed) as Lambda delivers it again.
      const first = await browningOut(event);
      const released = await healthy.head(item.itemId);
      const again = await healthy.handler(event);

      // Assess: reported for a redelivery with the claim released (not taken for a takeover), and
      // the redelivery completed a second attempt with exactly the model's text.
      expect(first.batchItemFailures).toEqual([{ itemIdentifier: event.Records[0]!.kinesis.sequenceNumber }]);
      expect(released).toMatchObject({ claimState: 'running', claimedAttempt: 1, leaseUntil: 0 });
      expect(again.batchItemFailures).toEqual([]);
      const records = (await healthy.readChunks()).get(item.itemId) ?? [];
      const retried = checkAttempt(attemptOf(records, 2));
      expect(retried.ending.type).toBe('end');
      expect(retried.text).toBe(await fixture.expectedText(item, healthy.config));
      expect(await healthy.head(item.itemId)).toMatchObject({ claimState: 'completed', claimedAttempt: 2 });
      raw.destroy();
    });

    it('treats a stream that ends without its final event as a failure, never a completion', async () => {
      const producer = await fixture.handler({}, FAST_RETRIES);
      const item: WorkItem = {
        itemId: 'truncated',
        prompt: 'cut-me-short please',
        modelId: 'meta.llama3-1-8b-instruct-v1:0',
        maxTokens: 200,
      };
      fixture.bedrock.setFaults({ truncate: { match: 'cut-me-short', everyNth: 2, afterTokens: 30 } });
      await fixture.streamOnce(item, producer.config);
      await producer.handler(new WorkItemShard().event([item]));
      const records = (await producer.readChunks()).get(item.itemId) ?? [];
      const cut = checkAttempt(attemptOf(records, 1));
      expect(errorOf(cut.ending)).toMatchObject({
        final: false,
        error: { code: 'stream_truncated', retryable: true },
      });
      const retried = checkAttempt(attemptOf(records, 2));
      expect(retried.ending.type).toBe('end');
      expect(retried.text).toBe(await fixture.expectedText(item, producer.config));
    });

    it('gives up after maxGenerationAttempts, recording the last failure as final and not retryable', async () => {
      const producer = await fixture.handler({ MAX_GENERATION_ATTEMPTS: '3' }, FAST_RETRIES);
      const item: WorkItem = {
        itemId: 'always-cut',
        prompt: 'always-cut please',
        modelId: 'amazon.nova-lite-v1:0',
      };
      fixture.bedrock.setFaults({ truncate: { match: 'always-cut', probability: 1, afterTokens: 5 } });
      await producer.handler(new WorkItemShard().event([item]));
      const records = (await producer.readChunks()).get(item.itemId) ?? [];
      expect(new Set(records.map((r) => r.attempt))).toEqual(new Set([1, 2, 3]));
      const endings = [1, 2, 3].map((a) => errorOf(checkAttempt(attemptOf(records, a)).ending));
      expect(endings.map((e) => [e.final, e.error.code, e.error.retryable])).toEqual([
        [false, 'stream_truncated', true],
        [false, 'stream_truncated', true],
        [true, 'stream_truncated', false],
      ]);
      expect(producer.handler.stats()).toMatchObject({ generationsFailed: 1, attempts: 3 });
    });
  });

  describe('fallback models', () => {
    const PRIMARY = 'anthropic.claude-3-5-haiku-20241022-v1:0';
    const FALLBACK = 'amazon.nova-lite-v1:0';
    /** One request a minute for the primary: the first item spends it, the next must wait. */
    const env = {
      MODEL_QUOTAS: JSON.stringify({ [PRIMARY]: { requestsPerMinute: 1, tokensPerMinute: 100_000 } }),
      MODEL_FALLBACKS: JSON.stringify({ [PRIMARY]: [FALLBACK] }),
      FALLBACK_AFTER_MS: '200',
    };

    it('runs an item on its fallback once the primary is out of quota, and records the model that ran', async () => {
      const producer = await fixture.handler(env, FAST_RETRIES);
      const first: WorkItem = {
        itemId: 'primary-spends-quota',
        prompt: 'first in line',
        modelId: PRIMARY,
        maxTokens: 60,
      };
      const second: WorkItem = {
        itemId: 'runs-on-fallback',
        prompt: 'second in line',
        modelId: PRIMARY,
        maxTokens: 60,
      };
      await producer.handler(new WorkItemShard().event([first]));
      // Act: the primary has no request left this minute.
      const response = await producer.handler(new WorkItemShard().event([second]));
      // Assess: the fallback wrote the text, and the stored item names it.
      expect(response.batchItemFailures).toEqual([]);
      const records = (await producer.readChunks()).get(second.itemId) ?? [];
      expect(records.every((r) => r.attempt === 1)).toBe(true);
      expect(checkAttempt(records).text).toBe(
        await fixture.expectedText({ ...second, modelId: FALLBACK }, producer.config),
      );
      expect(await producer.head(second.itemId)).toMatchObject({
        modelId: FALLBACK,
        claimState: 'completed',
      });
      expect(await producer.head(first.itemId)).toMatchObject({ modelId: PRIMARY, claimState: 'completed' });
      expect(producer.handler.stats()).toMatchObject({ fallbacksUsed: 1, modelThrottles: 0 });
    });

    it('keeps an item on its own model when it has no fallback, waiting instead', async () => {
      const producer = await fixture.handler(
        { ...env, MODEL_FALLBACKS: '{}', MAX_QUOTA_WAIT_SECONDS: '1' },
        FAST_RETRIES,
      );
      const first: WorkItem = {
        itemId: 'spends-quota',
        prompt: 'first in line',
        modelId: PRIMARY,
        maxTokens: 60,
      };
      const second: WorkItem = {
        itemId: 'no-fallback',
        prompt: 'second in line',
        modelId: PRIMARY,
        maxTokens: 60,
      };
      await producer.handler(new WorkItemShard().event([first]));
      await producer.handler(new WorkItemShard().event([second]));
      expect(await producer.head(second.itemId)).toMatchObject({ modelId: PRIMARY, claimState: 'failed' });
      expect(producer.handler.stats()).toMatchObject({ fallbacksUsed: 0, quotaWaitExceeded: 1 });
    });
  });

  describe('chunk stream faults', () => {
    it('keeps every item in order when PutRecords rejects records and throttles calls', async () => {
      // Prepare
      const producer = await fixture.handler(
        { FLUSH_INTERVAL_MS: '1', FLUSH_MAX_BYTES: '256' },
        FAST_RETRIES,
      );
      fixture.kinesisFaults.setFaults({ putRecordsFailureRate: 0.3, throttleRate: 0.2 });
      const items: WorkItem[] = Array.from({ length: 8 }, (_, i) => ({
        itemId: `flaky-${i}`,
        prompt: `Flaky chunk stream ${i}`,
        maxTokens: 300,
      }));
      const before = fixture.kinesisFaults.stats();
      // Act
      const response = await producer.handler(new WorkItemShard().event(items));
      // Assess
      expect(response.batchItemFailures).toEqual([]);
      const after = fixture.kinesisFaults.stats();
      expect(after.recordsFailed - before.recordsFailed).toBeGreaterThan(0);
      expect(after.throttledCalls - before.throttledCalls).toBeGreaterThan(0);
      const chunks = await producer.readChunks();
      for (const item of items) {
        // Stream order is seq order, with no gap and no duplicate: no later seq became visible first.
        const { text, ending } = checkAttempt(chunks.get(item.itemId) ?? []);
        expect(ending.type).toBe('end');
        expect(text).toBe(await fixture.expectedText(item, producer.config));
      }
      expect(producer.handler.stats().putRetries).toBeGreaterThan(0);
    });

    it('holds each generation to its buffer cap while puts stall, by not pulling from the model', async () => {
      // Prepare: a small cap, slow puts, and a model that streams as fast as it is read.
      const cap = 2048;
      const producer = await fixture.handler(
        { MAX_BUFFERED_BYTES_PER_GENERATION: String(cap), FLUSH_MAX_BYTES: '512', FLUSH_INTERVAL_MS: '1' },
        FAST_RETRIES,
      );
      fixture.kinesisFaults.setFaults({ delayMs: 15 });
      const items: WorkItem[] = Array.from({ length: 3 }, (_, i) => ({
        itemId: `stalled-${i}`,
        prompt: `A long answer while Kinesis is slow ${i}`,
        maxTokens: 3000,
      }));
      // Act
      await producer.handler(new WorkItemShard().event(items));
      // Assess
      const stats = producer.handler.stats();
      const chunks = await producer.readChunks();
      let longest = 0;
      for (const item of items) {
        const { text } = checkAttempt(chunks.get(item.itemId) ?? []);
        expect(text).toBe(await fixture.expectedText(item, producer.config));
        longest = Math.max(longest, Buffer.byteLength(text));
      }
      // The cap was reached (the model outran Kinesis) and held: at most one model event beyond it.
      expect(longest).toBeGreaterThan(4 * cap);
      expect(stats.backpressurePauses).toBeGreaterThan(0);
      expect(stats.peakBufferedBytes).toBeGreaterThanOrEqual(cap);
      expect(stats.peakBufferedBytes).toBeLessThan(cap + stats.largestTextEventBytes);
      console.info(
        `buffer cap ${cap} B with puts stalled: peak ${stats.peakBufferedBytes} B, ` +
          `${stats.backpressurePauses} pauses, largest model event ${stats.largestTextEventBytes} B, ` +
          `${longest} B of text per item`,
      );
    });

    it('holds the buffer cap while the chunk stream throttles calls', async () => {
      const cap = 1024;
      const producer = await fixture.handler(
        { MAX_BUFFERED_BYTES_PER_GENERATION: String(cap), FLUSH_MAX_BYTES: '256', FLUSH_INTERVAL_MS: '1' },
        FAST_RETRIES,
      );
      fixture.kinesisFaults.setFaults({ throttleRate: 0.3 });
      const item: WorkItem = { itemId: 'throttled-stream', prompt: 'Throttled chunk stream', maxTokens: 400 };
      const throttledBefore = fixture.kinesisFaults.stats().throttledCalls;
      await producer.handler(new WorkItemShard().event([item]));
      const stats = producer.handler.stats();
      const { text } = checkAttempt((await producer.readChunks()).get(item.itemId) ?? []);
      expect(text).toBe(await fixture.expectedText(item, producer.config));
      expect(fixture.kinesisFaults.stats().throttledCalls - throttledBefore).toBeGreaterThan(0);
      expect(stats.backpressurePauses).toBeGreaterThan(0);
      expect(stats.peakBufferedBytes).toBeLessThan(cap + stats.largestTextEventBytes);
    });

    it('reports an item whose records cannot be written and releases it, so the redelivery takes it over', async () => {
      // Prepare: every put is throttled, and a record gets two tries.
      const producer = await fixture.handler(
        {},
        { ...FAST_RETRIES, putRetry: { maxAttempts: 2, baseDelayMs: 5, maxDelayMs: 10 } },
      );
      fixture.kinesisFaults.setFaults({ throttleRate: 1 });
      const item: WorkItem = { itemId: 'unwritable', prompt: 'Nowhere to write', maxTokens: 60 };
      const shard = new WorkItemShard();
      const event = shard.event([item]);
      // Act
      const response = await producer.handler(event);
      // Assess
      expect(response.batchItemFailures).toEqual([
        { itemIdentifier: event.Records[0]!.kinesis.sequenceNumber },
      ]);
      expect(await producer.head(item.itemId)).toMatchObject({
        claimedAttempt: 1,
        claimState: 'running',
        leaseUntil: 0,
      });
      // The event source mapping delivers the record again once the stream takes writes.
      fixture.kinesisFaults.setFaults({ throttleRate: 0 });
      const again = await producer.handler(event);
      expect(again.batchItemFailures).toEqual([]);
      const records = (await producer.readChunks()).get(item.itemId) ?? [];
      expect(records.every((r) => r.attempt === 2)).toBe(true);
      expect(checkAttempt(records).text).toBe(await fixture.expectedText(item, producer.config));
    });
  });
});
