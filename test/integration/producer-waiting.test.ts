import { Logger } from '@aws-lambda-powertools/logger';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createGeneratorHandler, type GeneratorTuning } from '../../producers/generator/handler.js';
import type { WorkItem } from '../../shared/contracts/index.js';
import { createMetrics, type Metrics } from '../../shared/telemetry.js';
import { lambdaContext, WorkItemShard } from '../factories/work-item-events.js';
import { checkAttempt, ProducerFixture, type ProducerUnderTest, until } from './producer-fixture.js';

const MODEL = 'anthropic.claude-3-5-haiku-20241022-v1:0';

/** A second producer on the same stack whose clock runs a minute ahead (a redelivery after a wait). */
function aMinuteLater(
  producer: ProducerUnderTest,
  tuning?: Partial<GeneratorTuning>,
  metrics: Metrics = createMetrics('producer-test'),
) {
  return createGeneratorHandler({
    config: producer.config,
    clients: producer.clients,
    deadLetters: producer.deadLetters,
    logger: new Logger({ serviceName: 'producer-test', logLevel: 'SILENT' }),
    metrics,
    now: () => Date.now() + 61_000,
    ...(tuning ? { tuning } : {}),
  });
}

/** Reads the `QueueWait` values (ms) a handler's metrics are given from now on. */
function recordQueueWaits(metrics: Metrics): () => number[] {
  const added = vi.spyOn(metrics, 'addMetric');
  return () => added.mock.calls.filter(([name]) => name === 'QueueWait').map(([, , value]) => value);
}

/** The item ids of the waiting marks (`SET waiting ...` item writes) a producer's client sends. */
function recordWaitingMarks(producer: ProducerUnderTest): string[] {
  const marked: string[] = [];
  const middleware =
    (next: (args: { request: unknown }) => Promise<unknown>) => async (args: { request: unknown }) => {
      const body = (args.request as { body?: unknown }).body;
      const text = body instanceof Uint8Array ? Buffer.from(body).toString('utf8') : String(body);
      if (text.includes('"SET waiting')) {
        const { Key } = JSON.parse(text) as { Key: { itemId: { S: string } } };
        marked.push(Key.itemId.S);
      }
      return next(args);
    };
  producer.clients.dynamo.middlewareStack.add(
    middleware as never,
    { step: 'finalizeRequest', name: 'recordWaitingMarks' } as never,
  );
  return marked;
}

describe('producer: waiting for quota across invocations', () => {
  let fixture: ProducerFixture;
  beforeAll(async () => {
    fixture = await ProducerFixture.start();
  });
  afterAll(async () => {
    await fixture?.stop();
  });

  it('releases an item still waiting for quota near the time budget; its redelivery completes it exactly, once', async () => {
    // Prepare: a quota of one request a minute, so the second item must wait past this invocation.
    const producer = await fixture.handler(
      { MODEL_QUOTAS: JSON.stringify({ [MODEL]: { requestsPerMinute: 1, tokensPerMinute: 1_000_000 } }) },
      { safetyMarginMs: 600, minStartMs: 600 },
    );
    const items: WorkItem[] = [
      { itemId: 'first-in', prompt: 'The first answer', maxTokens: 40 },
      { itemId: 'waits', prompt: 'The second answer', maxTokens: 40 },
    ];
    const event = new WorkItemShard().event(items);
    const waits = recordQueueWaits(producer.metrics);

    // Act: one invocation with 3 s left.
    const started = Date.now();
    const response = await producer.handler(event, lambdaContext(3_000));
    const ended = Date.now();

    // Assess: one item ran; the other, still waiting, is released for a redelivery, still queued,
    // having used no attempt.
    expect(producer.handler.stats()).toMatchObject({ waitingReleased: 1, generationsCompleted: 1 });
    const first = await producer.readChunks();
    const ran = items.find((i) => first.has(i.itemId));
    const waiting = items.find((i) => !first.has(i.itemId));
    if (!ran || !waiting) throw new Error('expected one item to run and one to wait');
    const index = items.indexOf(waiting);
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: event.Records[index]?.kinesis.sequenceNumber },
    ]);
    expect(await producer.head(waiting.itemId)).toMatchObject({
      status: 'queued',
      waiting: 'quota',
      leaseUntil: 0,
    });
    // The released item says how long it has waited so far: from its claim to the release.
    expect(Math.max(...waits())).toBeGreaterThanOrEqual(1_000);
    expect(Math.max(...waits())).toBeLessThanOrEqual(ended - started);

    // Act: Lambda delivers the batch again a minute later (a producer whose clock is a minute on).
    const laterMetrics = createMetrics('producer-test');
    const waitsLater = recordQueueWaits(laterMetrics);
    const later = aMinuteLater(producer, { leaseMs: 1_500 }, laterMetrics);
    const again = await later(event, lambdaContext(30_000));

    // Assess: the first item is not generated again; the released one completes with the model's text.
    expect(again.batchItemFailures).toEqual([]);
    const chunks = await producer.readChunks();
    expect(chunks.get(ran.itemId)?.filter((r) => r.type === 'end')).toHaveLength(1);
    const waited = chunks.get(waiting.itemId) ?? [];
    expect(new Set(waited.map((r) => r.attempt)).size).toBe(1);
    expect(checkAttempt(waited).text).toBe(await fixture.expectedText(waiting, producer.config));
    expect(later.stats()).toMatchObject({
      generationsStarted: 1,
      generationsCompleted: 1,
      duplicatesSkipped: 1,
    });
    // Its admission reports the whole wait, across the redelivery: from its first claim, a minute on.
    expect(waitsLater()).toHaveLength(1);
    expect(waitsLater()[0]).toBeGreaterThanOrEqual(61_000);
  });

  it('creates an item that arrives behind waiting ones as waiting, in its claim, with no write of its own to say so', async () => {
    // Prepare: one request a minute; one item runs and the next waits for quota.
    const producer = await fixture.handler({
      MODEL_QUOTAS: JSON.stringify({ [MODEL]: { requestsPerMinute: 1, tokensPerMinute: 1_000_000 } }),
    });
    const marks = recordWaitingMarks(producer);
    const first: WorkItem[] = [
      { itemId: 'crowd-runs', prompt: 'The answer that runs', maxTokens: 40 },
      { itemId: 'crowd-waits', prompt: 'The answer that waits first', maxTokens: 40 },
    ];
    const firstCall = producer.handler(new WorkItemShard().event(first), lambdaContext(10 * 60_000));
    await until('an item waits for quota', async () =>
      (await Promise.all(first.map((i) => producer.head(i.itemId)))).some((h) => h?.waiting === 'quota'),
    );

    // Act: two more items arrive on another shard while one waits.
    const later: WorkItem[] = [
      { itemId: 'crowd-later-1', prompt: 'A later answer', maxTokens: 40 },
      { itemId: 'crowd-later-2', prompt: 'Another later answer', maxTokens: 40 },
    ];
    const laterCall = producer.handler(new WorkItemShard().event(later), lambdaContext(10 * 60_000));
    await until('the later items are claimed', async () =>
      (await Promise.all(later.map((i) => producer.head(i.itemId)))).every((h) => h !== undefined),
    );

    // Assess: their heads say they wait for quota from their creation, and no mark was sent for them
    // (the item that waited first was marked once).
    for (const item of later) {
      const head = await producer.head(item.itemId);
      expect(head).toMatchObject({
        status: 'queued',
        waiting: 'quota',
        waitingSince: Date.parse(head?.createdAt ?? ''),
      });
    }
    expect(marks.filter((id) => id.startsWith('crowd-later'))).toEqual([]);
    expect(marks.filter((id) => id.startsWith('crowd-'))).toHaveLength(1);
    producer.handler.drain();
    await Promise.all([firstCall, laterCall]);
  });

  it('releases the waiting items at once when its host stops, and claims no more; the redelivery completes them', async () => {
    // Prepare: one request a minute, and a long budget, so only the stop can end the wait.
    const producer = await fixture.handler({
      MODEL_QUOTAS: JSON.stringify({ [MODEL]: { requestsPerMinute: 1, tokensPerMinute: 1_000_000 } }),
    });
    const items: WorkItem[] = [
      { itemId: 'drain-first', prompt: 'The first answer before a stop', maxTokens: 40 },
      { itemId: 'drain-waits', prompt: 'The second answer before a stop', maxTokens: 40 },
    ];
    const event = new WorkItemShard().event(items);
    const invocation = producer.handler(event, lambdaContext(10 * 60_000));
    const waitingItem = async () => {
      for (const item of items) if ((await producer.head(item.itemId))?.waiting === 'quota') return item;
      return undefined;
    };
    await until('an item waits for quota', async () => (await waitingItem()) !== undefined);
    const waiting = (await waitingItem()) as WorkItem;

    // Act: the host stops.
    producer.handler.drain();
    const response = await invocation;
    const late: WorkItem = { itemId: 'drain-late', prompt: 'Arrives after the stop', maxTokens: 40 };
    const afterStop = await producer.handler(new WorkItemShard().event([late]), lambdaContext(10 * 60_000));

    // Assess: the waiting item is released (still queued, unleased, no attempt used); a later item is
    // left for a redelivery without a claim.
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: event.Records[items.indexOf(waiting)]?.kinesis.sequenceNumber },
    ]);
    expect(await producer.head(waiting.itemId)).toMatchObject({ status: 'queued', leaseUntil: 0 });
    expect(afterStop.batchItemFailures).toHaveLength(1);
    expect(await producer.head('drain-late')).toBeUndefined();

    // Act: the restarted stack's producer, a minute on, gets the batch again.
    const restarted = aMinuteLater(producer);
    const again = await restarted(event, lambdaContext(30_000));

    // Assess: the released item completes in one attempt with the model's text.
    expect(again.batchItemFailures).toEqual([]);
    const records = (await producer.readChunks()).get(waiting.itemId) ?? [];
    expect(new Set(records.map((r) => r.attempt)).size).toBe(1);
    expect(checkAttempt(records).text).toBe(await fixture.expectedText(waiting, producer.config));
  });
});
