import {
  ExpiredIteratorException,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  ProvisionedThroughputExceededException,
  PutRecordCommand,
  PutRecordsCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RunningEmulator, startKinesis } from '../../../local/emulators.js';
import { type KinesisFaultProxy, startKinesisFaultProxy } from '../../../local/kinesis-faults.js';
import { ensureStream } from '../../../local/resources.js';
import { seeded } from '../../support/random.js';

const client = (endpoint: string, maxAttempts?: number) =>
  new KinesisClient({ region: 'us-east-1', endpoint, requestHandler: new NodeHttpHandler(), maxAttempts });

async function readAll(kinesis: KinesisClient, streamName: string): Promise<Map<string, string>> {
  const bySequence = new Map<string, string>();
  const { Shards = [] } = await kinesis.send(new ListShardsCommand({ StreamName: streamName }));
  for (const shard of Shards) {
    let { ShardIterator: iterator } = await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: streamName,
        ShardId: shard.ShardId,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    while (iterator) {
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      for (const r of page.Records ?? [])
        bySequence.set(r.SequenceNumber!, Buffer.from(r.Data!).toString('utf8'));
      if ((page.Records ?? []).length === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return bySequence;
}

describe('Kinesis fault proxy', () => {
  let kinesalite: RunningEmulator;
  let direct: KinesisClient;
  let proxy: KinesisFaultProxy | undefined;
  let stream = 0;
  const nextStream = async () => {
    const name = `faults-${++stream}`;
    await ensureStream(direct, name, 2);
    return name;
  };

  beforeAll(async () => {
    kinesalite = await startKinesis();
    direct = client(kinesalite.endpoint);
  });
  afterEach(async () => {
    await proxy?.stop();
    proxy = undefined;
  });
  afterAll(async () => {
    direct.destroy();
    await kinesalite.stop();
  });

  it('forwards requests unchanged when no fault is set', async () => {
    // Prepare
    const name = await nextStream();
    proxy = await startKinesisFaultProxy({ target: kinesalite.endpoint });
    const kinesis = client(proxy.endpoint);
    // Act
    const put = await kinesis.send(
      new PutRecordsCommand({
        StreamName: name,
        Records: ['a', 'b', 'c'].map((s) => ({ Data: Buffer.from(s), PartitionKey: s })),
      }),
    );
    // Assess
    expect(put.FailedRecordCount).toBe(0);
    const stored = await readAll(kinesis, name);
    expect([...stored.values()].sort()).toEqual(['a', 'b', 'c']);
    expect(proxy.stats()).toMatchObject({ putRecordsCalls: 1, recordsSeen: 3, recordsFailed: 0 });
  });

  it('fails records of a PutRecords call one by one, keeping positions, and writes only the survivors', async () => {
    // Prepare
    const name = await nextStream();
    proxy = await startKinesisFaultProxy({
      target: kinesalite.endpoint,
      faults: { putRecordsFailureRate: 0.4 },
      random: seeded(7),
    });
    const kinesis = client(proxy.endpoint);
    const sent = Array.from({ length: 200 }, (_, i) => `record-${i}`);
    // Act
    const put = await kinesis.send(
      new PutRecordsCommand({
        StreamName: name,
        Records: sent.map((s, i) => ({ Data: Buffer.from(s), PartitionKey: `pk-${i % 17}` })),
      }),
    );
    // Assess
    const results = put.Records ?? [];
    expect(results).toHaveLength(sent.length);
    const failed = results.filter((r) => r.ErrorCode !== undefined);
    expect(failed.length).toBeGreaterThan(20);
    expect(failed.length).toBeLessThan(180);
    expect(put.FailedRecordCount).toBe(failed.length);
    for (const r of failed) {
      expect(r.ErrorCode).toBe('ProvisionedThroughputExceededException');
      expect(r.ErrorMessage).toMatch(/Rate exceeded/);
      expect(r.SequenceNumber).toBeUndefined();
    }
    const stored = await readAll(direct, name);
    expect(stored.size).toBe(sent.length - failed.length);
    results.forEach((r, i) => {
      if (r.ErrorCode) return;
      // The sequence number at position i belongs to record i: positions survived the merge.
      expect(stored.get(r.SequenceNumber!)).toBe(sent[i]);
    });
    expect(proxy.stats()).toMatchObject({ recordsSeen: 200, recordsFailed: failed.length });
  });

  it('answers a PutRecords call whose every record fails without writing anything', async () => {
    const name = await nextStream();
    proxy = await startKinesisFaultProxy({
      target: kinesalite.endpoint,
      faults: { putRecordsFailureRate: 1 },
    });
    const put = await client(proxy.endpoint).send(
      new PutRecordsCommand({
        StreamName: name,
        Records: [{ Data: Buffer.from('x'), PartitionKey: 'x' }],
      }),
    );
    expect(put.FailedRecordCount).toBe(1);
    expect(put.Records?.[0]?.ErrorCode).toBe('ProvisionedThroughputExceededException');
    expect((await readAll(direct, name)).size).toBe(0);
  });

  it('throttles whole calls with the typed SDK error and writes nothing', async () => {
    // Prepare
    const name = await nextStream();
    proxy = await startKinesisFaultProxy({ target: kinesalite.endpoint, faults: { throttleRate: 1 } });
    const kinesis = client(proxy.endpoint, 1);
    // Act
    const putRecords = kinesis.send(
      new PutRecordsCommand({ StreamName: name, Records: [{ Data: Buffer.from('x'), PartitionKey: 'x' }] }),
    );
    const putRecord = kinesis.send(
      new PutRecordCommand({ StreamName: name, Data: Buffer.from('y'), PartitionKey: 'y' }),
    );
    const [many, one] = await Promise.allSettled([putRecords, putRecord]);
    // Assess
    expect(many.status === 'rejected' && many.reason).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(one.status === 'rejected' && one.reason).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect((await readAll(direct, name)).size).toBe(0);
    expect(proxy.stats().throttledCalls).toBe(2);
  });

  it('lets the SDK retry a throttled call and succeed once the fault is cleared', async () => {
    const name = await nextStream();
    proxy = await startKinesisFaultProxy({ target: kinesalite.endpoint, faults: { throttleRate: 1 } });
    const kinesis = client(proxy.endpoint, 1);
    await expect(
      kinesis.send(new PutRecordCommand({ StreamName: name, Data: Buffer.from('z'), PartitionKey: 'z' })),
    ).rejects.toThrow(/Rate exceeded/);
    proxy.setFaults({ throttleRate: 0 });
    await kinesis.send(new PutRecordCommand({ StreamName: name, Data: Buffer.from('z'), PartitionKey: 'z' }));
    expect([...(await readAll(direct, name)).values()]).toEqual(['z']);
  });

  it('stalls puts by delayMs, so a caller deadline aborts them', async () => {
    const name = await nextStream();
    proxy = await startKinesisFaultProxy({ target: kinesalite.endpoint, faults: { delayMs: 30_000 } });
    const kinesis = client(proxy.endpoint, 1);
    await expect(
      kinesis.send(new PutRecordCommand({ StreamName: name, Data: Buffer.from('d'), PartitionKey: 'd' }), {
        abortSignal: AbortSignal.timeout(100),
      }),
    ).rejects.toThrow();
    expect(proxy.stats().delayedCalls).toBe(1);
    // Reads are not puts: they pass without delay.
    expect((await readAll(kinesis, name)).size).toBe(0);
  });

  it('throttles GetRecords with the typed SDK error', async () => {
    const name = await nextStream();
    proxy = await startKinesisFaultProxy({
      target: kinesalite.endpoint,
      faults: { getRecordsThrottleRate: 1 },
    });
    const kinesis = client(proxy.endpoint, 1);
    const { ShardIterator } = await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: name,
        ShardId: 'shardId-000000000000',
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    await expect(kinesis.send(new GetRecordsCommand({ ShardIterator }))).rejects.toBeInstanceOf(
      ProvisionedThroughputExceededException,
    );
    expect(proxy.stats().getRecordsThrottled).toBe(1);
  });

  it('expires an iterator for good, as Kinesis does, while a new iterator reads on', async () => {
    const name = await nextStream();
    proxy = await startKinesisFaultProxy({ target: kinesalite.endpoint, faults: { expiredIteratorRate: 1 } });
    const kinesis = client(proxy.endpoint, 1);
    const iterator = async () =>
      (
        await kinesis.send(
          new GetShardIteratorCommand({
            StreamName: name,
            ShardId: 'shardId-000000000000',
            ShardIteratorType: 'TRIM_HORIZON',
          }),
        )
      ).ShardIterator;
    const first = await iterator();
    await expect(kinesis.send(new GetRecordsCommand({ ShardIterator: first }))).rejects.toBeInstanceOf(
      ExpiredIteratorException,
    );
    proxy.setFaults({ expiredIteratorRate: 0 });
    await expect(kinesis.send(new GetRecordsCommand({ ShardIterator: first }))).rejects.toBeInstanceOf(
      ExpiredIteratorException,
    );
    const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: await iterator() }));
    expect(page.Records).toEqual([]);
    expect(proxy.stats().expiredIterators).toBe(2);
  });

  it('rejects out-of-range and unknown faults with the value given', async () => {
    proxy = await startKinesisFaultProxy({ target: kinesalite.endpoint });
    expect(() => proxy?.setFaults({ throttleRate: 1.5 })).toThrow(
      /throttleRate must be a number in \[0, 1\], got 1.5/,
    );
    expect(() => proxy?.setFaults({ delayMs: -1 })).toThrow(/delayMs .* got -1/);
    expect(() => proxy?.setFaults({ bogus: 1 } as never)).toThrow(/unknown kinesis fault "bogus"/);
    await expect(startKinesisFaultProxy({ target: 'ftp://x' })).rejects.toThrow(/got "ftp:\/\/x"/);
  });
});
