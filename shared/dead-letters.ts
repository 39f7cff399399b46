import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { DeadLetter, DeadRecord, InvalidRecordLetter } from './contracts/dead-letter.js';
import { withRetry } from './retry.js';
import type { UserRecord } from './user-records.js';
import type { Logger } from './telemetry.js';

/**
 * The raw record of a Lambda Kinesis event, kept whole for the dead-letter store (for a user record
 * of a KPL aggregate: that user record alone, with its index).
 */
export function deadRecordOf(record: UserRecord): DeadRecord {
  // A replayed user record of an aggregate comes alone, its index kept only in its `eventID`.
  const [shardId, , index] = record.eventID.split(':');
  const subSequenceNumber = record.subSequenceNumber ?? (index === undefined ? undefined : Number(index));
  return {
    shardId,
    partitionKey: record.kinesis.partitionKey,
    sequenceNumber: record.kinesis.sequenceNumber,
    ...(subSequenceNumber === undefined || !Number.isSafeInteger(subSequenceNumber)
      ? {}
      : { subSequenceNumber }),
    approximateArrivalTimestamp: record.kinesis.approximateArrivalTimestamp,
    data: record.kinesis.data,
  };
}

export function invalidRecordLetter(
  source: InvalidRecordLetter['source'],
  record: UserRecord,
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
