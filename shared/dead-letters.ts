import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { KinesisStreamRecord } from 'aws-lambda';
import type { DeadLetter, DeadRecord, InvalidRecordLetter } from './contracts/dead-letter.js';
import { withRetry } from './retry.js';
import type { Logger } from './telemetry.js';

/** The raw record of a Lambda Kinesis event, kept whole for the dead-letter store. */
export function deadRecordOf(record: KinesisStreamRecord): DeadRecord {
  return {
    shardId: record.eventID.split(':')[0],
    partitionKey: record.kinesis.partitionKey,
    sequenceNumber: record.kinesis.sequenceNumber,
    approximateArrivalTimestamp: record.kinesis.approximateArrivalTimestamp,
    data: record.kinesis.data,
  };
}

export function invalidRecordLetter(
  source: InvalidRecordLetter['source'],
  record: KinesisStreamRecord,
  reason: string,
): InvalidRecordLetter {
  return {
    kind: 'invalid-record',
    source,
    reason,
    record: deadRecordOf(record),
    failedAt: new Date().toISOString(),
  };
}

/** Where handlers put what they cannot process. */
export interface DeadLetterSink {
  send(letter: DeadLetter): Promise<void>;
}

/**
 * Sends dead letters to an SQS queue (the dead-letter store), retrying throttling and transient
 * failures. A failure to store a letter is thrown: the caller must then fail the record rather
 * than drop it.
 */
export function sqsDeadLetterSink(
  sqs: SQSClient,
  queueUrl: string | undefined,
  logger: Logger,
): DeadLetterSink {
  return {
    async send(letter) {
      logger.warn('dead letter', { letter });
      if (!queueUrl) return;
      await withRetry(
        () => sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(letter) })),
        { what: 'SendMessage to the dead-letter queue', maxAttempts: 4 },
      );
    },
  };
}
