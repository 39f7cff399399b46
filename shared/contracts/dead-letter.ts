import { z } from 'zod';

/** A Kinesis record as it appears in a dead letter: the data kept whole (base64), never parsed. */
export const DeadRecord = z.object({
  shardId: z.string().optional(),
  partitionKey: z.string(),
  sequenceNumber: z.string(),
  /** For one user record of a KPL-aggregated record: its index in the aggregate (`data` is its own). */
  subSequenceNumber: z.number().int().min(0).optional(),
  approximateArrivalTimestamp: z.number().optional(),
  data: z.string(),
});
export type DeadRecord = z.infer<typeof DeadRecord>;

/** A record a handler rejected as invalid: sent once, with the reason, and the batch goes on. */
export const InvalidRecordLetter = z.object({
  kind: z.literal('invalid-record'),
  /** Which function rejected it: `producer` (work items) or `consumer` (chunk records). */
  source: z.enum(['producer', 'consumer']),
  reason: z.string(),
  record: DeadRecord,
  failedAt: z.string(),
});
export type InvalidRecordLetter = z.infer<typeof InvalidRecordLetter>;

/**
 * A batch the event source mapping gave up on, in the shape Lambda's on-failure destination
 * receives (metadata only). The local mapping adds `records`, which AWS does not send.
 */
export const MappingFailureLetter = z.object({
  requestContext: z.object({
    requestId: z.string(),
    functionArn: z.string(),
    condition: z.enum(['RetryAttemptsExhausted', 'RecordAgeExceeded', 'RetriesExhausted']),
    approximateInvokeCount: z.number().int(),
  }),
  responseContext: z.object({
    statusCode: z.number().int(),
    executedVersion: z.string(),
    functionError: z.string().optional(),
  }),
  version: z.literal('1.0'),
  timestamp: z.string(),
  KinesisBatchInfo: z.object({
    shardId: z.string(),
    startSequenceNumber: z.string(),
    endSequenceNumber: z.string(),
    approximateArrivalOfFirstRecord: z.string(),
    approximateArrivalOfLastRecord: z.string(),
    batchSize: z.number().int(),
    streamArn: z.string(),
  }),
  records: z.array(DeadRecord).optional(),
});
export type MappingFailureLetter = z.infer<typeof MappingFailureLetter>;

/** Any message in the dead-letter store. */
export const DeadLetter = z.union([InvalidRecordLetter, MappingFailureLetter]);
export type DeadLetter = z.infer<typeof DeadLetter>;
