import { z } from 'zod';
import { Traceparent } from './traceparent.js';
import { ItemId } from './work-item.js';

/** Token usage and latency of one attempt, from `amazon-bedrock-invocationMetrics`. */
export const Usage = z.object({
  inputTokens: z.number().int().nonnegative(),
  outputTokens: z.number().int().nonnegative(),
  /** Time from the request to the model's first byte, as Bedrock measured it. */
  firstByteLatencyMs: z.number().nonnegative().optional(),
  /** Whole invocation, as Bedrock measured it. */
  invocationLatencyMs: z.number().nonnegative().optional(),
});
export type Usage = z.infer<typeof Usage>;

/** A failure as stored and shown to viewers. */
export const ErrorInfo = z.object({
  code: z.string().min(1),
  message: z.string(),
  retryable: z.boolean(),
});
export type ErrorInfo = z.infer<typeof ErrorInfo>;

const Base = {
  v: z.literal(1),
  itemId: ItemId,
  /** 1 for the first generation of an item; a higher attempt supersedes every lower one. */
  attempt: z.number().int().min(1),
  /** Dense from 0 within an attempt. */
  seq: z.number().int().min(0),
  /** Epoch ms at which the producer emitted the record (latency measurement only). */
  emittedAt: z.number().optional(),
  /** The work item's `traceparent`, on every record of the item when the work item had one. */
  traceparent: Traceparent.optional(),
};

export const DeltaRecord = z.object({ ...Base, type: z.literal('delta'), text: z.string().min(1) });
export const EndRecord = z.object({
  ...Base,
  type: z.literal('end'),
  usage: Usage,
  /** Estimated cost of the attempt from the configured price table; absent for an unpriced model. */
  costUsd: z.number().nonnegative().optional(),
  stopReason: z.string().optional(),
});
export const ErrorRecord = z.object({
  ...Base,
  type: z.literal('error'),
  error: ErrorInfo,
  /** True when the producer will not start another attempt: the item is failed. */
  final: z.boolean(),
  usage: Usage.optional(),
});

/** A record on the chunk stream (JSON, partition key = itemId). */
export const ChunkRecord = z.discriminatedUnion('type', [DeltaRecord, EndRecord, ErrorRecord]);
export type ChunkRecord = z.infer<typeof ChunkRecord>;
export type DeltaRecord = z.infer<typeof DeltaRecord>;
export type EndRecord = z.infer<typeof EndRecord>;
export type ErrorRecord = z.infer<typeof ErrorRecord>;

/**
 * Largest UTF-8 size of a delta's text. Keeps a record far below Kinesis' 1 MiB and lets one
 * record always fit in a 32 KB WebSocket frame with room for the envelope.
 */
export const MAX_DELTA_TEXT_BYTES = 16 * 1024;
