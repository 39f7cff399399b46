import { z } from 'zod';
import { ErrorInfo, Usage } from './chunk-record.js';
import { ItemId } from './work-item.js';

export const ItemStatus = z.enum(['queued', 'streaming', 'completed', 'failed']);
export type ItemStatus = z.infer<typeof ItemStatus>;

/**
 * Why a `queued` item has not started: model quota (Bedrock's quota, an open breaker, a throttling
 * storm) or pipeline capacity (the consumer side is behind). Waiting never fails an item or uses up
 * an attempt; only the configured maximum wait ends it, as `failed` with `quota_wait_exceeded`.
 */
export const Waiting = z.enum(['quota', 'capacity']);
export type Waiting = z.infer<typeof Waiting>;

/** An item as the HTTP query API and the CLI return it. Timestamps are ISO-8601. */
export const StoredItem = z.object({
  itemId: ItemId,
  status: ItemStatus,
  attempt: z.number().int().min(0),
  text: z.string(),
  modelId: z.string(),
  /** The item's tenant: only tokens of this tenant (or `*`) see it. */
  tenant: z.string(),
  metadata: z.record(z.string(), z.json()).nullable(),
  usage: Usage.nullable(),
  costUsd: z.number().nullable(),
  createdAt: z.string(),
  firstTokenAt: z.string().nullable(),
  completedAt: z.string().nullable(),
  error: ErrorInfo.nullable(),
  /** Present while a `queued` item waits for model quota or pipeline capacity. */
  waiting: Waiting.optional(),
});
export type StoredItem = z.infer<typeof StoredItem>;

/** An entry of `GET /items`: the item without its text. */
export const ItemSummary = StoredItem.omit({ text: true });
export type ItemSummary = z.infer<typeof ItemSummary>;

/** The body of `GET /items`. */
export const ItemList = z.object({ items: z.array(ItemSummary) });
export type ItemList = z.infer<typeof ItemList>;

/** `GET /items?limit=`: the default and the largest number of items one request returns. */
export const DEFAULT_LIST_LIMIT = 20;
export const MAX_LIST_LIMIT = 100;

/** The HTTP API's error body. */
export const ApiError = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
export type ApiError = z.infer<typeof ApiError>;
