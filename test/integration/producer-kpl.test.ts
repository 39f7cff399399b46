/**
 * KPL-aggregated input: aggregates packed by `aws-kinesis-agg`, mixed with plain records, are put on
 * a real input stream (kinesalite), read back in the shape Lambda delivers, and given to the real
 * producer handler, which unpacks, validates and claims each user record on its own.
 */
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import { PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toPolledRecord } from '../../local/event-source/records.js';
import { ensureStream } from '../../local/resources.js';
import type { WorkItem } from '../../shared/contracts/index.js';
import { aggregate, userRecordOf } from '../factories/kpl.js';
import { lambdaContext } from '../factories/work-item-events.js';
import { checkAttempt, ProducerFixture, type ProducerUnderTest } from './producer-fixture.js';

type Entry = { readonly partitionKey: string; readonly data: Buffer };

const item = (itemId: string): WorkItem => ({
  itemId,
  prompt: `Say something about ${itemId}`,
  maxTokens: 40,
});
const plain = (w: WorkItem): Entry => ({ partitionKey: w.itemId, data: Buffer.from(JSON.stringify(w)) });

describe('producer with KPL-aggregated input', () => {
  let fixture: ProducerFixture;
  let streams = 0;
  beforeAll(async () => {
    fixture = await ProducerFixture.start();
  });
  afterAll(async () => {
    await fixture?.stop();
  });

  /** Puts `entries` on a fresh input stream (one shard, in order) and reads them back as Lambda's event. */
  async function eventOf(entries: readonly Entry[]): Promise<KinesisStreamEvent> {
    const streamName = `kpl-input-${++streams}`;
    await ensureStream(fixture.kinesis, streamName, 1);
    await fixture.kinesis.send(
      new PutRecordsCommand({
        StreamName: streamName,
        Records: entries.map((e) => ({ PartitionKey: e.partitionKey, Data: e.data })),
      }),
    );
    const { Shards = [] } = await fixture.kinesis.send(new ListShardsCommand({ StreamName: streamName }));
    const shardId = Shards[0]?.ShardId ?? '';
    const { ShardIterator } = await fixture.kinesis.send(
      new GetShardIteratorCommand({
        StreamName: streamName,
        ShardId: shardId,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    const page = await fixture.kinesis.send(new GetRecordsCommand({ ShardIterator }));
    const source = {
      shardId,
      streamArn: `arn:aws:kinesis:us-east-1:000000000000:stream/${streamName}`,
      region: 'us-east-1',
      invokeIdentityArn: 'arn:aws:iam::000000000000:role/producer',
    };
    const records: KinesisStreamRecord[] = (page.Records ?? []).map((r) => toPolledRecord(r, source).lambda);
    expect(records).toHaveLength(entries.length);
    return { Records: records };
  }

  async function expectGeneratedOnce(producer: ProducerUnderTest, items: readonly WorkItem[]) {
    const chunks = await producer.readChunks();
    for (const w of items) {
      const records = chunks.get(w.itemId) ?? [];
      expect(new Set(records.map((r) => r.attempt)), w.itemId).toEqual(new Set([1]));
      expect(checkAttempt(records).text).toBe(await fixture.expectedText(w, producer.config));
    }
  }

  it('generates every work item of aggregates and plain records alike, each once', async () => {
    // Prepare
    const producer = await fixture.handler();
    const [a, b, c, d, e] = ['kpl-a', 'kpl-b', 'kpl-c', 'plain-d', 'plain-e'].map(item) as [
      WorkItem,
      WorkItem,
      WorkItem,
      WorkItem,
      WorkItem,
    ];
    const packed = await aggregate([a, b, c].map(userRecordOf));
    expect(packed).toHaveLength(1);
    const event = await eventOf([plain(d), ...(packed as Entry[]), plain(e)]);
    const streamsBefore = fixture.bedrock.stats().streams;
    // Act
    const response = await producer.handler(event, lambdaContext(60_000));
    // Assess
    expect(response.batchItemFailures).toEqual([]);
    expect(fixture.bedrock.stats().streams - streamsBefore).toBe(5);
    await expectGeneratedOnce(producer, [a, b, c, d, e]);
    expect(producer.handler.stats().workItems).toBe(5);
    expect(producer.deadLetters.letters).toEqual([]);
  });

  it('dead-letters a bad user record alone, with its own data and index, while its siblings complete', async () => {
    // Prepare
    const producer = await fixture.handler();
    const good = [item('sib-1'), item('sib-2')] as const;
    const packed = await aggregate([
      userRecordOf(good[0]),
      { partitionKey: 'broken', data: '{not json' },
      { partitionKey: 'no-prompt', data: JSON.stringify({ itemId: 'no-prompt' }) },
      userRecordOf(good[1]),
    ]);
    const event = await eventOf(packed);
    // Act
    const response = await producer.handler(event, lambdaContext(60_000));
    // Assess
    expect(response.batchItemFailures).toEqual([]);
    await expectGeneratedOnce(producer, good);
    const letters = producer.deadLetters.invalidRecords();
    expect(letters.map((l) => [l.record.partitionKey, l.record.subSequenceNumber])).toEqual([
      ['broken', 1],
      ['no-prompt', 2],
    ]);
    expect(Buffer.from(letters[0]?.record.data ?? '', 'base64').toString()).toBe('{not json');
    expect(letters[0]?.reason).toMatch(/work item is not valid JSON/);
    expect(letters[1]?.reason).toMatch(/exactly one of prompt or messages is required/);
    for (const letter of letters)
      expect(letter.record.sequenceNumber).toBe(event.Records[0]?.kinesis.sequenceNumber);
  });

  it('dead-letters an aggregate that cannot be unpacked whole, with the reason, and goes on', async () => {
    // Prepare: an aggregate whose MD5 no longer matches its protobuf message.
    const producer = await fixture.handler();
    const [packed] = await aggregate([userRecordOf(item('lost-1')), userRecordOf(item('lost-2'))]);
    const data = Buffer.from(packed?.data ?? Buffer.alloc(0));
    data[data.length - 1] = (data[data.length - 1] ?? 0) ^ 0xff;
    const after = item('after-corrupt');
    const event = await eventOf([{ partitionKey: 'lost-1', data }, plain(after)]);
    // Act
    const response = await producer.handler(event, lambdaContext(60_000));
    // Assess
    expect(response.batchItemFailures).toEqual([]);
    const letters = producer.deadLetters.invalidRecords();
    expect(letters).toHaveLength(1);
    expect(letters[0]?.reason).toMatch(/KPL-aggregated record could not be unpacked: .*checksum/i);
    expect(letters[0]?.record.data).toBe(event.Records[0]?.kinesis.data);
    expect(letters[0]?.record.subSequenceNumber).toBeUndefined();
    await expectGeneratedOnce(producer, [after]);
  });

  it('names a partly failed aggregate once, and its redelivery starts nothing already claimed', async () => {
    // Prepare: another producer holds two of the aggregate's items under a lease that outlasts this
    // invocation.
    const producer = await fixture.handler();
    const [first, heldA, middle, heldB] = ['kpl-first', 'kpl-held-a', 'kpl-middle', 'kpl-held-b'].map(
      item,
    ) as [WorkItem, WorkItem, WorkItem, WorkItem];
    const held = [heldA, heldB];
    for (const w of held)
      await fixture.dynamo.send(
        new PutCommand({
          TableName: producer.config.tables.items,
          Item: {
            itemId: w.itemId,
            status: 'queued',
            version: 1,
            claimedAttempt: 0,
            claimState: 'running',
            leaseUntil: Date.now() + 3_600_000,
            modelId: producer.config.defaultModelId,
            createdAt: new Date().toISOString(),
          },
        }),
      );
    const packed = await aggregate([first, heldA, middle, heldB].map(userRecordOf));
    const tail = item('plain-after');
    const event = await eventOf([...packed, plain(tail)]);
    // Act 1: the held items are left for a redelivery; the others are claimed and generated.
    const response = await producer.handler(event, lambdaContext(60_000));
    // Assess 1: only the aggregate's sequence number, once (Lambda resumes from it).
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: event.Records[0]?.kinesis.sequenceNumber },
    ]);
    await expectGeneratedOnce(producer, [first, middle, tail]);
    // Prepare 2: the other producer's leases ran out without an ending (it died).
    for (const w of held)
      await fixture.dynamo.send(
        new UpdateCommand({
          TableName: producer.config.tables.items,
          Key: { itemId: w.itemId },
          UpdateExpression: 'SET leaseUntil = :past',
          ExpressionAttributeValues: { ':past': Date.now() - 1 },
        }),
      );
    const streamsBefore = fixture.bedrock.stats().streams;
    const skippedBefore = producer.handler.stats().duplicatesSkipped;
    // Act 2: Lambda delivers the batch again from the aggregate on.
    const again = await producer.handler(event, lambdaContext(60_000));
    // Assess 2: only the held items are generated; the claimed ones are recognised by their claims.
    expect(again.batchItemFailures).toEqual([]);
    expect(fixture.bedrock.stats().streams - streamsBefore).toBe(2);
    expect(producer.handler.stats().duplicatesSkipped - skippedBefore).toBe(3);
    await expectGeneratedOnce(producer, [first, middle, tail, heldA, heldB]);
  });
});
