import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { classifyAwsError } from './errors.js';
import { withRetry } from './retry.js';

/**
 * The consumer's lag, as producers read it to decide whether to admit new generations: one row in
 * the coordination table with one entry per chunk-stream shard, `{ lagMs, at }`, where `lagMs` is the
 * age of the oldest record of that shard's latest batch when the consumer took it.
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

/** The largest fresh lag over the chunk stream's shards, or undefined when no shard reported lately. */
export async function readConsumerLag(
  dynamo: DynamoDBDocumentClient,
  table: string,
  now: number,
): Promise<number | undefined> {
  const { Item } = await withRetry(
    () => dynamo.send(new GetCommand({ TableName: table, Key: { pk: CONSUMER_LAG_KEY } })),
    retry(`GetItem ${table}/${CONSUMER_LAG_KEY}`),
  );
  if (!Item) return undefined;
  const fresh = Object.values(LagRow.parse(Item).shards).filter((e) => now - e.at < LAG_FRESH_MS);
  return fresh.length ? Math.max(...fresh.map((e) => e.lagMs)) : undefined;
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

/**
 * Reports a consumer's lag from each batch it takes: the age of the batch's oldest record, per shard,
 * written at most once per `everyMs` per shard, in the background so the batch never waits for it. Failures are logged and dropped: lag is advisory.
 */
export function createLagReporter(options: {
  readonly dynamo: DynamoDBDocumentClient;
  readonly table: string;
  readonly everyMs: number;
  readonly now: () => number;
  readonly onError: (err: unknown) => void;
}): (batch: LagBatch) => void {
  const lastAt = new Map<string, number>();
  return (batch) => {
    const first = batch.Records[0];
    if (!first) return;
    const now = options.now();
    const shardId = first.eventID.split(':')[0] ?? 'unknown';
    if (now - (lastAt.get(shardId) ?? Number.NEGATIVE_INFINITY) < options.everyMs) return;
    lastAt.set(shardId, now);
    const oldest = Math.min(...batch.Records.map((r) => r.kinesis.approximateArrivalTimestamp * 1000));
    publishConsumerLag(options.dynamo, options.table, shardId, now - oldest, now).catch(options.onError);
  };
}
