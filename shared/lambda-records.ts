import type { KinesisStreamRecord } from 'aws-lambda';

/** What every record of a batch shares: where it came from and who reads it. */
export interface RecordSource {
  readonly shardId: string;
  readonly streamArn: string;
  readonly region: string;
  readonly invokeIdentityArn: string;
}

/** One Kinesis record's own fields. */
export interface RecordFields {
  readonly partitionKey: string;
  readonly sequenceNumber: string;
  /** Base64. */
  readonly data: string;
  /** Fractional epoch seconds. */
  readonly approximateArrivalTimestamp: number;
}

/**
 * The record as Lambda delivers it to a Kinesis-mapped function: same fields, same order, `eventID`
 * `<shardId>:<sequenceNumber>`. One builder for the local mapping and for dead-letter replay, so a
 * replayed record is exactly the one the mapping delivered.
 */
export function lambdaKinesisRecord(fields: RecordFields, source: RecordSource): KinesisStreamRecord {
  return {
    kinesis: {
      kinesisSchemaVersion: '1.0',
      partitionKey: fields.partitionKey,
      sequenceNumber: fields.sequenceNumber,
      data: fields.data,
      approximateArrivalTimestamp: fields.approximateArrivalTimestamp,
    },
    eventSource: 'aws:kinesis',
    eventVersion: '1.0',
    eventID: `${source.shardId}:${fields.sequenceNumber}`,
    eventName: 'aws:kinesis:record',
    invokeIdentityArn: source.invokeIdentityArn,
    awsRegion: source.region,
    eventSourceARN: source.streamArn,
  };
}
