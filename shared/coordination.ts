import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { classifyAwsError } from './errors.js';
import { withRetry } from './retry.js';

/**
 * The consumer's lag, as producers read it to decide whether to admit new generations: one row in
 * the coordination table with one entry per chunk-stream shard, `{ lagMs, at }`, where `lagMs` is the
 * age of the oldest record of that shard's latest batch once the consumer had stored it and posted
 * it to viewers.
 */
export const CONSUMER_LAG_KEY = 'lag#consumer';

/** An entry older than this no longer speaks for its shard (the shard is idle or gone). */
export const LAG_FRESH_MS = 10_000;

const LagRow = z.object({
  shards: z.record(z.string(), z.object({ lagMs: z.number(), at: z.number() })).default({}),
});

const retry = (what: string) => ({ what, maxAttempts: 3, baseDelayMs: 25, maxDelayMs: 250 });

/** Writes one shard's lag (one `UpdateItem`; a second one only the first time, to create the map). */
export async function publishConsumerLag(
  dynamo: DynamoDBDocumentClient,
  table: string,
  shardId: string,
  lagMs: number,
  now: number,
): Promise<void> {
  const entry = { lagMs: Math.max(0, Math.round(lagMs)), at: now };
  const send = (command: UpdateCommand) =>
    withRetry(() => dynamo.send(command), retry(`UpdateItem ${table}/${CONSUMER_LAG_KEY}`));
  try {
    await send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: CONSUMER_LAG_KEY },
        UpdateExpression: 'SET shards.#shard = :entry',
        ConditionExpression: 'attribute_exists(shards)',
        ExpressionAttributeNames: { '#shard': shardId },
        ExpressionAttributeValues: { ':entry': entry },
      }),
    );
  } catch (err) {
    if (classifyAwsError(err) !== 'conditional') throw err;
    await send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: CONSUMER_LAG_KEY },
        UpdateExpression: 'SET shards = if_not_exists(shards, :shards)',
        ExpressionAttributeValues: { ':shards': { [shardId]: entry } },
      }),
    );
  }
}

/** One shard's latest lag report: the age of the oldest record of its latest batch, and when. */
export interface LagReport {
  readonly shardId: string;
  readonly lagMs: number;
  /** Epoch ms at which the consumer took that batch. */
  readonly at: number;
}

/** The chunk stream's shards' lag reports made within `LAG_FRESH_MS` (none when no shard reported lately). */
export async function readConsumerLag(
  dynamo: DynamoDBDocumentClient,
  table: string,
  now: number,
): Promise<readonly LagReport[]> {
  const { Item } = await withRetry(
    () => dynamo.send(new GetCommand({ TableName: table, Key: { pk: CONSUMER_LAG_KEY } })),
    retry(`GetItem ${table}/${CONSUMER_LAG_KEY}`),
  );
  if (!Item) return [];
  return Object.entries(LagRow.parse(Item).shards)
    .filter(([, e]) => now - e.at < LAG_FRESH_MS)
    .map(([shardId, e]) => ({ shardId, lagMs: e.lagMs, at: e.at }));
}

/** Calls `read` at most once per `everyMs` and otherwise answers from its last result. */
export function cachedEvery<T>(everyMs: number, now: () => number, read: () => Promise<T>): () => Promise<T> {
  let last: { at: number; value: Promise<T> } | undefined;
  return () => {
    const t = now();
    if (!last || t - last.at >= everyMs) {
      const value = read();
      last = { at: t, value };
      value.catch(() => {
        if (last?.value === value) last = undefined;
      });
    }
    return last.value;
  };
}

/** A batch of Kinesis records, as far as lag reporting reads it. */
export interface LagBatch {
  readonly Records: ReadonlyArray<{
    readonly eventID: string;
    readonly kinesis: { readonly approximateArrivalTimestamp: number };
  }>;
}

/** Reports the lag of one batch once the consumer has handled it. */
export type LagHandled = () => void;

/**
 * Remembers the records handed to one consumer (the latest `limit` of them) and tells of each new
 * batch the arrival of its oldest record (epoch ms); undefined for a batch holding any record handed
 * before. Such a batch is a retry after a failure, and its new records are the ones that queued
 * up behind the failed ones: their age, too, measures the fault. Records are told apart by event
 * id, not by order: with a parallelization factor above one, batches of one shard interleave.
 */
export function firstHandings(
  limit = 20_000,
): (batch: LagBatch) => { shardId: string; oldestMs: number } | undefined {
  const handed = new Set<string>();
  return (batch) => {
    const first = batch.Records[0];
    if (!first) return undefined;
    let oldestMs = Number.POSITIVE_INFINITY;
    let retried = false;
    for (const { eventID, kinesis } of batch.Records) {
      if (handed.has(eventID)) {
        retried = true;
        continue;
      }
      handed.add(eventID);
      oldestMs = Math.min(oldestMs, kinesis.approximateArrivalTimestamp * 1000);
    }
    // A Set iterates in insertion order: the first entries are the oldest.
    for (const eventID of handed) {
      if (handed.size <= limit) break;
      handed.delete(eventID);
    }
    const shardId = first.eventID.split(':')[0] ?? 'unknown';
    return retried ? undefined : { shardId, oldestMs };
  };
}

/**
 * Reports a consumer's lag from each batch it has handled: per shard, the age of the batch's oldest
 * record once the batch is stored and posted to viewers. Call it when a batch arrives and the
 * answer once the batch is handled.
 *
 * A batch retried after a failure reports nothing: the age of its records, the failed ones and
 * those that queued up behind them, says how long the fault lasted, not how far the consumer is
 * behind its load, and admission must not shrink for faults the producers cannot relieve.
 *
 * Written at most once per `everyMs` per shard (the largest lag since the last write), in the
 * background so the batch never waits for it. Failures are logged and dropped: lag is advisory.
 */
export function createLagReporter(options: {
  readonly dynamo: DynamoDBDocumentClient;
  readonly table: string;
  readonly everyMs: number;
  readonly now: () => number;
  readonly onError: (err: unknown) => void;
}): (batch: LagBatch) => LagHandled {
  /** Per shard: when its lag was last written, and the largest lag seen since. */
  const shards = new Map<string, { writtenAt: number; maxLagMs: number }>();
  const firstHanded = firstHandings();
  return (batch) => {
    const fresh = firstHanded(batch);
    return () => {
      if (!fresh) return;
      const now = options.now();
      let shard = shards.get(fresh.shardId);
      if (!shard) {
        shard = { writtenAt: Number.NEGATIVE_INFINITY, maxLagMs: 0 };
        shards.set(fresh.shardId, shard);
      }
      // Batches of one shard run side by side: the report holds the worst of them, not a sample.
      shard.maxLagMs = Math.max(shard.maxLagMs, now - fresh.oldestMs);
      if (now - shard.writtenAt < options.everyMs) return;
      const lagMs = shard.maxLagMs;
      shard.writtenAt = now;
      shard.maxLagMs = 0;
      publishConsumerLag(options.dynamo, options.table, fresh.shardId, lagMs, now).catch(options.onError);
    };
  };
}
