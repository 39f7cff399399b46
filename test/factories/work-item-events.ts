/** Lambda Kinesis events of the input stream (work items), as the event source mapping delivers them. */
import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';

const INPUT_STREAM_ARN = 'arn:aws:kinesis:us-east-1:000000000000:stream/work-items';

/** An input shard that gives each record the next sequence number. */
export class WorkItemShard {
  private next = 0;

  constructor(readonly shardId = 'shardId-000000000000') {}

  /**
   * A record holding a work item as JSON, or `raw` data as is (for invalid input). The partition key
   * is the item's id, as upstream systems write it.
   */
  record(item: { itemId: string } | { raw: string; partitionKey: string }): KinesisStreamRecord {
    const n = this.next++;
    const sequenceNumber = `4960${String(n).padStart(52, '0')}`;
    const [data, partitionKey] =
      'raw' in item ? [item.raw, item.partitionKey] : [JSON.stringify(item), item.itemId];
    return {
      awsRegion: 'us-east-1',
      eventID: `${this.shardId}:${sequenceNumber}`,
      eventName: 'aws:kinesis:record',
      eventSource: 'aws:kinesis',
      eventSourceARN: INPUT_STREAM_ARN,
      eventVersion: '1.0',
      invokeIdentityArn: 'arn:aws:iam::000000000000:role/producer',
      kinesis: {
        approximateArrivalTimestamp: 1_700_000_000 + n / 1000,
        data: Buffer.from(data, 'utf8').toString('base64'),
        kinesisSchemaVersion: '1.0',
        partitionKey,
        sequenceNumber,
      },
    };
  }

  /** An event holding one record per entry, in order. */
  event(items: ReadonlyArray<Parameters<WorkItemShard['record']>[0]>): KinesisStreamEvent {
    return { Records: items.map((item) => this.record(item)) };
  }
}

/** A Lambda context with a fixed amount of time left. */
export function lambdaContext(remainingMs: number): { getRemainingTimeInMillis(): number } {
  const deadline = Date.now() + remainingMs;
  return { getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
}
