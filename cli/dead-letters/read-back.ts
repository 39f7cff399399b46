/**
 * Reads the records of an on-failure entry back from their stream: Lambda's on-failure destination
 * gets only the shard and the first and last sequence numbers of the batch it gave up on, so the
 * records themselves exist only in the stream, and only for its retention period.
 */
import {
  type _Record as KinesisRecord,
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
} from '@aws-sdk/client-kinesis';
import { classifyAwsError, describe } from '../../shared/errors.js';
import { withRetry } from '../../shared/retry.js';

/** A shard's records from `start` to `end` (sequence numbers, both included). */
export interface ShardRange {
  readonly streamName: string;
  readonly shardId: string;
  readonly start: string;
  readonly end: string;
}

export type ReadBack =
  | { readonly ok: true; readonly records: KinesisRecord[] }
  | { readonly ok: false; readonly reason: string };

/** GetRecords calls one range may take (a range spans at most a batch, so far fewer in practice). */
const MAX_READS = 1_000;

/** The stream's name in a stream (or stream consumer) ARN: `arn:aws:kinesis:<r>:<a>:stream/<name>[/consumer/...]`. */
export function streamNameOf(streamArn: string): string | undefined {
  return /:stream\/([^/]+)/.exec(streamArn)?.[1];
}

const retry = (what: string) => ({ what, maxAttempts: 6, baseDelayMs: 200, maxDelayMs: 5_000 });

const PAST_RETENTION =
  'the stream no longer holds them: they are past its retention period (trim horizon), so they cannot be replayed';

/** Reads a range back; says why when the stream no longer holds all of it. */
export async function readRange(kinesis: KinesisClient, range: ShardRange): Promise<ReadBack> {
  const where = `${range.streamName}/${range.shardId} ${range.start}..${range.end}`;
  let iterator: string | undefined;
  try {
    ({ ShardIterator: iterator } = await withRetry(
      () =>
        kinesis.send(
          new GetShardIteratorCommand({
            StreamName: range.streamName,
            ShardId: range.shardId,
            ShardIteratorType: 'AT_SEQUENCE_NUMBER',
            StartingSequenceNumber: range.start,
          }),
        ),
      retry(`GetShardIterator ${where}`),
    ));
  } catch (err) {
    const kind = classifyAwsError(err);
    if (kind === 'not-found' || kind === 'validation')
      return {
        ok: false,
        reason: `cannot read ${where} back (${describe(err)}); ${PAST_RETENTION}, or the stream was deleted`,
      };
    return { ok: false, reason: `cannot read ${where} back: ${describe(err)}` };
  }
  return collect(kinesis, iterator, range, where);
}

async function collect(
  kinesis: KinesisClient,
  first: string | undefined,
  range: ShardRange,
  where: string,
): Promise<ReadBack> {
  const end = BigInt(range.end);
  const records: KinesisRecord[] = [];
  let iterator = first;
  for (let reads = 0; iterator && reads < MAX_READS; reads++) {
    const page = await withRetry(
      () => kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1_000 })),
      retry(`GetRecords ${where}`),
    );
    for (const record of page.Records ?? []) {
      if (BigInt(record.SequenceNumber ?? '0') > end) return checked(records, range, where);
      records.push(record);
    }
    const last = records.at(-1)?.SequenceNumber;
    if (last !== undefined && BigInt(last) >= end) break;
    // At the tip of an open shard and the end is not there: it will not come.
    if ((page.Records ?? []).length === 0 && page.MillisBehindLatest === 0) break;
    iterator = page.NextShardIterator;
  }
  return checked(records, range, where);
}

/** The first and last record of the range must both be there, or something is missing. */
function checked(records: KinesisRecord[], range: ShardRange, where: string): ReadBack {
  const firstRead = records[0]?.SequenceNumber;
  // Past the trim horizon, an iterator may start at the oldest record still held instead.
  if (firstRead !== range.start) {
    const found = firstRead === undefined ? 'nothing' : `the stream starts at ${firstRead}`;
    return { ok: false, reason: `record ${range.start} of ${where} is gone (${found}); ${PAST_RETENTION}` };
  }
  if (records.at(-1)?.SequenceNumber !== range.end)
    return { ok: false, reason: `record ${range.end} of ${where} was not found in the shard` };
  return { ok: true, records };
}
