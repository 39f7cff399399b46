/**
 * Replays one dead-letter entry through the function that failed on it, by invoking it with the
 * Kinesis event its event source mapping would have delivered: the same records with the same
 * `eventID`s (shard and sequence number). That is what makes a replay exact: the producer tells a
 * Lambda retry of a record (same `eventID`) from an upstream resend (a new record), so a replayed
 * work item is the retry that was skipped — it never starts an attempt the original delivery would
 * not have. Re-putting the data to the stream instead would make it a resend. Both handlers are
 * idempotent (claims by item id and input record; chunks by item, attempt and `seq`), so feeding a
 * record that was already applied changes nothing.
 */
import type { _Record as KinesisRecord, KinesisClient } from '@aws-sdk/client-kinesis';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { KinesisStreamRecord } from 'aws-lambda';
import type { InvalidRecordLetter } from '../../shared/contracts/dead-letter.js';
import { lambdaKinesisRecord, type RecordSource } from '../../shared/lambda-records.js';
import type { BackoffOptions } from '../../shared/retry.js';
import type { Target } from '../target.js';
import type { Entry, OnFailureLetter } from './entries.js';
import { feed } from './invoke.js';
import { readRange, streamNameOf } from './read-back.js';

export interface ReplayDeps {
  readonly target: Target;
  readonly kinesis: KinesisClient;
  readonly lambda: LambdaClient;
  /** Attempts per batch; default `FEED_BACKOFF`. */
  readonly backoff?: BackoffOptions;
}

export type Replayed =
  | {
      readonly ok: true;
      readonly detail: string;
      /** `<shard>:<sequence number>` of every record fed. */
      readonly places: readonly string[];
    }
  | { readonly ok: false; readonly reason: string };

/** Replays one entry; never throws for an expected failure (it says why instead). */
export async function replayEntry(entry: Entry, deps: ReplayDeps): Promise<Replayed> {
  switch (entry.kind) {
    case 'invalid-record':
      return replayRejected(entry.letter, deps);
    case 'on-failure':
      return replayBatch(entry.letter, deps);
    case 'unparseable':
      return { ok: false, reason: `cannot be replayed: ${entry.reason}` };
  }
}

/**
 * A rejected record is fed from the letter, which keeps its data whole (no retention limit). A user
 * record of a KPL aggregate gets the `eventID` the producer gave it when unpacking
 * (`<shard>:<sequence number>:<index>`), so its claim is the one the original delivery made.
 * `eventSourceARN` and `invokeIdentityArn`, which the letter does not keep and no handler reads,
 * are left empty.
 */
async function replayRejected(letter: InvalidRecordLetter, deps: ReplayDeps): Promise<Replayed> {
  const functions = deps.target.lambda?.functions;
  if (!functions)
    return {
      ok: false,
      reason:
        'the stack file names no functions (lambda.functions): redeploy and rewrite it with `npm run deploy`',
    };
  const { record } = letter;
  const shardId = record.shardId ?? 'shardId-unknown';
  const source: RecordSource = { shardId, streamArn: '', region: deps.target.region, invokeIdentityArn: '' };
  const built = lambdaKinesisRecord(
    {
      partitionKey: record.partitionKey,
      sequenceNumber: record.sequenceNumber,
      data: record.data,
      approximateArrivalTimestamp: record.approximateArrivalTimestamp ?? Date.now() / 1000,
    },
    source,
  );
  const lambdaRecord: KinesisStreamRecord =
    record.subSequenceNumber === undefined
      ? built
      : { ...built, eventID: `${built.eventID}:${record.subSequenceNumber}` };
  const functionName = functions[letter.source];
  const fed = await feed(deps.lambda, functionName, [lambdaRecord], deps.backoff);
  if (!fed.ok) return fed;
  return {
    ok: true,
    detail: `fed 1 record to ${functionName}`,
    places: [`${shardId}:${record.sequenceNumber}`],
  };
}

/** An on-failure entry's records are read back from the stream and fed to the function that failed. */
async function replayBatch(letter: OnFailureLetter, deps: ReplayDeps): Promise<Replayed> {
  const batch = letter.KinesisBatchInfo;
  const streamName = streamNameOf(batch.streamArn);
  if (!streamName) return { ok: false, reason: `no stream name in ${batch.streamArn}` };
  const read = await readRange(deps.kinesis, {
    streamName,
    shardId: batch.shardId,
    start: batch.startSequenceNumber,
    end: batch.endSequenceNumber,
  });
  if (!read.ok) return read;
  const source: RecordSource = {
    shardId: batch.shardId,
    streamArn: batch.streamArn,
    region: batch.streamArn.split(':')[3] || deps.target.region,
    invokeIdentityArn: '',
  };
  const records = read.records.map((r) => toLambdaRecord(r, source));
  const functionName = letter.requestContext.functionArn;
  const fed = await feed(deps.lambda, functionName, records, deps.backoff);
  if (!fed.ok) return fed;
  return {
    ok: true,
    detail: `read ${records.length} record(s) back from ${streamName}/${batch.shardId} and fed them to ${functionName} (${fed.invocations} invocation(s))`,
    places: records.map((r) => r.eventID),
  };
}

function toLambdaRecord(record: KinesisRecord, source: RecordSource): KinesisStreamRecord {
  return lambdaKinesisRecord(
    {
      partitionKey: record.PartitionKey ?? '',
      sequenceNumber: record.SequenceNumber ?? '',
      data: Buffer.from(record.Data ?? new Uint8Array()).toString('base64'),
      approximateArrivalTimestamp: (record.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000,
    },
    source,
  );
}
