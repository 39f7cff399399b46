import { GetCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { EndRecord, ErrorInfo, Usage } from './contracts/chunk-record.js';
import { ItemStatus, type StoredItem, Waiting } from './contracts/stored-item.js';
import { StreamsError } from './errors.js';
import { queryPages } from './query-pages.js';
import { withRetry } from './retry.js';
import { DEFAULT_TENANT } from './tenancy.js';

/**
 * The head row of an item in the items table. Written by two sides, each owning its fields:
 * - the producer: `claimedAttempt`, `claimState`, `claimedBy`, `leaseUntil`, `modelId`, `metadata`,
 *   `tenant`, `createdAt` (claim);
 * - the consumer: `attempt`, `nextSeq`, `text`, `parts`, `held`, `status` after the claim, `usage`,
 *   `costUsd`, `firstTokenAt`, `completedAt`, `error`;
 * - the delivery side: `cancelRequested`.
 * `version` is bumped by every write that changes `status` or the text, and every such write is
 * conditional on the version it read (optimistic concurrency).
 */
export const ItemHead = z.object({
  itemId: z.string(),
  status: ItemStatus,
  version: z.number().int().min(0),
  /** Highest attempt a producer has started. */
  claimedAttempt: z.number().int().min(0).default(0),
  /**
   * The producer's state of `claimedAttempt`: `running` while a producer holds it, `completed` once its
   * `end` record is on the chunk stream (no resend may start another generation), `failed` once its
   * final `error` record is (a resend may claim a new attempt). Null on rows written before claims had it.
   */
  claimState: z.enum(['running', 'ending', 'completed', 'failed']).nullable().default(null),
  /**
   * With `claimState: ending`: the `end` record the claimed attempt is putting. Every delta before it
   * is on the chunk stream, so a producer taking over a dead one's claim puts this record (again) and
   * finishes the claim instead of starting a second generation.
   */
  ending: EndRecord.optional(),
  /**
   * The input record (`eventID`: shard and sequence number) whose delivery claimed `claimedAttempt`.
   * A redelivery of that same record (a Lambda retry) never reclaims a failed item; a new record (an
   * upstream resend) may.
   */
  claimedBy: z.string().nullable().default(null),
  /** Epoch ms until which the claiming producer holds the generation; a stale lease may be taken over. */
  leaseUntil: z.number().optional(),
  /** Attempt whose text is stored (0 before the first chunk). */
  attempt: z.number().int().min(0).default(0),
  /** Next seq expected for `attempt`. */
  nextSeq: z.number().int().min(0).default(0),
  /** The unsealed tail of the text; sealed parts live in the text table. */
  text: z.string().default(''),
  /** Sealed parts of `attempt` in the text table. */
  parts: z.number().int().min(0).default(0),
  /**
   * Chunk records of `attempt` held in the text table (`pending#` rows) because they arrived ahead
   * of a gap. 0 means the consumer need not read them.
   */
  held: z.number().int().min(0).default(0),
  modelId: z.string(),
  /** Set when the item is created and never changed; rows from before tenancy are `default`'s. */
  tenant: z.string().default(DEFAULT_TENANT),
  metadata: z.record(z.string(), z.json()).nullable().default(null),
  usage: Usage.nullable().default(null),
  costUsd: z.number().nullable().default(null),
  createdAt: z.string(),
  firstTokenAt: z.string().nullable().default(null),
  completedAt: z.string().nullable().default(null),
  error: ErrorInfo.nullable().default(null),
  cancelRequested: z.boolean().default(false),
  /** When the consumer last committed the head (ISO-8601): the stall sweeper's measure of progress. */
  progressAt: z.string().nullable().default(null),
  /**
   * Set by the producer while a claimed item waits for model quota or pipeline capacity; removed by
   * the consumer's first write of a chunk record. Only meaningful while `status` is `queued`.
   */
  waiting: Waiting.optional(),
  /** Epoch ms when the item first began to wait (kept across redeliveries, for the maximum wait). */
  waitingSince: z.number().optional(),
});
export type ItemHead = z.infer<typeof ItemHead>;

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** Sort keys of the text table. Zero-padded so that they sort numerically. */
export const textKeys = {
  part: (attempt: number, index: number) => `part#${pad(attempt, 4)}#${pad(index, 6)}`,
  partsOf: (attempt: number) => `part#${pad(attempt, 4)}#`,
  pending: (attempt: number, seq: number) => `pending#${pad(attempt, 4)}#${pad(seq, 9)}`,
  pendingOf: (attempt: number) => `pending#${pad(attempt, 4)}#`,
};

export interface ItemTables {
  readonly items: string;
  readonly text: string;
}

/** Reads an item's head row (strongly consistent), or undefined when there is none. */
export async function readItemHead(
  dynamo: DynamoDBDocumentClient,
  tables: ItemTables,
  itemId: string,
): Promise<ItemHead | undefined> {
  const { Item } = await withRetry(
    () => dynamo.send(new GetCommand({ TableName: tables.items, Key: { itemId }, ConsistentRead: true })),
    { what: `GetItem ${tables.items}/${itemId}`, maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 1_000 },
  );
  return Item ? ItemHead.parse(Item) : undefined;
}

/** Reads the sealed parts of `head`'s attempt, in order, and joins them with its tail. */
export async function readFullText(
  dynamo: DynamoDBDocumentClient,
  tables: ItemTables,
  head: ItemHead,
): Promise<string> {
  if (head.parts === 0) return head.text;
  const texts: string[] = [];
  const pages = queryPages(
    dynamo,
    {
      TableName: tables.text,
      KeyConditionExpression: 'itemId = :id AND begins_with(#key, :prefix)',
      ExpressionAttributeNames: { '#key': 'key' },
      ExpressionAttributeValues: { ':id': head.itemId, ':prefix': textKeys.partsOf(head.attempt) },
      ConsistentRead: true,
    },
    { what: `Query ${tables.text}/${head.itemId}`, maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 1_000 },
  );
  for await (const items of pages) {
    for (const row of items) texts.push(z.object({ text: z.string() }).parse(row).text);
    if (texts.length >= head.parts) break;
  }
  if (texts.length < head.parts) {
    // A read that raced a new attempt (whose writer deletes the old attempt's parts) reads a
    // consistent item when it reads again: retryable.
    throw new StreamsError(
      'text_parts_missing',
      `item ${head.itemId}: head lists ${head.parts} text parts but ${texts.length} were found`,
      { retryable: true },
    );
  }
  return texts.slice(0, head.parts).join('') + head.text;
}

/** The public view of a head row and its full text. */
export function toStoredItem(head: Omit<ItemHead, 'version'>, text: string): StoredItem {
  return {
    itemId: head.itemId,
    status: head.status,
    attempt: head.attempt,
    text,
    modelId: head.modelId,
    tenant: head.tenant,
    metadata: head.metadata,
    usage: head.usage,
    costUsd: head.costUsd,
    createdAt: head.createdAt,
    firstTokenAt: head.firstTokenAt,
    completedAt: head.completedAt,
    error: head.error,
    ...(head.status === 'queued' && head.waiting ? { waiting: head.waiting } : {}),
  };
}

/** Reads a whole item as the query API returns it, or undefined when it does not exist. */
export async function readItem(
  dynamo: DynamoDBDocumentClient,
  tables: ItemTables,
  itemId: string,
): Promise<StoredItem | undefined> {
  const head = await readItemHead(dynamo, tables, itemId);
  return head ? toStoredItem(head, await readFullText(dynamo, tables, head)) : undefined;
}
