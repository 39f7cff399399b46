import { z } from 'zod';
import { ErrorInfo, Usage } from './chunk-record.js';
import { ItemStatus } from './stored-item.js';
import { ItemId } from './work-item.js';

/** API Gateway WebSocket limits: a larger frame closes the connection (1009). */
export const MAX_FRAME_BYTES = 32 * 1024;
export const MAX_MESSAGE_BYTES = 128 * 1024;

// ---- client → server ----
export const SubscribeMessage = z.union([
  z.object({
    action: z.literal('subscribe'),
    itemId: ItemId,
    attempt: z.number().int().min(0).optional(),
    seq: z.number().int().min(0).optional(),
  }),
  z.object({ action: z.literal('subscribe'), all: z.literal(true) }),
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
});
export const DeltaMessage = z.object({
  type: z.literal('delta'),
  itemId: ItemId,
  attempt: z.number().int().min(1),
  fromSeq: z.number().int().min(0),
  toSeq: z.number().int().min(0),
  text: z.string(),
});
export const ResetMessage = z.object({ type: z.literal('reset'), itemId: ItemId, attempt: z.number().int() });
export const DoneMessage = z.object({
  type: z.literal('done'),
  itemId: ItemId,
  attempt: z.number().int(),
  usage: Usage,
  costUsd: z.number().optional(),
});
export const FailedMessage = z.object({
  type: z.literal('failed'),
  itemId: ItemId,
  attempt: z.number().int(),
  error: ErrorInfo,
});
export const ErrorMessage = z.object({ type: z.literal('error'), message: z.string() });
export const ServerMessage = z.discriminatedUnion('type', [
  SnapshotMessage,
  DeltaMessage,
  ResetMessage,
  DoneMessage,
  FailedMessage,
  ErrorMessage,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type SnapshotMessage = z.infer<typeof SnapshotMessage>;
export type DeltaMessage = z.infer<typeof DeltaMessage>;
