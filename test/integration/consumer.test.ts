import { SQSClient } from '@aws-sdk/client-sqs';
import { type DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReassemblerHandler } from '../../consumers/reassembler/handler.js';
import { createStoreMeter, type StoreMeter, UNKNOWN_MODEL_ID } from '../../consumers/reassembler/store.js';
import { type DeadLetterStore, startDeadLetterStore } from '../../local/dead-letters/index.js';
import type { ChunkRecord } from '../../shared/contracts/chunk-record.js';
import { type DeadLetterSink, sqsDeadLetterSink } from '../../shared/dead-letters.js';
import type { ItemUpdate, UpdatePublisher } from '../../shared/delivery.js';
import { readItem, readItemHead } from '../../shared/items.js';
import { attemptRecords, longText, splitText, TEST_USAGE } from '../factories/chunk-records.js';
import { deliverLikeLambda, kinesisEvent, TestShard } from '../factories/kinesis-events.js';
import {
  awsError,
  type ConsumerWorld,
  faultyDynamo,
  putClaimedHead,
  recordingPublisher,
  startConsumerWorld,
  telemetry,
  textRowKeys,
} from './consumer-fixture.js';

describe('reassembler on dynalite', () => {
  let world: ConsumerWorld;
  let deadLetterStore: DeadLetterStore;
  let sqs: SQSClient;
  let deadLetters: DeadLetterSink;
  let n = 0;
  const newId = (name: string) => `${name}-${++n}`;

  beforeAll(async () => {
    world = await startConsumerWorld();
    deadLetterStore = await startDeadLetterStore();
    sqs = new SQSClient({ region: 'us-east-1', endpoint: deadLetterStore.endpoint });
    deadLetters = sqsDeadLetterSink(sqs, deadLetterStore.queueUrl(), telemetry('dead-letters').logger);
  });
  afterAll(async () => {
    sqs.destroy();
    await deadLetterStore.stop();
    await world.stop();
  });

  const consumer = (
    options: {
      dynamo?: DynamoDBDocumentClient;
      publisher?: UpdatePublisher;
      deadLetters?: DeadLetterSink;
      sealBytes?: number;
      meter?: StoreMeter;
    } = {},
  ) =>
    createReassemblerHandler({
      config: world.config,
      clients: { dynamo: options.dynamo ?? world.dynamo },
      deadLetters: options.deadLetters ?? deadLetters,
      publisher: options.publisher ?? recordingPublisher(),
      ...telemetry('consumer'),
      ...(options.sealBytes ? { sealBytes: options.sealBytes } : {}),
      ...(options.meter ? { meter: options.meter } : {}),
    });

  /** Records of several items, interleaved one record at a time as concurrent generations put them. */
  const interleave = (...streams: ChunkRecord[][]) => {
    const out: ChunkRecord[] = [];
    for (let i = 0; streams.some((s) => i < s.length); i++) {
      for (const s of streams) {
        const record = s[i];
        if (record) out.push(record);
      }
    }
    return out;
  };

  const textOf = async (itemId: string) => (await readItem(world.dynamo, world.config.tables, itemId))?.text;

  it('completes interleaved items from Lambda-shaped batches with exactly the produced text', async () => {
    // Prepare
    const texts = { a: 'Streams of 流れ and 😀 emoji, ', b: longText(3000), c: 'short' };
    const ids = { a: newId('mix'), b: newId('mix'), c: newId('mix') };
    const createdAt = '2030-01-02T03:04:05.000Z';
    for (const id of Object.values(ids)) {
      await putClaimedHead(world, id, { createdAt, metadata: { team: 'search', run: 7 } });
    }
    const records = interleave(
      attemptRecords(ids.a, 1, splitText(texts.a, 9), { type: 'end', costUsd: 0.001 }),
      attemptRecords(ids.b, 1, splitText(texts.b, 40), { type: 'end', costUsd: 0.002 }),
      attemptRecords(ids.c, 1, splitText(texts.c, 2), { type: 'end' }),
    );

    // Act
    await deliverLikeLambda(consumer({ sealBytes: 512 }), new TestShard().records(records), {
      batchSizes: [7, 3, 11],
    });

    // Assess
    for (const key of ['a', 'b', 'c'] as const) {
      const item = await readItem(world.dynamo, world.config.tables, ids[key]);
      expect(item).toMatchObject({
        itemId: ids[key],
        status: 'completed',
        attempt: 1,
        text: texts[key],
        usage: TEST_USAGE,
        modelId: 'anthropic.claude-3-5-haiku-20241022-v1:0',
        metadata: { team: 'search', run: 7 },
        createdAt,
        error: null,
      });
      expect(item?.firstTokenAt).toEqual(expect.any(String));
      expect(item?.completedAt).toEqual(expect.any(String));
    }
    expect((await readItem(world.dynamo, world.config.tables, ids.a))?.costUsd).toBe(0.001);
    expect((await readItem(world.dynamo, world.config.tables, ids.c))?.costUsd).toBeNull();
  });

  it('stores and returns a 1 MB output with multi-byte characters whole, keeping the head row small', async () => {
    // Prepare
    const id = newId('big');
    await putClaimedHead(world, id);
    const text = longText(1024 * 1024);
    const records = attemptRecords(id, 1, splitText(text, 300), { type: 'end' });

    // Act
    await deliverLikeLambda(consumer(), new TestShard().records(records), { batchSizes: [100] });

    // Assess
    const item = await readItem(world.dynamo, world.config.tables, id);
    expect(item?.status).toBe('completed');
    expect(item?.text.length).toBe(text.length);
    expect(item?.text === text).toBe(true);
    const { Item: head } = await world.dynamo.send(
      new GetCommand({ TableName: world.config.tables.items, Key: { itemId: id }, ConsistentRead: true }),
    );
    expect(Buffer.byteLength(JSON.stringify(head))).toBeLessThan(32 * 1024);
    const parts = (await textRowKeys(world, id)).filter((key) => key.startsWith('part#'));
    expect(parts.length).toBe(head?.parts);
  });

  it('sends malformed records to the dead-letter store with the reason, and applies the others', async () => {
    // Prepare
    const id = newId('dl');
    await putClaimedHead(world, id);
    const shard = new TestShard();
    const good = attemptRecords(id, 1, ['good ', 'text'], { type: 'end' });
    const notJson = shard.record('{"v":1, oops', id);
    const notChunk = shard.record(
      JSON.stringify({ v: 1, itemId: id, attempt: 1, seq: -1, type: 'delta' }),
      id,
    );
    const notUtf8 = shard.record(Buffer.from([0xff, 0xfe, 0xfd]), id);
    const before = (await deadLetterStore.list()).length;

    // Act
    const result = await consumer()(
      kinesisEvent([
        shard.record(good[0]!),
        notJson,
        notChunk,
        shard.record(good[1]!),
        notUtf8,
        shard.record(good[2]!),
      ]),
    );

    // Assess
    expect(result.batchItemFailures).toEqual([]);
    expect(await textOf(id)).toBe('good text');
    const letters = (await deadLetterStore.list()).slice(before).map((m) => m.letter);
    expect(letters).toHaveLength(3);
    expect(
      letters.map((l) => (l && 'kind' in l ? [l.source, l.record.sequenceNumber, l.record.data] : l)),
    ).toEqual(
      [notJson, notChunk, notUtf8].map((r) => ['consumer', r.kinesis.sequenceNumber, r.kinesis.data]),
    );
    const reasons = letters.map((l) => (l && 'reason' in l ? l.reason : ''));
    expect(reasons[0]).toMatch(/not JSON/);
    expect(reasons[1]).toMatch(/not a chunk record: .*seq/);
    expect(reasons[2]).toMatch(/not valid UTF-8/);
  });

  it('reports a malformed record for redelivery when the dead-letter store cannot take it', async () => {
    // Prepare
    const id = newId('dl-down');
    await putClaimedHead(world, id);
    const unreachable = sqsDeadLetterSink(
      sqs,
      deadLetterStore.queueUrl('no-such-queue'),
      telemetry('dl').logger,
    );
    const shard = new TestShard();
    const [first, second] = attemptRecords(id, 1, ['kept'], { type: 'end' });
    const bad = shard.record('not json', id);

    // Act
    const result = await consumer({ deadLetters: unreachable })(
      kinesisEvent([shard.record(first!), bad, shard.record(second!)]),
    );

    // Assess
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: bad.kinesis.sequenceNumber }]);
    expect(await readItem(world.dynamo, world.config.tables, id)).toMatchObject({
      status: 'completed',
      text: 'kept',
    });
  });

  it('reassembles exactly when a consumer crashes part-way through a batch and the whole batch is redelivered', async () => {
    // Prepare
    const ids = [newId('crash'), newId('crash')];
    for (const id of ids) await putClaimedHead(world, id);
    const texts = ids.map((_, i) => longText(2000 + i * 500));
    const batch = new TestShard().records(
      interleave(...ids.map((id, i) => attemptRecords(id, 1, splitText(texts[i]!, 20), { type: 'end' }))),
    );

    // Act: the first invocation applies a prefix, then dies; the mapping redelivers everything.
    await consumer({ sealBytes: 300 })(kinesisEvent(batch.slice(0, 17)));
    const result = await consumer({ sealBytes: 300 })(kinesisEvent(batch));

    // Assess
    expect(result.batchItemFailures).toEqual([]);
    for (const [i, id] of ids.entries()) expect(await textOf(id)).toBe(texts[i]);
  });

  it('reports only the failed item’s first record when its write fails after its parts were written, and redelivery loses and duplicates nothing', async () => {
    // Prepare
    const ids = [newId('fail'), newId('fail'), newId('fail')];
    for (const id of ids) await putClaimedHead(world, id);
    const texts = ids.map((_, i) => longText(1500 + 100 * i));
    const records = new TestShard().records(
      interleave(...ids.map((id, i) => attemptRecords(id, 1, splitText(texts[i]!, 12), { type: 'end' }))),
    );
    const victim = ids[1]!;
    let partsWritten = 0;
    const crashing = faultyDynamo(world, (operation, input) => {
      if (operation === 'BatchWriteItem' && JSON.stringify(input).includes(victim)) partsWritten += 1;
      return operation === 'UpdateItem' && JSON.stringify(input).includes(victim)
        ? awsError('InternalServerError')
        : undefined;
    });
    const firstOfVictim = records.find((r) => r.kinesis.partitionKey === victim)!;

    // Act
    const result = await consumer({ dynamo: crashing, sealBytes: 256 })(kinesisEvent(records));

    // Assess
    expect(partsWritten).toBeGreaterThan(0);
    expect(result.batchItemFailures).toEqual([{ itemIdentifier: firstOfVictim.kinesis.sequenceNumber }]);
    expect(await textOf(ids[0]!)).toBe(texts[0]);
    expect((await readItemHead(world.dynamo, world.config.tables, victim))?.nextSeq).toBe(0);

    // Act: the mapping redelivers from the reported record, the other items' records included.
    const from = records.indexOf(firstOfVictim);
    await deliverLikeLambda(consumer({ sealBytes: 256 }), records.slice(from));

    // Assess
    for (const [i, id] of ids.entries()) expect(await textOf(id)).toBe(texts[i]);
  });

  /** A client on which BatchGetItem answers only half the keys, returning the rest as unprocessed. */
  const halfAnsweringReads = (times: number) => {
    let partial = 0;
    const dynamo = faultyDynamo(world, () => undefined);
    dynamo.middlewareStack.add(
      (next, context) => async (args) => {
        const input = args.input as { RequestItems?: Record<string, { Keys: unknown[] }> };
        const table = world.config.tables.items;
        const request = input.RequestItems?.[table];
        if (context.commandName !== 'BatchGetItemCommand' || !request || partial >= times) return next(args);
        partial += 1;
        const half = Math.floor(request.Keys.length / 2);
        const result = await next({
          ...args,
          input: { ...input, RequestItems: { [table]: { ...request, Keys: request.Keys.slice(0, half) } } },
        });
        const output = result.output as { UnprocessedKeys?: Record<string, unknown> };
        output.UnprocessedKeys = { [table]: { ...request, Keys: request.Keys.slice(half) } };
        return result;
      },
      { step: 'initialize', name: 'halfAnsweringReads' },
    );
    return { dynamo, partialAnswers: () => partial };
  };

  it.each([
    ['reads the unprocessed keys again', 2, 0],
    ['falls back to reading each head when keys stay unprocessed', 1_000, 5],
  ])('reads the heads of 130 items 100 at a time and %s', async (_case, partialTimes, singleReads) => {
    // Prepare
    const ids = Array.from({ length: 130 }, () => newId('many'));
    for (const id of ids) await putClaimedHead(world, id);
    const reads = halfAnsweringReads(partialTimes);
    const meter = createStoreMeter();

    // Act
    const result = await consumer({ dynamo: reads.dynamo, meter })(
      kinesisEvent(new TestShard().records(ids.flatMap((id) => attemptRecords(id, 1, [`text of ${id}`])))),
    );

    // Assess
    expect(result.batchItemFailures).toEqual([]);
    expect(reads.partialAnswers()).toBeGreaterThanOrEqual(2);
    // 100 keys halved for 5 rounds leave 4 unread, 30 keys leave 1.
    expect(meter.calls.GetItem ?? 0).toBe(singleReads);
    for (const id of ids) expect(await textOf(id)).toBe(`text of ${id}`);
  });

  it('retries a throttled write and applies the batch without reporting a failure', async () => {
    // Prepare
    const id = newId('throttled');
    await putClaimedHead(world, id);
    let throttles = 0;
    const throttling = faultyDynamo(world, (operation) =>
      operation === 'UpdateItem' && throttles++ < 2
        ? awsError('ProvisionedThroughputExceededException', 400)
        : undefined,
    );

    // Act
    const result = await consumer({ dynamo: throttling })(
      kinesisEvent(
        new TestShard().records(attemptRecords(id, 1, ['slow ', 'but ', 'sure'], { type: 'end' })),
      ),
    );

    // Assess
    expect(throttles).toBe(3);
    expect(result.batchItemFailures).toEqual([]);
    expect(await textOf(id)).toBe('slow but sure');
  });

  it('never doubles text when two invocations write the same item at once', async () => {
    // Prepare
    const id = newId('race');
    await putClaimedHead(world, id);
    const text = longText(4000);
    const records = new TestShard().records(attemptRecords(id, 1, splitText(text, 30), { type: 'end' }));

    // Act: overlapping batches race; whatever loses is redelivered, as the mapping would.
    const racers = [records.slice(0, 20), records.slice(0, 25), records.slice(10, 31)];
    await Promise.all(racers.map((batch) => deliverLikeLambda(consumer({ sealBytes: 200 }), batch)));

    // Assess
    expect(await textOf(id)).toBe(text);
    expect((await readItemHead(world.dynamo, world.config.tables, id))?.status).toBe('completed');
  });

  it('re-reads and recomputes after losing a conditional write to another writer, applying nothing twice', async () => {
    // Prepare
    const id = newId('lost-race');
    await putClaimedHead(world, id);
    const text = longText(3000);
    const records = new TestShard().records(attemptRecords(id, 1, splitText(text, 12), { type: 'end' }));
    let rivalRan = false;
    // Just before this writer's head write, another invocation applies an overlapping batch.
    const slowed = faultyDynamo(world, () => undefined);
    slowed.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UpdateItemCommand' && !rivalRan) {
          rivalRan = true;
          await consumer({ sealBytes: 500 })(kinesisEvent(records.slice(0, 8)));
        }
        return next(args);
      },
      { step: 'initialize', name: 'rival' },
    );
    const meter = createStoreMeter();

    // Act
    const result = await consumer({ dynamo: slowed, sealBytes: 500, meter })(
      kinesisEvent(records.slice(0, 10)),
    );
    await consumer({ sealBytes: 500 })(kinesisEvent(records.slice(10)));

    // Assess
    expect(result.batchItemFailures).toEqual([]);
    expect(meter.calls.UpdateItem).toBe(2);
    expect(meter.calls.GetItem).toBe(1);
    expect(await textOf(id)).toBe(text);
  });

  it('holds records that arrive ahead of a gap durably, and applies them in a later invocation when the gap fills', async () => {
    // Prepare
    const id = newId('gap');
    await putClaimedHead(world, id);
    const records = new TestShard().records(
      attemptRecords(id, 1, ['a', 'b', 'c', 'd', 'e'], { type: 'end' }),
    );

    // Act: seq 3.. arrive first, in an invocation whose process then goes away.
    const early = await consumer()(kinesisEvent(records.slice(3)));

    // Assess
    expect(early.batchItemFailures).toEqual([]);
    expect(await readItemHead(world.dynamo, world.config.tables, id)).toMatchObject({ nextSeq: 0, held: 3 });
    expect((await textRowKeys(world, id)).filter((k) => k.startsWith('pending#'))).toHaveLength(3);

    // Act: a new handler instance receives the missing records.
    const late = await consumer()(kinesisEvent(records.slice(0, 3)));

    // Assess
    expect(late.batchItemFailures).toEqual([]);
    expect(await readItemHead(world.dynamo, world.config.tables, id)).toMatchObject({
      status: 'completed',
      text: 'abcde',
      held: 0,
    });
    expect((await textRowKeys(world, id)).filter((k) => k.startsWith('pending#'))).toEqual([]);
  });

  it('replaces an abandoned attempt’s text with the new attempt’s, ignoring late records of the old one', async () => {
    // Prepare
    const id = newId('retry');
    await putClaimedHead(world, id);
    const old = attemptRecords(id, 1, splitText(longText(900), 9), { type: 'error', final: false });
    const fresh = attemptRecords(id, 2, ['the ', 'new ', 'text'], { type: 'end' });
    const publisher = recordingPublisher();
    const shard = new TestShard();

    const records = shard.records([
      ...old.slice(0, 4),
      ...fresh.slice(0, 2),
      ...old.slice(4),
      ...fresh.slice(2),
    ]);
    await consumer({ publisher, sealBytes: 200 })(kinesisEvent(records.slice(0, 3)));
    expect((await textRowKeys(world, id)).filter((k) => k.startsWith('part#0001#')).length).toBeGreaterThan(
      0,
    );

    // Act
    await deliverLikeLambda(consumer({ publisher, sealBytes: 200 }), records.slice(3), { batchSizes: [3] });

    // Assess
    expect(await readItem(world.dynamo, world.config.tables, id)).toMatchObject({
      status: 'completed',
      attempt: 2,
      text: 'the new text',
    });
    const updates = publisher.published.flat();
    const keys = await textRowKeys(world, id);
    expect(keys.filter((k) => k.startsWith('part#0001#'))).toEqual([]);
    const firstOfNew = updates.findIndex((u) => u.attempt === 2);
    expect(updates[firstOfNew]).toMatchObject({ reset: true, fromSeq: 0 });
    expect(updates.slice(firstOfNew).map((u) => u.attempt)).not.toContain(1);
  });

  it('fails an item on a final error and keeps the text produced so far', async () => {
    // Prepare
    const id = newId('failed');
    await putClaimedHead(world, id);
    const error = { code: 'cancelled', message: 'cancelled by a viewer', retryable: false };

    // Act
    await consumer()(
      kinesisEvent(
        new TestShard().records(
          attemptRecords(id, 1, ['partial ', 'answer'], { type: 'error', final: true, error }),
        ),
      ),
    );

    // Assess
    expect(await readItem(world.dynamo, world.config.tables, id)).toMatchObject({
      status: 'failed',
      text: 'partial answer',
      error,
    });
  });

  it('creates the head of an item whose records arrive without a claimed head', async () => {
    // Prepare
    const id = newId('orphan');

    // Act
    await consumer()(
      kinesisEvent(new TestShard().records(attemptRecords(id, 1, ['hello'], { type: 'end' }))),
    );

    // Assess
    expect(await readItem(world.dynamo, world.config.tables, id)).toMatchObject({
      status: 'completed',
      text: 'hello',
      modelId: UNKNOWN_MODEL_ID,
    });
  });

  it('hands live delivery one update per changed item, the applied records again for an item that only got duplicates, and a delivery failure does not fail the batch', async () => {
    // Prepare
    const [a, b, quiet] = [newId('pub'), newId('pub'), newId('pub')];
    for (const id of [a, b, quiet]) await putClaimedHead(world, id);
    const shard = new TestShard();
    const quietRecords = attemptRecords(quiet, 1, ['q'], { type: 'none' });
    await consumer()(kinesisEvent(shard.records(quietRecords)));
    const publisher = recordingPublisher();
    const failing: UpdatePublisher = {
      publish: async () => {
        throw new Error('every viewer is gone');
      },
    };

    // Act
    await consumer({ publisher })(
      kinesisEvent(
        shard.records([
          ...attemptRecords(a, 1, ['x', 'y', 'z'], { type: 'none' }),
          ...attemptRecords(b, 1, ['done'], { type: 'end' }),
          ...quietRecords,
        ]),
      ),
    );
    const afterFailure = await consumer({ publisher: failing })(
      kinesisEvent(shard.records([{ v: 1, itemId: a, attempt: 1, seq: 3, type: 'delta', text: '!' }])),
    );

    // Assess
    // Items are written concurrently: the order of their updates is not part of the contract.
    const byItem = (batch: readonly ItemUpdate[]) =>
      [...batch].sort((x, y) => x.itemId.localeCompare(y.itemId));
    expect(publisher.published.map(byItem)).toEqual([
      byItem([
        {
          itemId: a,
          tenant: 'default',
          attempt: 1,
          reset: false,
          fromSeq: 0,
          toSeq: 2,
          text: 'xyz',
          status: 'streaming',
        },
        {
          itemId: b,
          tenant: 'default',
          attempt: 1,
          reset: false,
          fromSeq: 0,
          toSeq: 1,
          text: 'done',
          status: 'completed',
          usage: TEST_USAGE,
        },
        // Already applied: viewers may not have been told (a crash between commit and publish).
        {
          itemId: quiet,
          tenant: 'default',
          attempt: 1,
          reset: false,
          fromSeq: 0,
          toSeq: 0,
          text: 'q',
          status: 'streaming',
        },
      ]),
    ]);
    expect(afterFailure.batchItemFailures).toEqual([]);
    expect(await textOf(a)).toBe('xyz!');
  });
});
