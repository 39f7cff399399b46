import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { KinesisEventSourceProps } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { Construct } from 'constructs';
import { checkRange } from './handler-function.js';

/**
 * How Lambda reads a Kinesis stream for a handler. Every value is explicit: the defaults (retry
 * until the record expires, no age limit) would let one poison record block its shard for the
 * stream's whole retention.
 */
export interface StreamMappingProps {
  /** Records per invocation (1–10,000). */
  readonly batchSize: number;
  /** How long Lambda gathers records before invoking, in whole seconds (0–300). */
  readonly maxBatchingWindowSeconds: number;
  /** Batches processed concurrently per shard (1–10); order per partition key is kept. */
  readonly parallelizationFactor: number;
  /** Retries of a failing batch before its records go to the on-failure destination (0–10,000). */
  readonly retryAttempts: number;
  /** Records older than this go to the on-failure destination instead of the handler, in seconds (60–604,800). */
  readonly maxRecordAgeSeconds: number;
}

/**
 * The event source settings the batch handlers rely on: partial batch responses
 * (`ReportBatchItemFailures`, so a retry resumes at the first failed record), bisect on error,
 * bounded retries and record age, and the dead-letter queue as the on-failure destination.
 */
export function kinesisEventSourceProps(
  scope: Construct,
  props: StreamMappingProps,
  onFailure: lambda.IEventSourceDlq,
): KinesisEventSourceProps {
  checkRange(scope, 'batchSize', props.batchSize, 1, 10_000);
  checkRange(scope, 'maxBatchingWindowSeconds', props.maxBatchingWindowSeconds, 0, 300);
  checkRange(scope, 'parallelizationFactor', props.parallelizationFactor, 1, 10);
  checkRange(scope, 'retryAttempts', props.retryAttempts, 0, 10_000);
  checkRange(scope, 'maxRecordAgeSeconds', props.maxRecordAgeSeconds, 60, 604_800);
  return {
    // Work items and chunk records written before the mapping existed (e.g. during a deploy) are
    // still processed; idempotent handlers make a re-read harmless.
    startingPosition: lambda.StartingPosition.TRIM_HORIZON,
    batchSize: props.batchSize,
    maxBatchingWindow: Duration.seconds(props.maxBatchingWindowSeconds),
    parallelizationFactor: props.parallelizationFactor,
    retryAttempts: props.retryAttempts,
    maxRecordAge: Duration.seconds(props.maxRecordAgeSeconds),
    bisectBatchOnError: true,
    reportBatchItemFailures: true,
    onFailure,
  };
}
