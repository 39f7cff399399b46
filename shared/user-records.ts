/**
 * Input records written by the Kinesis Producer Library (KPL) pack many user records into one
 * Kinesis record (its aggregation format: magic bytes F3 89 9A C2, a protobuf message, an MD5 of
 * it). Lambda hands such a record over whole; this module unpacks it with `aws-kinesis-agg`, AWS's
 * library for the format, so that each user record is validated, claimed and dead-lettered on its
 * own. A plain record is its own single user record, unchanged.
 */
import type { KinesisStreamRecord } from 'aws-lambda';
import agg from 'aws-kinesis-agg';
import { describe } from './errors.js';

/**
 * One user record, in the shape of the Lambda record that carried it: `kinesis.data` and
 * `kinesis.partitionKey` are the user record's; `kinesis.sequenceNumber` is the carrying record's
 * (the only one `batchItemFailures` can name). A user record of an aggregate has its
 * `subSequenceNumber` (its index in the aggregate) and an `eventID` ending in `:<subSequenceNumber>`,
 * so that it is told apart from its siblings and recognised when the aggregate is delivered again.
 */
export type UserRecord = KinesisStreamRecord & { readonly subSequenceNumber?: number };

/** The user records of a batch, and the records that could not be unpacked (with why). */
export interface UnpackedBatch {
  readonly records: UserRecord[];
  readonly undecodable: ReadonlyArray<{ readonly record: KinesisStreamRecord; readonly reason: string }>;
}

const MAGIC = Buffer.from('f3899ac2', 'hex');

/** True when the record's data starts with the KPL aggregation format's magic bytes. */
export function isAggregated(record: KinesisStreamRecord): boolean {
  return Buffer.from(record.kinesis.data.slice(0, 8), 'base64').subarray(0, 4).equals(MAGIC);
}

/**
 * Unpacks every record of a Lambda Kinesis batch into its user records, in order. An aggregate
 * whose protobuf or checksum is broken cannot be split, so it is reported whole as undecodable.
 */
export function unpackUserRecords(records: readonly KinesisStreamRecord[]): UnpackedBatch {
  const out: UserRecord[] = [];
  const undecodable: Array<{ record: KinesisStreamRecord; reason: string }> = [];
  for (const record of records) {
    if (!isAggregated(record)) {
      out.push(record);
      continue;
    }
    const unpacked = unpackAggregate(record);
    if (Array.isArray(unpacked)) out.push(...unpacked);
    else undecodable.push({ record, reason: unpacked.reason });
  }
  return { records: out, undecodable };
}

function unpackAggregate(record: KinesisStreamRecord): UserRecord[] | { reason: string } {
  const users: UserRecord[] = [];
  let failure: unknown;
  // The library's callbacks run synchronously; a failure may be reported more than once.
  agg.deaggregate(
    record.kinesis,
    true,
    (err, user) => {
      if (err) failure ??= err;
      else if (user)
        users.push({
          ...record,
          eventID: `${record.eventID}:${user.subSequenceNumber}`,
          kinesis: { ...record.kinesis, partitionKey: user.partitionKey, data: user.data },
          subSequenceNumber: user.subSequenceNumber,
        });
    },
    (err) => {
      if (err) failure ??= err;
    },
  );
  if (failure !== undefined)
    return { reason: `KPL-aggregated record could not be unpacked: ${describe(failure)}` };
  return users;
}
