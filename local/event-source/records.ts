import { createHash } from 'node:crypto';
import type { _Record as KinesisRecord } from '@aws-sdk/client-kinesis';
import type { KinesisStreamRecord } from 'aws-lambda';
import type { DeadRecord } from '../../shared/contracts/dead-letter.js';
import { lambdaKinesisRecord, type RecordSource } from '../../shared/lambda-records.js';

export type { RecordSource };

/** A record read from a shard, in the shape Lambda delivers, with what the mapping needs to track it. */
export interface PolledRecord {
  readonly lambda: KinesisStreamRecord;
  readonly sequenceNumber: string;
  readonly partitionKey: string;
  /** Milliseconds since the epoch. */
  readonly arrivalMs: number;
  /** Approximate share of the 6 MB invocation payload. */
  readonly bytes: number;
  /** Set once the record is processed or handed to the on-failure destination. */
  done: boolean;
}

/** Lambda's invocation payload limit for a batch. */
export const MAX_BATCH_BYTES = 6 * 1024 * 1024;
/** Per-record JSON around `data` in the event (names, ARNs, ids), a generous estimate. */
const RECORD_OVERHEAD_BYTES = 512;

/**
 * Converts a GetRecords record to the record Lambda delivers for Kinesis: same fields, same order,
 * `data` base64, `approximateArrivalTimestamp` in fractional epoch seconds.
 */
export function toPolledRecord(record: KinesisRecord, source: RecordSource): PolledRecord {
  const sequenceNumber = record.SequenceNumber ?? '';
  const partitionKey = record.PartitionKey ?? '';
  const arrivalMs = record.ApproximateArrivalTimestamp?.getTime() ?? Date.now();
  const data = Buffer.from(record.Data ?? new Uint8Array()).toString('base64');
  const lambda = lambdaKinesisRecord(
    { partitionKey, sequenceNumber, data, approximateArrivalTimestamp: arrivalMs / 1000 },
    source,
  );
  return {
    lambda,
    sequenceNumber,
    partitionKey,
    arrivalMs,
    bytes: data.length + partitionKey.length + RECORD_OVERHEAD_BYTES,
    done: false,
  };
}

/** The record as the dead-letter store keeps it. */
export function toDeadRecord(record: PolledRecord, shardId: string): DeadRecord {
  return {
    shardId,
    partitionKey: record.partitionKey,
    sequenceNumber: record.sequenceNumber,
    approximateArrivalTimestamp: record.lambda.kinesis.approximateArrivalTimestamp,
    data: record.lambda.kinesis.data,
  };
}

/**
 * The lane (0..lanes-1) a partition key belongs to. Kinesis hashes keys with MD5; so does this, so
 * keys spread evenly and one key always lands in the same lane.
 */
export function laneOf(partitionKey: string, lanes: number): number {
  if (lanes <= 1) return 0;
  return createHash('md5').update(partitionKey).digest().readUInt32BE(0) % lanes;
}
