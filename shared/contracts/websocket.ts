import { z } from 'zod';
import { ErrorInfo, Usage } from './chunk-record.js';
import { ItemStatus, Waiting } from './stored-item.js';
import { ItemId } from './work-item.js';

/** API Gateway WebSocket limits: a larger frame closes the connection (1009). */
export const MAX_FRAME_BYTES = 32 * 1024;
export const MAX_MESSAGE_BYTES = 128 * 1024;
/**
 * Largest client message the routes accept. Every valid client message is a few hundred bytes;
 * a larger one (API Gateway passes up to 128 KB) is answered with an `error` and not parsed.
 */
export const MAX_CLIENT_MESSAGE_BYTES = 4 * 1024;

// ---- client → server ----
export const SubscribeMessage = z.union([
  z.object({
    action: z.literal('subscribe'),
    itemId: ItemId,
    attempt: z.number().int().min(0).optional(),
    seq: z.number().int().min(0).optional(),
    /**
     * Resume extension: the length of the text the client holds for `attempt`, in UTF-16 code
     * units (JavaScript string length). With `attempt` and `seq` it lets the server send only the
     * text after it (see `SnapshotMessage.offset`).
     */
    offset: z.number().int().min(0).optional(),
  }),
  z.object({
    action: z.literal('subscribe'),
    all: z.literal(true),
    /**
     * Dashboards: the messages of many items from one consumer batch arrive packed in `batch`
     * frames (`BatchMessage`), one delivery per batch instead of one per item.
     */
    batch: z.boolean().optional(),
  }),
]);
export const UnsubscribeMessage = z.union([
  z.object({ action: z.literal('unsubscribe'), itemId: ItemId }),
  z.object({ action: z.literal('unsubscribe'), all: z.literal(true) }),
]);
export const CancelMessage = z.object({ action: z.literal('cancel'), itemId: ItemId });
export const ClientMessage = z.union([SubscribeMessage, UnsubscribeMessage, CancelMessage]);
export type ClientMessage = z.infer<typeof ClientMessage>;

// ---- server → client ----
export const SnapshotMessage = z.object({
  type: z.literal('snapshot'),
  itemId: ItemId,
  attempt: z.number().int().min(0),
  /** The next seq the client needs after this snapshot. */
  seq: z.number().int().min(0),
  status: ItemStatus,
  text: z.string(),
  /** A snapshot larger than a frame is sent as several frames; all but the last have `more: true`. */
  more: z.boolean().optional(),
  /**
   * Present on a resumed snapshot: `text` is the item's text from this UTF-16 offset on; the client
   * keeps the first `offset` code units of the text it holds for `attempt` and appends `text`.
   * Absent: `text` is the whole text. Same on every frame of a split snapshot.
   */
  offset: z.number().int().min(0).optional(),
  /** On the last frame of the snapshot of a completed item. */
  usage: Usage.optional(),
  costUsd: z.number().optional(),
  /** On the last frame of the snapshot of a failed item. */
  error: ErrorInfo.optional(),
  /** On the snapshot of a `queued` item waiting for model quota or pipeline capacity. */
  waiting: Waiting.optional(),
});
export const DeltaMessage = z.object({
  type: z.literal('delta'),
  itemId: ItemId,
  attempt: z.number().int().min(1),
  fromSeq: z.number().int().min(0),
  toSeq: z.number().int().min(0),
  text: z.string(),
  /**
   * A delta larger than a frame is sent as several frames carrying the same `attempt`, `fromSeq`
   * and `toSeq`; all but the last have `more: true`. The client joins their texts and applies them
   * as one delta, so a partly received delta is never applied.
   */
  more: z.boolean().optional(),
});
export const ResetMessage = z.object({ type: z.literal('reset'), itemId: ItemId, attempt: z.number().int() });
/**
 * The seq a viewer holding all of an ended attempt's text expects next: every delta of the attempt
 * lies below it. A viewer whose next seq is lower missed the last deltas (a delivery given up, a
 * lookup that failed) and resubscribes rather than end the item with part of its text. Optional:
 * a server that does not send it gives no such check.
 */
const EndSeq = z.number().int().min(0).optional();
export const DoneMessage = z.object({
  type: z.literal('done'),
  itemId: ItemId,
  attempt: z.number().int(),
  usage: Usage,
  costUsd: z.number().optional(),
  seq: EndSeq,
});
export const FailedMessage = z.object({
  type: z.literal('failed'),
  itemId: ItemId,
  attempt: z.number().int(),
  error: ErrorInfo,
  seq: EndSeq,
});
/**
 * The codes of `error` messages. `not_found`: an item that does not exist or is another tenant's
 * (the two are indistinguishable). `invalid_message`: the client message was malformed.
 * `forbidden`: the token lacks the scope the action needs. `not_cancellable`: the item is no longer
 * running. `too_many_subscriptions`, `rate_limited`: a per-connection limit. `token_expired`: the
 * connection's token expired (the connection is closed). `unavailable`: try again.
 */
export const ERROR_CODES = [
  'not_found',
  'invalid_message',
  'forbidden',
  'not_cancellable',
  'too_many_subscriptions',
  'rate_limited',
  'token_expired',
  'unavailable',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];
export const ErrorMessage = z.object({
  type: z.literal('error'),
  /** One of `ERROR_CODES`; clients should treat a code they do not know as a failure of the request. */
  code: z.string().min(1),
  message: z.string(),
  /** The item the rejected message named, when it named a valid one (lets a client match the reply). */
  itemId: ItemId.optional(),
});
export const ServerMessage = z.discriminatedUnion('type', [
  SnapshotMessage,
  DeltaMessage,
  ResetMessage,
  DoneMessage,
  FailedMessage,
  ErrorMessage,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
/**
 * Several server messages in one frame, for connections subscribed with `"all": true, "batch":
 * true`: the messages of one consumer batch, in the order they would have been sent one by one.
 * A batch frame stays under 32 KB; a message too large to share a frame is sent unpacked.
 */
export const BatchMessage = z.object({ type: z.literal('batch'), messages: z.array(ServerMessage) });
/** A frame the server sends: one message, or a batch of them. */
export const ServerFrame = z.union([ServerMessage, BatchMessage]);
export type BatchMessage = z.infer<typeof BatchMessage>;
export type ServerFrame = z.infer<typeof ServerFrame>;
export type SnapshotMessage = z.infer<typeof SnapshotMessage>;
export type DeltaMessage = z.infer<typeof DeltaMessage>;
export type ResetMessage = z.infer<typeof ResetMessage>;
export type DoneMessage = z.infer<typeof DoneMessage>;
export type FailedMessage = z.infer<typeof FailedMessage>;
export type ErrorMessage = z.infer<typeof ErrorMessage>;
