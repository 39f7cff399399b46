import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeStreamSummaryCommand, type KinesisClient, SplitShardCommand } from '@aws-sdk/client-kinesis';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MappingFailureLetter } from '../../../shared/contracts/dead-letter.js';
import { sqsDeadLetterSink } from '../../../shared/dead-letters.js';
import type { Logger } from '../../../shared/telemetry.js';
import { startDeadLetterStore } from '../../../local/dead-letters/index.js';
import { type RunningEmulator, startKinesis } from '../../../local/emulators.js';
import {
  type BatchRetry,
  type EventSourceMapping,
  type EventSourceMappingOptions,
  startEventSourceMapping,
} from '../../../local/event-source/index.js';
import { startKinesisFaultProxy } from '../../../local/kinesis-faults.js';
import { ensureStream } from '../../../local/resources.js';
import { seeded } from '../../support/random.js';
import { dataOf, kinesisClient, type PutRecord, putRecords, waitFor } from './kinesis-helpers.js';

const IDLE = { timeoutMs: 15_000 };
/** Short intervals so tests take milliseconds, not the seconds Lambda's own polling takes. */
const FAST = {
  pollIntervalMs: 5,
  shardDiscoveryIntervalMs: 50,
  retryBackoff: { baseDelayMs: 1, maxDelayMs: 5 },
} as const;

const numbered = (count: number, partitionKey: (i: number) => string = () => 'key'): PutRecord[] =>
  Array.from({ length: count }, (_, i) => ({ partitionKey: partitionKey(i), data: `r${i}` }));
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `r${from + i}`);
const silentLogger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

describe('local event source mapping', () => {
  let kinesalite: RunningEmulator;
  let kinesis: KinesisClient;
  const mappings: EventSourceMapping[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let streams = 0;

  const newStream = async (shards = 1) => {
    const name = `esm-${++streams}`;
    await ensureStream(kinesis, name, shards);
    return name;
  };
  const start = (
    options: Partial<EventSourceMappingOptions> & Pick<EventSourceMappingOptions, 'streamName' | 'handler'>,
  ) => {
    const mapping = startEventSourceMapping({
      kinesis,
      functionName: 'consumer',
      onError: () => {},
      ...FAST,
      ...options,
    });
    mappings.push(mapping);
    return mapping;
  };

  beforeAll(async () => {
    kinesalite = await startKinesis();
    kinesis = kinesisClient(kinesalite.endpoint);
  });
  afterEach(async () => {
    for (const mapping of mappings.splice(0)) await mapping.stop();
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });
  afterAll(async () => {
    kinesis.destroy();
    await kinesalite.stop();
  });

  it('delivers records in the shape Lambda delivers them', async () => {
    // Prepare
    const stream = await newStream();
    const before = Date.now();
    const [sequenceNumber] = await putRecords(kinesis, stream, [{ partitionKey: 'pk-1', data: 'hello' }]);
    const events: KinesisStreamEvent[] = [];
    // Act
    const mapping = start({
      streamName: stream,
      handler: async (event) => {
        events.push(event);
      },
    });
    await mapping.idle(IDLE);
    // Assess
    const record = events[0]?.Records[0];
    expect(events).toHaveLength(1);
    expect(record).toEqual({
      kinesis: {
        kinesisSchemaVersion: '1.0',
        partitionKey: 'pk-1',
        sequenceNumber,
        data: Buffer.from('hello').toString('base64'),
        approximateArrivalTimestamp: expect.any(Number),
      },
      eventSource: 'aws:kinesis',
      eventVersion: '1.0',
      eventID: `shardId-000000000000:${sequenceNumber}`,
      eventName: 'aws:kinesis:record',
      invokeIdentityArn: 'arn:aws:iam::000000000000:role/consumer-role',
      awsRegion: 'us-east-1',
      eventSourceARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${stream}`,
    });
    // Same key order as Lambda's JSON, for handlers that log or hash the raw event.
    expect(Object.keys(record!)).toEqual([
      'kinesis',
      'eventSource',
      'eventVersion',
      'eventID',
      'eventName',
      'invokeIdentityArn',
      'awsRegion',
      'eventSourceARN',
    ]);
    const arrival = record!.kinesis.approximateArrivalTimestamp;
    expect(arrival).toBeGreaterThanOrEqual(Math.floor(before / 1000) - 1);
    expect(arrival).toBeLessThanOrEqual(Date.now() / 1000 + 1);
  });

  it('shapes batches by batch size', async () => {
    const stream = await newStream();
    await putRecords(kinesis, stream, numbered(10));
    const batches: string[][] = [];
    const mapping = start({
      streamName: stream,
      batchSize: 4,
      handler: async (event) => {
        batches.push(dataOf(event));
      },
    });
    await mapping.idle(IDLE);
    expect(batches).toEqual([range(0, 4), range(4, 8), range(8, 10)]);
  });

  it('holds records for the batching window until the batch is full', async () => {
    // Prepare
    const stream = await newStream();
    const batches: string[][] = [];
    const mapping = start({
      streamName: stream,
      batchSize: 5,
      maximumBatchingWindowMs: 60_000,
      handler: async (event) => {
        batches.push(dataOf(event));
      },
    });
    // Act: three records are read, and held by the window
    for (const record of numbered(3)) await putRecords(kinesis, stream, [record]);
    await waitFor('3 records read', () => mapping.stats().recordsRead === 3);
    const invocationsWhileHeld = mapping.stats().invocations;
    await putRecords(kinesis, stream, numbered(5).slice(3));
    await waitFor('one invocation', () => batches.length === 1);
    // Assess
    expect(invocationsWhileHeld).toBe(0);
    expect(batches).toEqual([range(0, 5)]);
  });

  it('invokes with a partial batch once the batching window ends', async () => {
    const stream = await newStream();
    const batches: string[][] = [];
    start({
      streamName: stream,
      batchSize: 100,
      maximumBatchingWindowMs: 50,
      handler: async (event) => {
        batches.push(dataOf(event));
      },
    });
    await putRecords(kinesis, stream, numbered(2));
    await waitFor('the window to end', () => batches.length === 1);
    expect(batches).toEqual([range(0, 2)]);
  });

  it('retries a partial batch failure from the lowest failed record and never redelivers earlier ones', async () => {
    // Prepare
    const stream = await newStream();
    const sequenceNumbers = await putRecords(kinesis, stream, numbered(10));
    const batches: string[][] = [];
    // Act
    const mapping = start({
      streamName: stream,
      batchSize: 10,
      reportBatchItemFailures: true,
      handler: async (event): Promise<KinesisStreamBatchResponse> => {
        batches.push(dataOf(event));
        if (batches.length > 1) return { batchItemFailures: [] };
        return {
          batchItemFailures: [
            { itemIdentifier: sequenceNumbers[7]! },
            { itemIdentifier: sequenceNumbers[4]! },
          ],
        };
      },
    });
    await mapping.idle(IDLE);
    // Assess
    expect(batches).toEqual([range(0, 10), range(4, 10)]);
    expect(mapping.stats()).toMatchObject({
      invocations: 2,
      retries: 1,
      partialFailures: 1,
      functionErrors: 0,
    });
  });

  it.each([
    ['an empty itemIdentifier', ''],
    ['a missing itemIdentifier', undefined],
    ['a sequence number not in the batch', '49999999999999999999999999999999999999999999999999999999'],
  ])('fails the whole batch on %s in the batch response', async (_, itemIdentifier) => {
    const stream = await newStream();
    await putRecords(kinesis, stream, numbered(3));
    const batches: string[][] = [];
    const mapping = start({
      streamName: stream,
      reportBatchItemFailures: true,
      handler: async (event) => {
        batches.push(dataOf(event));
        return batches.length === 1
          ? ({ batchItemFailures: [{ itemIdentifier }] } as KinesisStreamBatchResponse)
          : undefined;
      },
    });
    await mapping.idle(IDLE);
    expect(batches).toEqual([range(0, 3), range(0, 3)]);
    expect(mapping.stats().functionErrors).toBe(1);
  });

  it('sends a poison record to the dead-letter store after the retry limit while the records behind it go on', async () => {
    // Prepare
    const store = await startDeadLetterStore({ onWarning: () => {} });
    cleanups.push(() => store.stop());
    const sink = sqsDeadLetterSink(
      new SQSClient({ region: 'us-east-1', endpoint: store.endpoint }),
      store.queueUrl(),
      silentLogger,
    );
    const stream = await newStream();
    const sequenceNumbers = await putRecords(kinesis, stream, numbered(6));
    const processed: string[] = [];
    // Act
    const mapping = start({
      streamName: stream,
      batchSize: 1,
      maximumRetryAttempts: 2,
      handler: async (event) => {
        const [data] = dataOf(event);
        if (data === 'r2') throw new Error('poison');
        processed.push(data!);
      },
      onFailure: (letter) => sink.send(letter),
    });
    await mapping.idle(IDLE);
    // Assess
    expect(processed).toEqual(['r0', 'r1', 'r3', 'r4', 'r5']);
    const stored = await store.list();
    expect(stored).toHaveLength(1);
    const letter = stored[0]?.letter as MappingFailureLetter;
    expect(letter.requestContext).toMatchObject({
      condition: 'RetryAttemptsExhausted',
      approximateInvokeCount: 3,
      functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:consumer',
    });
    expect(letter.responseContext.functionError).toBe('Unhandled');
    expect(letter.KinesisBatchInfo).toMatchObject({
      shardId: 'shardId-000000000000',
      startSequenceNumber: sequenceNumbers[2],
      endSequenceNumber: sequenceNumbers[2],
      batchSize: 1,
      streamArn: `arn:aws:kinesis:us-east-1:000000000000:stream/${stream}`,
    });
    expect(letter.records?.map((r) => Buffer.from(r.data, 'base64').toString())).toEqual(['r2']);
    expect(mapping.stats()).toMatchObject({ functionErrors: 3, retries: 2, deadLettered: 1 });
  });

  it('sends records older than the maximum record age to the destination without invoking the function', async () => {
    // Prepare
    const stream = await newStream();
    const putAt = Date.now();
    await putRecords(kinesis, stream, numbered(3));
    await waitFor('the records to age past 0.2 s', () => Date.now() - putAt > 400, 5_000, 20);
    const letters: MappingFailureLetter[] = [];
    const batches: string[][] = [];
    // Act
    const mapping = start({
      streamName: stream,
      maximumRecordAgeSeconds: 0.2,
      handler: async (event) => {
        batches.push(dataOf(event));
      },
      onFailure: async (letter) => {
        letters.push(letter);
      },
    });
    await mapping.idle(IDLE);
    await putRecords(kinesis, stream, [{ partitionKey: 'key', data: 'fresh' }]);
    await mapping.idle(IDLE);
    // Assess
    expect(letters).toHaveLength(1);
    expect(letters[0]?.requestContext).toMatchObject({
      condition: 'RecordAgeExceeded',
      approximateInvokeCount: 0,
    });
    expect(letters[0]?.records?.map((r) => Buffer.from(r.data, 'base64').toString())).toEqual(range(0, 3));
    expect(batches).toEqual([['fresh']]);
  });

  it('stops retrying a failing record once it is older than the maximum record age', async () => {
    const stream = await newStream();
    await putRecords(kinesis, stream, [{ partitionKey: 'key', data: 'poison' }]);
    const letters: MappingFailureLetter[] = [];
    let attempts = 0;
    const mapping = start({
      streamName: stream,
      maximumRecordAgeSeconds: 0.3,
      maximumRetryAttempts: -1,
      handler: async () => {
        attempts++;
        throw new Error('poison');
      },
      onFailure: async (letter) => {
        letters.push(letter);
      },
    });
    await waitFor('the poison record to be dead-lettered', () => letters.length === 1);
    await putRecords(kinesis, stream, [{ partitionKey: 'key', data: 'next' }]);
    await waitFor(
      'the next record to be tried',
      () => attempts > letters[0]!.requestContext.approximateInvokeCount,
    );
    expect(letters[0]?.requestContext.condition).toBe('RecordAgeExceeded');
    expect(letters[0]?.requestContext.approximateInvokeCount).toBeGreaterThan(1);
    expect(letters[0]?.records?.map((r) => Buffer.from(r.data, 'base64').toString())).toEqual(['poison']);
    expect(mapping.stats().deadLettered).toBe(1);
  });

  it('bisects a failing batch until the poison record is alone', async () => {
    // Prepare
    const stream = await newStream();
    await putRecords(kinesis, stream, numbered(8));
    const batches: string[][] = [];
    const letters: MappingFailureLetter[] = [];
    // Act
    const mapping = start({
      streamName: stream,
      batchSize: 8,
      bisectBatchOnFunctionError: true,
      maximumRetryAttempts: 0,
      handler: async (event) => {
        const data = dataOf(event);
        batches.push(data);
        if (data.includes('r5')) throw new Error('poison');
      },
      onFailure: async (letter) => {
        letters.push(letter);
      },
    });
    await mapping.idle(IDLE);
    // Assess
    expect(batches).toEqual([
      range(0, 8),
      range(0, 4),
      range(4, 8),
      ['r4', 'r5'],
      ['r4'],
      ['r5'],
      ['r6', 'r7'],
    ]);
    expect(letters.map((l) => l.records?.map((r) => Buffer.from(r.data, 'base64').toString()))).toEqual([
      ['r5'],
    ]);
    expect(mapping.stats()).toMatchObject({ bisections: 3, deadLettered: 1 });
  });

  it('tells onRetry of each failed invocation how many retries its records had used and since when they fail', async () => {
    // Prepare: r1 fails three times, then succeeds; r0 before it succeeds at once.
    const stream = await newStream();
    await putRecords(kinesis, stream, numbered(2));
    let failuresLeft = 3;
    const retries: BatchRetry[] = [];
    const before = Date.now();
    // Act
    const mapping = start({
      streamName: stream,
      batchSize: 1,
      handler: async (event) => {
        const [data] = dataOf(event);
        if (data === 'r1' && failuresLeft-- > 0) throw new Error('brownout');
      },
      onRetry: (retry) => retries.push(retry),
    });
    await mapping.idle(IDLE);
    // Assess: one run of failures, counted 0, 1, 2, that began with its first failure.
    expect(retries.map((r) => r.retriesUsed)).toEqual([0, 1, 2]);
    expect(new Set(retries.map((r) => r.failingSince)).size).toBe(1);
    expect(retries[0]?.failingSince).toBeGreaterThanOrEqual(before);
    expect(retries[0]?.shardId).toBe('shardId-000000000000');
  });

  it('runs up to parallelizationFactor batches of a shard at once, keeping order per partition key', async () => {
    // Prepare
    const stream = await newStream();
    const keys = Array.from({ length: 8 }, (_, k) => `key-${k}`);
    const records: PutRecord[] = [];
    for (let i = 0; i < 10; i++)
      for (const key of keys) records.push({ partitionKey: key, data: `${key}:${i}` });
    await putRecords(kinesis, stream, records);
    const seen = new Map<string, number[]>();
    let inFlight = 0;
    let maxInFlight = 0;
    // Act
    const mapping = start({
      streamName: stream,
      batchSize: 5,
      parallelizationFactor: 4,
      handler: async (event) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        for (const record of event.Records) {
          const [key, i] = Buffer.from(record.kinesis.data, 'base64').toString().split(':');
          seen.set(key!, [...(seen.get(key!) ?? []), Number(i)]);
        }
        // Lanes that run concurrently meet here; lanes run one after another never do.
        await waitFor('a concurrent invocation', () => maxInFlight >= 2, 5_000).catch(() => {});
        inFlight--;
      },
    });
    await mapping.idle(IDLE);
    // Assess
    expect(maxInFlight).toBeGreaterThanOrEqual(2);
    expect(maxInFlight).toBeLessThanOrEqual(4);
    for (const key of keys) expect(seen.get(key), key).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('resumes from the checkpoint after a restart, with no loss and no replay from the start', async () => {
    // Prepare
    const dir = await mkdtemp(join(tmpdir(), 'checkpoints-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const checkpointFile = join(dir, 'consumer.json');
    const stream = await newStream();
    await putRecords(kinesis, stream, numbered(30));
    const first: string[][] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const firstMapping = start({
      streamName: stream,
      batchSize: 5,
      checkpointFile,
      handler: async (event) => {
        first.push(dataOf(event));
        if (first.length === 3) await released;
      },
    });
    // Act: stop while the third batch is in flight; stop waits for it
    await waitFor('the third batch', () => first.length === 3);
    const stopping = firstMapping.stop();
    release();
    await stopping;
    await putRecords(kinesis, stream, numbered(35).slice(30));
    const second: string[][] = [];
    const secondMapping = start({
      streamName: stream,
      batchSize: 5,
      checkpointFile,
      handler: async (event) => {
        second.push(dataOf(event));
      },
    });
    await secondMapping.idle(IDLE);
    // Assess
    expect(first).toEqual([range(0, 5), range(5, 10), range(10, 15)]);
    expect(second.flat()).toEqual(range(15, 35));
    const saved = JSON.parse(await readFile(checkpointFile, 'utf8')) as { shards: Record<string, unknown> };
    expect(Object.keys(saved.shards)).toEqual(['shardId-000000000000']);
  });

  it('redelivers the whole batch after a crash-injected invocation', async () => {
    // Prepare
    const stream = await newStream();
    await putRecords(kinesis, stream, numbered(5));
    // First invocation: crash (0 < 1), the function sees floor(0.6 * 5) = 3 records; then no more crashes.
    const draws = [0, 0.6];
    const batches: string[][] = [];
    // Act
    const mapping = start({
      streamName: stream,
      crash: { probability: 0.5, random: () => draws.shift() ?? 0.99 },
      handler: async (event) => {
        batches.push(dataOf(event));
      },
    });
    await mapping.idle(IDLE);
    // Assess
    expect(batches).toEqual([range(0, 3), range(0, 5)]);
    expect(mapping.stats()).toMatchObject({ crashes: 1, functionErrors: 1, retries: 1, invocations: 2 });
  });

  it('starts at the tip of the stream with LATEST', async () => {
    const stream = await newStream();
    await putRecords(kinesis, stream, [{ partitionKey: 'k', data: 'old' }]);
    const batches: string[][] = [];
    const mapping = start({
      streamName: stream,
      startingPosition: 'LATEST',
      handler: async (event) => {
        batches.push(dataOf(event));
      },
    });
    await mapping.idle(IDLE);
    await putRecords(kinesis, stream, [{ partitionKey: 'k', data: 'new' }]);
    await mapping.idle(IDLE);
    expect(batches).toEqual([['new']]);
  });

  it('follows a shard split: the parent is read to its end before its children', async () => {
    // Prepare: records on the parent, a split, records on the children — all before the mapping starts
    const stream = await newStream(1);
    const keys = ['a', 'b', 'c', 'd', 'e', 'f'];
    await putRecords(
      kinesis,
      stream,
      keys.map((key) => ({ partitionKey: key, data: 'before' })),
    );
    await kinesis.send(
      new SplitShardCommand({
        StreamName: stream,
        ShardToSplit: 'shardId-000000000000',
        NewStartingHashKey: (2n ** 127n).toString(),
      }),
    );
    const openShards = async () => {
      const { StreamDescriptionSummary: s } = await kinesis.send(
        new DescribeStreamSummaryCommand({ StreamName: stream }),
      );
      return s?.StreamStatus === 'ACTIVE' ? s.OpenShardCount : 0;
    };
    for (let count = await openShards(); count !== 2; count = await openShards())
      await new Promise((resolve) => setTimeout(resolve, 10));
    await putRecords(
      kinesis,
      stream,
      keys.map((key) => ({ partitionKey: key, data: 'after' })),
    );
    const seen = new Map<string, string[]>();
    // Act
    const mapping = start({
      streamName: stream,
      handler: async (event) => {
        // The parent is slow: children read at the same time would overtake it.
        if (event.Records[0]?.eventID.startsWith('shardId-000000000000:'))
          await new Promise((resolve) => setTimeout(resolve, 50));
        for (const record of event.Records) {
          const key = record.kinesis.partitionKey;
          seen.set(key, [...(seen.get(key) ?? []), Buffer.from(record.kinesis.data, 'base64').toString()]);
        }
      },
    });
    await mapping.idle(IDLE);
    // Assess
    for (const key of keys) expect(seen.get(key), key).toEqual(['before', 'after']);
  });

  it('reads on through throttled reads and expired iterators, losing and repeating nothing', async () => {
    // Prepare
    const proxy = await startKinesisFaultProxy({
      target: kinesalite.endpoint,
      faults: { getRecordsThrottleRate: 0.3, expiredIteratorRate: 0.3 },
      random: seeded(11),
    });
    cleanups.push(() => proxy.stop());
    // SDK retries off: the mapping's own handling of each error is what is under test.
    const throughProxy = kinesisClient(proxy.endpoint, 1);
    cleanups.push(async () => throughProxy.destroy());
    const stream = await newStream();
    const seen: string[] = [];
    const mapping = start({
      kinesis: throughProxy,
      streamName: stream,
      batchSize: 7,
      handler: async (event) => {
        seen.push(...dataOf(event));
      },
    });
    // Act
    const records = numbered(200);
    for (let round = 0; round < 5; round++) {
      await putRecords(kinesis, stream, records.slice(round * 40, (round + 1) * 40));
      await mapping.idle(IDLE);
    }
    // Assess
    expect(seen).toEqual(range(0, 200));
    expect(proxy.stats().expiredIterators).toBeGreaterThan(0);
    expect(proxy.stats().getRecordsThrottled).toBeGreaterThan(0);
    expect(mapping.stats().readErrors).toBe(
      proxy.stats().expiredIterators + proxy.stats().getRecordsThrottled,
    );
  });

  it('rejects bad options at once, naming the value given and the values allowed', () => {
    const base = { kinesis, streamName: 's', functionName: 'f', handler: async () => {} };
    expect(() => startEventSourceMapping({ ...base, batchSize: 0 })).toThrow(
      'event source mapping option batchSize must be an integer from 1 to 10000, got 0',
    );
    expect(() => startEventSourceMapping({ ...base, parallelizationFactor: 11 })).toThrow(
      /parallelizationFactor must be an integer from 1 to 10, got 11/,
    );
    expect(() => startEventSourceMapping({ ...base, maximumRecordAgeSeconds: 0 })).toThrow(
      /maximumRecordAgeSeconds must be -1 \(unbounded\) or a number of seconds > 0 and <= 604800, got 0/,
    );
    expect(() => startEventSourceMapping({ ...base, maximumRetryAttempts: -2 })).toThrow(/got -2/);
    expect(() => startEventSourceMapping({ ...base, startingPosition: 'AT_TIMESTAMP' as never })).toThrow(
      /startingPosition must be TRIM_HORIZON or LATEST, got "AT_TIMESTAMP"/,
    );
    expect(() => startEventSourceMapping({ ...base, batchsize: 5 } as never)).toThrow(
      /unknown event source mapping option "batchsize"/,
    );
    expect(() => startEventSourceMapping({ ...base, crash: { probability: 2 } })).toThrow(
      /crash.probability .* got 2/,
    );
  });
});
