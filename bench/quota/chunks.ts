import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  ListShardsCommand,
} from '@aws-sdk/client-kinesis';
import { ChunkRecord, type Usage } from '../../shared/contracts/chunk-record.js';

/** What the chunk stream says about each item: its first record, its end, or its final error. */
export interface ChunkSummary {
  /** `emittedAt` of the item's first record (of any attempt): when its generation was under way. */
  readonly firstEmittedAt: Map<string, number>;
  /** Usage of the item's `end` record. */
  readonly usage: Map<string, Usage>;
  readonly completed: Set<string>;
  /** Items with a final `error` record. */
  readonly failed: Set<string>;
}

/** Reads every record of every shard of `stream` from the start, until each shard is caught up. */
export async function readChunkStream(kinesis: KinesisClient, stream: string): Promise<ChunkSummary> {
  const summary: ChunkSummary = {
    firstEmittedAt: new Map(),
    usage: new Map(),
    completed: new Set(),
    failed: new Set(),
  };
  const { Shards = [] } = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  for (const shard of Shards) {
    let iterator = (
      await kinesis.send(
        new GetShardIteratorCommand({
          StreamName: stream,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      )
    ).ShardIterator;
    while (iterator) {
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      for (const record of page.Records ?? [])
        add(summary, ChunkRecord.parse(JSON.parse(Buffer.from(record.Data ?? []).toString('utf8'))));
      if ((page.Records ?? []).length === 0 && (page.MillisBehindLatest ?? 0) === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return summary;
}

function add(summary: ChunkSummary, record: ChunkRecord): void {
  const first = summary.firstEmittedAt.get(record.itemId);
  if (record.emittedAt !== undefined && (first === undefined || record.emittedAt < first))
    summary.firstEmittedAt.set(record.itemId, record.emittedAt);
  if (record.type === 'end') {
    summary.completed.add(record.itemId);
    summary.usage.set(record.itemId, record.usage);
  }
  if (record.type === 'error' && record.final) summary.failed.add(record.itemId);
}
