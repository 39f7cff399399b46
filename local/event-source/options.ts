import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import type { MappingFailureLetter } from '../../shared/contracts/dead-letter.js';
import { describe } from '../../shared/errors.js';

/** The function behind a mapping: Lambda's Kinesis handler shape, without the context. */
export type KinesisBatchHandler = (
  event: KinesisStreamEvent,
  // biome-ignore lint/suspicious/noConfusingVoidType: as aws-lambda's KinesisStreamHandler, so `async (event) => {}` fits.
) => Promise<KinesisStreamBatchResponse | void>;

/** Where a mapping starts reading a shard that has no checkpoint yet. */
export type StartingPosition = 'TRIM_HORIZON' | 'LATEST';

/**
 * A local event source mapping's settings, named and bounded as Lambda's
 * `CreateEventSourceMapping` for Kinesis, with a few local-only knobs for tests.
 */
export interface EventSourceMappingOptions {
  /** Reads the stream (a client pointed at kinesalite needs `requestHandler: new NodeHttpHandler()`). */
  readonly kinesis: KinesisClient;
  readonly streamName: string;
  /** Names the function in ARNs and dead letters. */
  readonly functionName: string;
  readonly handler: KinesisBatchHandler;
  /** Records per invocation, 1–10,000. Default 100. Batches also stop at 6 MB. */
  readonly batchSize?: number;
  /**
   * How long to gather records before invoking, in ms, 0–300,000. Default 0. AWS takes whole
   * seconds (`MaximumBatchingWindowInSeconds`); milliseconds are allowed here for tests.
   */
  readonly maximumBatchingWindowMs?: number;
  /** Concurrent batches per shard, 1–10; records are routed by partition key. Default 1. */
  readonly parallelizationFactor?: number;
  /** On a function error, split the batch in two and retry each half. Default false. */
  readonly bisectBatchOnFunctionError?: boolean;
  /** Retries after a failed invocation, -1 (unbounded, AWS's default) or 0–10,000. Default -1. */
  readonly maximumRetryAttempts?: number;
  /**
   * Records older than this are not sent to the function but to `onFailure`, in seconds:
   * -1 (unbounded, AWS's default) or > 0 up to 604,800. AWS's minimum is 60; smaller values are
   * allowed here for tests. Default -1.
   */
  readonly maximumRecordAgeSeconds?: number;
  /** Read `batchItemFailures` from the function's response (`FunctionResponseTypes`). Default false. */
  readonly reportBatchItemFailures?: boolean;
  /** For a shard with no checkpoint. Default `TRIM_HORIZON` (AWS has no default). */
  readonly startingPosition?: StartingPosition;
  /**
   * The on-failure destination: receives batches given up on (retries or record age exhausted).
   * Retried with backoff until it succeeds or the mapping stops. Without it, such records are
   * dropped, as in AWS.
   */
  readonly onFailure?: (letter: MappingFailureLetter) => Promise<void>;
  /** JSON file of per-shard checkpoints, so a restart resumes where it stopped. In memory when omitted. */
  readonly checkpointFile?: string;
  /** Wait between reads of a shard that had nothing new, in ms, 1–60,000. Default 100 (AWS: about 1 s). */
  readonly pollIntervalMs?: number;
  /** How often to look for new shards (resharding), in ms, 10–600,000. Default 1,000. */
  readonly shardDiscoveryIntervalMs?: number;
  /** Backoff with full jitter between retries of a failed batch. Defaults 50 ms and 2,000 ms. */
  readonly retryBackoff?: { readonly baseDelayMs?: number; readonly maxDelayMs?: number };
  /**
   * Chaos: with `probability` per invocation, the function sees only a random prefix of the
   * batch and the invocation then counts as a function error, as if the function died mid-batch:
   * its partial effects stay and the batch is delivered again.
   */
  readonly crash?: { readonly probability: number; readonly random?: () => number };
  /**
   * Told about every failed invocation that counts against `maximumRetryAttempts` (a function
   * error of a batch that cannot be split, or a partial failure): how long its records have failed
   * in a row. Chaos runs use it to show a brownout outlasted a retry count. Default: nothing.
   */
  readonly onRetry?: (retry: BatchRetry) => void;
  /**
   * Told about read errors, handler errors and destination failures (the mapping carries on).
   * Default: a one-line `console.warn`.
   */
  readonly onError?: (err: unknown) => void;
}

/** One failed invocation of a batch, as `onRetry` reports it. */
export interface BatchRetry {
  readonly shardId: string;
  /**
   * Retries these records had used when they failed again: a `maximumRetryAttempts` at or below
   * this would give them up now.
   */
  readonly retriesUsed: number;
  /** When (epoch ms) the first invocation of their current run of failures failed. */
  readonly failingSince: number;
}

/** Counters since start. */
export interface EventSourceMappingStats {
  /** Records read from the stream (each once, unless re-read after a restart). */
  recordsRead: number;
  invocations: number;
  /** Records delivered to the function, redeliveries included. */
  records: number;
  /** Invocations that threw, were crash-injected, or answered a malformed batch response. */
  functionErrors: number;
  /** Invocations that were retries of records already delivered. */
  retries: number;
  /** Records handed to the on-failure destination (or dropped without one). */
  deadLettered: number;
  crashes: number;
  /** Invocations whose response reported some records failed. */
  partialFailures: number;
  bisections: number;
  /** GetRecords / GetShardIterator / ListShards failures, throttling included. */
  readErrors: number;
}

export interface EventSourceMapping {
  /**
   * Stops reading, waits for in-flight invocations (no new retries), and saves the checkpoints.
   * With `abandonInFlight`, does not wait: in-flight batches are left unprocessed, as if the
   * function had crashed, and a restart delivers them again.
   */
  stop(options?: { readonly abandonInFlight?: boolean }): Promise<void>;
  stats(): EventSourceMappingStats;
  /**
   * Resolves when every shard has been read up to its latest record (by a read begun after this
   * call) and nothing is buffered or in flight. Rejects after `timeoutMs` when given.
   */
  idle(options?: { timeoutMs?: number }): Promise<void>;
}

/** Settings after validation, defaults filled in. */
export interface ResolvedOptions {
  readonly kinesis: KinesisClient;
  readonly streamName: string;
  readonly functionName: string;
  readonly handler: KinesisBatchHandler;
  readonly batchSize: number;
  readonly maximumBatchingWindowMs: number;
  readonly parallelizationFactor: number;
  readonly bisectBatchOnFunctionError: boolean;
  readonly maximumRetryAttempts: number;
  readonly maximumRecordAgeSeconds: number;
  readonly reportBatchItemFailures: boolean;
  readonly startingPosition: StartingPosition;
  readonly onFailure: ((letter: MappingFailureLetter) => Promise<void>) | undefined;
  readonly checkpointFile: string | undefined;
  readonly pollIntervalMs: number;
  readonly shardDiscoveryIntervalMs: number;
  readonly retryBackoff: { readonly baseDelayMs: number; readonly maxDelayMs: number };
  readonly crash: { readonly probability: number; readonly random: () => number } | undefined;
  readonly onRetry: ((retry: BatchRetry) => void) | undefined;
  readonly onError: (err: unknown) => void;
}

const KNOWN_OPTIONS = new Set([
  'kinesis',
  'streamName',
  'functionName',
  'handler',
  'batchSize',
  'maximumBatchingWindowMs',
  'parallelizationFactor',
  'bisectBatchOnFunctionError',
  'maximumRetryAttempts',
  'maximumRecordAgeSeconds',
  'reportBatchItemFailures',
  'startingPosition',
  'onFailure',
  'checkpointFile',
  'pollIntervalMs',
  'shardDiscoveryIntervalMs',
  'retryBackoff',
  'crash',
  'onRetry',
  'onError',
]);

function fail(name: string, value: unknown, allowed: string): never {
  const shown =
    typeof value === 'string' ? `"${value}"` : typeof value === 'function' ? 'a function' : String(value);
  throw new RangeError(`event source mapping option ${name} must be ${allowed}, got ${shown}`);
}

function integer(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    fail(name, value, `an integer from ${min} to ${max}`);
  return value;
}

function boolean(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') fail(name, value, 'true or false');
  return value;
}

/** Checks every option at once, so a typo or an out-of-range value fails before anything starts. */
export function resolveOptions(options: EventSourceMappingOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) fail('options', options, 'an object');
  for (const key of Object.keys(options))
    if (!KNOWN_OPTIONS.has(key))
      throw new RangeError(
        `unknown event source mapping option "${key}"; allowed: ${[...KNOWN_OPTIONS].join(', ')}`,
      );
  const o = options;
  if (typeof o.kinesis?.send !== 'function') fail('kinesis', o.kinesis, 'a KinesisClient');
  if (typeof o.streamName !== 'string' || !/^[A-Za-z0-9_.-]{1,128}$/.test(o.streamName))
    fail('streamName', o.streamName, 'a Kinesis stream name (1–128 of A-Z a-z 0-9 _ . -)');
  if (typeof o.functionName !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(o.functionName))
    fail('functionName', o.functionName, 'a Lambda function name (1–64 of A-Z a-z 0-9 _ -)');
  if (typeof o.handler !== 'function') fail('handler', o.handler, 'a function');

  const maximumRetryAttempts = integer('maximumRetryAttempts', o.maximumRetryAttempts, -1, 10_000, -1);
  const age = o.maximumRecordAgeSeconds;
  if (age !== undefined && age !== -1 && (typeof age !== 'number' || !(age > 0 && age <= 604_800)))
    fail('maximumRecordAgeSeconds', age, '-1 (unbounded) or a number of seconds > 0 and <= 604800');
  const startingPosition = o.startingPosition ?? 'TRIM_HORIZON';
  if (startingPosition !== 'TRIM_HORIZON' && startingPosition !== 'LATEST')
    fail('startingPosition', startingPosition, 'TRIM_HORIZON or LATEST');
  if (o.onFailure !== undefined && typeof o.onFailure !== 'function')
    fail('onFailure', o.onFailure, 'a function');
  if (o.onError !== undefined && typeof o.onError !== 'function') fail('onError', o.onError, 'a function');
  if (o.onRetry !== undefined && typeof o.onRetry !== 'function') fail('onRetry', o.onRetry, 'a function');
  if (o.checkpointFile !== undefined && (typeof o.checkpointFile !== 'string' || o.checkpointFile === ''))
    fail('checkpointFile', o.checkpointFile, 'a file path');
  const baseDelayMs = integer('retryBackoff.baseDelayMs', o.retryBackoff?.baseDelayMs, 0, 60_000, 50);
  const maxDelayMs = integer('retryBackoff.maxDelayMs', o.retryBackoff?.maxDelayMs, 0, 600_000, 2_000);
  if (maxDelayMs < baseDelayMs)
    fail('retryBackoff.maxDelayMs', maxDelayMs, `at least retryBackoff.baseDelayMs (${baseDelayMs})`);
  let crash: ResolvedOptions['crash'];
  if (o.crash !== undefined) {
    const p = o.crash?.probability;
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) fail('crash.probability', p, 'a number from 0 to 1');
    if (o.crash.random !== undefined && typeof o.crash.random !== 'function')
      fail('crash.random', o.crash.random, 'a function returning [0, 1)');
    crash = { probability: p, random: o.crash.random ?? Math.random };
  }

  return {
    kinesis: o.kinesis,
    streamName: o.streamName,
    functionName: o.functionName,
    handler: o.handler,
    batchSize: integer('batchSize', o.batchSize, 1, 10_000, 100),
    maximumBatchingWindowMs: integer('maximumBatchingWindowMs', o.maximumBatchingWindowMs, 0, 300_000, 0),
    parallelizationFactor: integer('parallelizationFactor', o.parallelizationFactor, 1, 10, 1),
    bisectBatchOnFunctionError: boolean('bisectBatchOnFunctionError', o.bisectBatchOnFunctionError),
    maximumRetryAttempts,
    maximumRecordAgeSeconds: age ?? -1,
    reportBatchItemFailures: boolean('reportBatchItemFailures', o.reportBatchItemFailures),
    startingPosition,
    onFailure: o.onFailure,
    checkpointFile: o.checkpointFile,
    pollIntervalMs: integer('pollIntervalMs', o.pollIntervalMs, 1, 60_000, 100),
    shardDiscoveryIntervalMs: integer(
      'shardDiscoveryIntervalMs',
      o.shardDiscoveryIntervalMs,
      10,
      600_000,
      1_000,
    ),
    retryBackoff: { baseDelayMs, maxDelayMs },
    crash,
    onRetry: o.onRetry,
    onError:
      o.onError ??
      ((err: unknown) =>
        console.warn(`event source mapping ${o.functionName} <- ${o.streamName}: ${describe(err)}`)),
  };
}
