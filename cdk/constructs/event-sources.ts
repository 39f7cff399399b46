import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { KinesisEventSourceProps } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { Construct } from 'constructs';
import { RETRY_UNTIL_RECORD_AGE, type StreamMappingSettings } from '../../shared/mappings.js';
import { checkRange } from './handler-function.js';

/**
 * How Lambda reads a Kinesis stream for a handler: `StreamMappingSettings` (shared with the local
 * stack). Every value is explicit; retries end at `maxRecordAgeSeconds` at the latest, so one
 * poison record never blocks its shard for the stream's whole retention.
 */
export type StreamMappingProps = StreamMappingSettings;

/**
 * The event source settings the batch handlers rely on: partial batch responses
 * (`ReportBatchItemFailures`, so a retry resumes at the first failed record), bisect on error,
 * retries bounded by record age, and the dead-letter queue as the on-failure destination.
 */
export function kinesisEventSourceProps(
  scope: Construct,
  props: StreamMappingProps,
  onFailure: lambda.IEventSourceDlq,
): KinesisEventSourceProps {
  checkRange(scope, 'batchSize', props.batchSize, 1, 10_000);
  checkRange(scope, 'maxBatchingWindowSeconds', props.maxBatchingWindowSeconds, 0, 300);
  checkRange(scope, 'parallelizationFactor', props.parallelizationFactor, 1, 10);
  if (props.retryAttempts !== RETRY_UNTIL_RECORD_AGE)
    checkRange(scope, 'retryAttempts', props.retryAttempts, 0, 10_000);
  checkRange(scope, 'maxRecordAgeSeconds', props.maxRecordAgeSeconds, 60, 604_800);
  return {
    // Work items and chunk records written before the mapping existed (e.g. during a deploy) are
    // still processed; idempotent handlers make a re-read harmless.
    startingPosition: lambda.StartingPosition.TRIM_HORIZON,
    batchSize: props.batchSize,
    maxBatchingWindow: Duration.seconds(props.maxBatchingWindowSeconds),
    parallelizationFactor: props.parallelizationFactor,
    // Left out, Lambda's MaximumRetryAttempts is -1: retried until the record age runs out.
    retryAttempts: props.retryAttempts === RETRY_UNTIL_RECORD_AGE ? undefined : props.retryAttempts,
    maxRecordAge: Duration.seconds(props.maxRecordAgeSeconds),
    bisectBatchOnError: true,
    reportBatchItemFailures: true,
    onFailure,
  };
}
