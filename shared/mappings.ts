/**
 * The Lambda event source mapping settings of both streams, in one place: the CDK app takes them
 * as the defaults of its context keys, and the local stack's mappings run them as they are, so
 * what is tested locally is what is deployed. The ages are argued in cdk/README.md.
 */

/** `retryAttempts` value meaning: retry a failing batch until its oldest record reaches `maxRecordAgeSeconds`. */
export const RETRY_UNTIL_RECORD_AGE = -1;

/** How Lambda reads one Kinesis stream for one handler (names and units of `CreateEventSourceMapping`). */
export interface StreamMappingSettings {
  /** Records per invocation (1–10,000). */
  readonly batchSize: number;
  /** How long records are gathered before invoking, in whole seconds (0–300). */
  readonly maxBatchingWindowSeconds: number;
  /** Batches processed concurrently per shard (1–10); order per partition key is kept. */
  readonly parallelizationFactor: number;
  /**
   * Retries of a failing batch (0–10,000), or `RETRY_UNTIL_RECORD_AGE`: only the record age ends
   * them. Both handlers are idempotent, so a retry is always safe; a count would be spent by a
   * brownout of a minute, an age is not.
   */
  readonly retryAttempts: number;
  /** Records older than this go to the on-failure destination instead of the handler, in seconds (60–604,800). */
  readonly maxRecordAgeSeconds: number;
}

/**
 * Hours of stream retention an operator keeps, after a record ages out, to replay it from the
 * stream (`cli dead-letters replay` reads on-failure entries back while retention allows).
 */
export const REPLAY_WINDOW_HOURS = 12;

/**
 * Work items. A generation takes seconds to minutes, so work items are read in small batches and
 * many batches per shard run at once to keep the model busy. Retried until 6 h old.
 */
export const INPUT_MAPPING: StreamMappingSettings = {
  batchSize: 20,
  maxBatchingWindowSeconds: 1,
  parallelizationFactor: 10,
  retryAttempts: RETRY_UNTIL_RECORD_AGE,
  maxRecordAgeSeconds: 6 * 3600,
};

/**
 * Chunk records. No batching window (records are live text); a batch holds many chunk records so
 * each item's records in it cost one conditional write. Retried until 6 h old.
 */
export const CHUNK_MAPPING: StreamMappingSettings = {
  batchSize: 500,
  maxBatchingWindowSeconds: 0,
  parallelizationFactor: 4,
  retryAttempts: RETRY_UNTIL_RECORD_AGE,
  maxRecordAgeSeconds: 6 * 3600,
};
