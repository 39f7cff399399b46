/** Lambda Kinesis events as the event source mapping delivers them, for tests. */
import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import type { ChunkRecord } from '../../shared/contracts/chunk-record.js';

const STREAM_ARN = 'arn:aws:kinesis:us-east-1:000000000000:stream/chunks';

/** A Kinesis shard that gives each record put on it the next sequence number. */
export class TestShard {
  private next = 0;

  constructor(readonly shardId = 'shardId-000000000000') {}

  /** A record holding `data`: a chunk record (as JSON), a string or raw bytes. */
  record(data: ChunkRecord | string | Buffer, partitionKey?: string): KinesisStreamRecord {
    const n = this.next++;
    const sequenceNumber = `4959${String(n).padStart(52, '0')}`;
    const bytes = Buffer.isBuffer(data)
      ? data
      : Buffer.from(typeof data === 'string' ? data : JSON.stringify(data));
    return {
      awsRegion: 'us-east-1',
      eventID: `${this.shardId}:${sequenceNumber}`,
      eventName: 'aws:kinesis:record',
      eventSource: 'aws:kinesis',
      eventSourceARN: STREAM_ARN,
      eventVersion: '1.0',
      invokeIdentityArn: 'arn:aws:iam::000000000000:role/consumer',
      kinesis: {
        approximateArrivalTimestamp: 1_700_000_000 + n / 1000,
        data: bytes.toString('base64'),
        kinesisSchemaVersion: '1.0',
        partitionKey:
          partitionKey ?? (typeof data === 'object' && !Buffer.isBuffer(data) ? data.itemId : 'unknown'),
        sequenceNumber,
      },
    };
  }

  /** Records for each of `data`, in order. */
  records(data: ReadonlyArray<ChunkRecord | string | Buffer>): KinesisStreamRecord[] {
    return data.map((d) => this.record(d));
  }
}

/** An event holding `records`. */
export function kinesisEvent(records: readonly KinesisStreamRecord[]): KinesisStreamEvent {
  return { Records: [...records] };
}

type BatchHandler = (
  event: KinesisStreamEvent,
) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;

/**
 * Feeds `records` (one shard, in order) to `handler` as the event source mapping does with
 * `ReportBatchItemFailures`: batches of the given sizes (cycled); after a partial failure the next
 * batch starts at the lowest failed sequence number, after a function error at the same batch.
 * Returns the number of invocations.
 */
export async function deliverLikeLambda(
  handler: BatchHandler,
  records: readonly KinesisStreamRecord[],
  options: { batchSizes?: readonly number[]; maxInvocations?: number } = {},
): Promise<number> {
  const sizes = options.batchSizes?.length ? options.batchSizes : [100];
  const maxInvocations = options.maxInvocations ?? 10 * records.length + 10;
  let position = 0;
  let invocations = 0;
  while (position < records.length) {
    if (invocations >= maxInvocations)
      throw new Error(`records not consumed within ${maxInvocations} invocations`);
    const size = sizes[invocations % sizes.length] ?? 100;
    const batch = records.slice(position, position + size);
    invocations += 1;
    let batchItemFailures: { itemIdentifier: string }[];
    try {
      ({ batchItemFailures } = await handler(kinesisEvent(batch)));
    } catch {
      // A function error (a crash): the whole batch is delivered again.
      continue;
    }
    if (batchItemFailures.length === 0) {
      position += batch.length;
      continue;
    }
    // Records of a shard arrive in sequence order: the lowest failed one is the first in the batch.
    const reported = new Set(batchItemFailures.map((f) => f.itemIdentifier));
    const at = batch.findIndex((r) => reported.has(r.kinesis.sequenceNumber));
    if (at < 0) throw new Error(`handler reported ${[...reported].join(', ')}, not in the batch`);
    position += at;
  }
  return invocations;
}
