import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReassemblerHandler } from '../../consumers/reassembler/handler.js';
import { createStoreMeter } from '../../consumers/reassembler/store.js';
import type { ChunkRecord } from '../../shared/contracts/chunk-record.js';
import { readItem } from '../../shared/items.js';
import { attemptRecords } from '../factories/chunk-records.js';
import { kinesisEvent, TestShard } from '../factories/kinesis-events.js';
import {
  type ConsumerWorld,
  putClaimedHead,
  recordingPublisher,
  startConsumerWorld,
  telemetry,
} from './consumer-fixture.js';

/**
 * DynamoDB calls and write units the consumer spends, measured with the store's meter on dynalite
 * (which reports capacity units as DynamoDB computes them for the base table; index writes are
 * not included). A token here is one word of about 5 bytes; a record carries `tokensPerRecord`.
 */
interface Workload {
  readonly name: string;
  readonly items: number;
  readonly tokensPerItem: number;
  readonly tokensPerRecord: number;
  /** Records per Lambda invocation (the shard interleaves the items' records). */
  readonly batchSize: number;
  /** The consumer's seal threshold; its default when omitted. */
  readonly sealBytes?: number;
}

const WORKLOADS: Workload[] = [
  {
    name: '1 item, 1k tokens, 5 tok/record, batch 20',
    items: 1,
    tokensPerItem: 1000,
    tokensPerRecord: 5,
    batchSize: 20,
  },
  {
    name: '10 items, 1k tokens, 5 tok/record, batch 100',
    items: 10,
    tokensPerItem: 1000,
    tokensPerRecord: 5,
    batchSize: 100,
  },
  {
    name: '10 items, 1k tokens, 5 tok/record, batch 100, seal at 8 KB',
    items: 10,
    tokensPerItem: 1000,
    tokensPerRecord: 5,
    batchSize: 100,
    sealBytes: 8192,
  },
  {
    name: '10 items, 4k tokens, 5 tok/record, batch 100',
    items: 10,
    tokensPerItem: 4000,
    tokensPerRecord: 5,
    batchSize: 100,
  },
  {
    name: '10 items, 1k tokens, 5 tok/record, batch 500',
    items: 10,
    tokensPerItem: 1000,
    tokensPerRecord: 5,
    batchSize: 500,
  },
  {
    name: '1 item, 200k tokens (~1 MB), 40 tok/record, batch 100',
    items: 1,
    tokensPerItem: 200_000,
    tokensPerRecord: 40,
    batchSize: 100,
  },
];

const WORDS = ['token', 'flux', 'ザ', 'data', '🚀', 'more'];

describe('DynamoDB writes of the consumer', () => {
  let world: ConsumerWorld;
  let run = 0;

  beforeAll(async () => {
    world = await startConsumerWorld();
  });
  afterAll(async () => {
    await world.stop();
  });

  it.each(WORKLOADS)('writes each item’s head once per batch that carries its records: $name', async (w) => {
    // Prepare
    const ids = Array.from({ length: w.items }, (_, i) => `cost-${++run}-${i}`);
    const texts = new Map<string, string>();
    const perItem = ids.map((id) => {
      const pieces: string[] = [];
      for (let t = 0; t < w.tokensPerItem; t += w.tokensPerRecord) {
        let piece = '';
        for (let k = t; k < Math.min(t + w.tokensPerRecord, w.tokensPerItem); k++)
          piece += `${WORDS[k % WORDS.length]} `;
        pieces.push(piece);
      }
      texts.set(id, pieces.join(''));
      return attemptRecords(id, 1, pieces, { type: 'end' });
    });
    for (const id of ids) await putClaimedHead(world, id);
    const interleaved: ChunkRecord[] = [];
    for (let i = 0; perItem.some((r) => i < r.length); i++) {
      for (const records of perItem) if (records[i]) interleaved.push(records[i]!);
    }
    const meter = createStoreMeter();
    const handler = createReassemblerHandler({
      config: world.config,
      clients: world.clients,
      deadLetters: { send: async () => {} },
      publisher: recordingPublisher(),
      ...telemetry('consumer'),
      meter,
      ...(w.sealBytes ? { sealBytes: w.sealBytes } : {}),
    });
    const shard = new TestShard();

    // Act
    let itemBatches = 0;
    let batches = 0;
    for (let at = 0; at < interleaved.length; at += w.batchSize) {
      const batch = interleaved.slice(at, at + w.batchSize);
      itemBatches += new Set(batch.map((r) => r.itemId)).size;
      batches += 1;
      const { batchItemFailures } = await handler(kinesisEvent(shard.records(batch)));
      expect(batchItemFailures).toEqual([]);
    }

    // Assess
    for (const id of ids)
      expect((await readItem(world.dynamo, world.config.tables, id))?.text).toBe(texts.get(id));
    expect(meter.calls.UpdateItem).toBe(itemBatches);
    expect(meter.calls.BatchGetItem).toBe(batches);
    expect(meter.calls.GetItem ?? 0).toBe(0);

    const tokens = w.items * w.tokensPerItem;
    const writeCalls = (meter.calls.UpdateItem ?? 0) + (meter.calls.BatchWriteItem ?? 0);
    const records = interleaved.length;
    console.info(
      [
        `consumer cost — ${w.name}`,
        `  records ${records}, batches ${batches}, item-batches ${itemBatches}`,
        `  write calls ${writeCalls} (UpdateItem ${meter.calls.UpdateItem ?? 0}, BatchWriteItem ${meter.calls.BatchWriteItem ?? 0})`,
        `  per item: ${(writeCalls / w.items).toFixed(1)} write calls, ${(meter.writeUnits / w.items).toFixed(1)} WCU`,
        `  per 1,000 tokens: ${((writeCalls * 1000) / tokens).toFixed(2)} write calls, ${((meter.writeUnits * 1000) / tokens).toFixed(1)} WCU`,
        `  one write per record would be ${((records * 1000) / tokens).toFixed(1)} writes per 1,000 tokens`,
        `  reads: BatchGetItem ${meter.calls.BatchGetItem ?? 0}, Query ${meter.calls.Query ?? 0}, ${meter.readUnits.toFixed(1)} RCU`,
      ].join('\n'),
    );
  });
});
