import {
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { ThrottledError } from '../../shared/errors.js';
import { withRetry } from '../../shared/retry.js';
import { TTL_ATTRIBUTE } from '../../shared/tables.js';

/**
 * WebSocket connections and their subscriptions in the connections table (`pk`, `sk`).
 *
 * | row | pk | sk |
 * |---|---|---|
 * | a connection | `conn#<connectionId>` | `connection` |
 * | what a connection watches | `conn#<connectionId>` | `sub#<itemId>` or `sub#*` |
 * | who watches an item | `subs#<itemId>` | `<connectionId>` |
 * | who watches every item | `subs#*` | `<connectionId>` |
 *
 * An item's subscribers are one Query on `subs#<itemId>` (never a Scan); a connection's rows are
 * one Query on `conn#<connectionId>`, which is how `$disconnect` and a 410 find what to delete.
 * `*` is not an itemId character, so `subs#*` never collides with an item. Every row carries
 * `expiresAt` (epoch seconds): a connection API Gateway dropped without `$disconnect` and never
 * posted to again is removed by TTL.
 */

/** One item, or every item (dashboards). */
export type SubscriptionTarget = { readonly itemId: string } | 'all';

/** Connections and subscriptions, as the routes and the fan-out use them. */
export interface ConnectionStore {
  /** Records a new connection. */
  putConnection(connection: { connectionId: string; subject: string; connectedAtMs: number }): Promise<void>;
  /**
   * Adds a subscription (idempotent). When it resolves, fan-out queries see it. `batch` (every-item
   * subscriptions only): the connection takes `batch` frames.
   */
  subscribe(connectionId: string, target: SubscriptionTarget, options?: { batch?: boolean }): Promise<void>;
  /** Removes a subscription (idempotent). */
  unsubscribe(connectionId: string, target: SubscriptionTarget): Promise<void>;
  /** Connection ids subscribed to `target`, by a strongly consistent key lookup. */
  subscribersOf(target: SubscriptionTarget): Promise<string[]>;
  /** The every-item subscribers, and which of them take `batch` frames. */
  everyItemSubscribers(): Promise<Array<{ connectionId: string; batch: boolean }>>;
  /** Deletes a connection and every subscription of it; returns the number of rows deleted. */
  removeConnection(connectionId: string): Promise<number>;
}

/** Where the store keeps its rows and for how long. */
export interface ConnectionStoreOptions {
  readonly dynamo: DynamoDBDocumentClient;
  readonly table: string;
  /** Lifetime of a row from its last write. */
  readonly ttlSeconds: number;
  readonly now?: () => number;
}

const ALL = '*';
const targetKey = (target: SubscriptionTarget) => (target === 'all' ? ALL : target.itemId);

/** Key builders of the connections table. */
export const connectionKeys = {
  connection: (connectionId: string) => ({ pk: `conn#${connectionId}`, sk: 'connection' }),
  watches: (connectionId: string, target: SubscriptionTarget) => ({
    pk: `conn#${connectionId}`,
    sk: `sub#${targetKey(target)}`,
  }),
  subscriber: (target: SubscriptionTarget, connectionId: string) => ({
    pk: `subs#${targetKey(target)}`,
    sk: connectionId,
  }),
};

const Key = z.object({ pk: z.string(), sk: z.string(), batchFrames: z.boolean().optional() });
const BATCH_LIMIT = 25;
const RETRY = { maxAttempts: 5, baseDelayMs: 25, maxDelayMs: 500 } as const;

/** The connection and subscription store on DynamoDB. */
export function createConnectionStore(options: ConnectionStoreOptions): ConnectionStore {
  const { dynamo, table, ttlSeconds } = options;
  const now = options.now ?? Date.now;
  const expiresAt = () => Math.floor(now() / 1000) + ttlSeconds;

  const queryKeys = async (pk: string, live: boolean): Promise<Array<z.infer<typeof Key>>> => {
    const keys: Array<z.infer<typeof Key>> = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await withRetry(
        () =>
          dynamo.send(
            new QueryCommand({
              TableName: table,
              KeyConditionExpression: 'pk = :pk',
              // DynamoDB may still return rows whose TTL passed but that it has not deleted yet.
              ...(live
                ? {
                    FilterExpression: 'attribute_not_exists(#ttl) OR #ttl > :now',
                    ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE },
                  }
                : {}),
              ExpressionAttributeValues: { ':pk': pk, ...(live ? { ':now': Math.floor(now() / 1000) } : {}) },
              ProjectionExpression: live ? 'pk, sk, batchFrames, #ttl' : 'pk, sk',
              // A subscription written before a head update must be seen by the fan-out after it.
              ConsistentRead: true,
              ExclusiveStartKey: startKey,
            }),
          ),
        { what: `query ${table} ${pk}`, ...RETRY },
      );
      for (const item of page.Items ?? []) keys.push(Key.parse(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return keys;
  };

  const put = (item: Record<string, unknown>) =>
    withRetry(() => dynamo.send(new PutCommand({ TableName: table, Item: item })), {
      what: `put ${table} ${String(item.pk)}`,
      ...RETRY,
    });
  const remove = (key: { pk: string; sk: string }) =>
    withRetry(() => dynamo.send(new DeleteCommand({ TableName: table, Key: key })), {
      what: `delete ${table} ${key.pk}`,
      ...RETRY,
    });

  const removeAll = async (keys: ReadonlyArray<{ pk: string; sk: string }>) => {
    for (let i = 0; i < keys.length; i += BATCH_LIMIT) {
      let pending = keys.slice(i, i + BATCH_LIMIT).map((Key) => ({ DeleteRequest: { Key } }));
      await withRetry(
        async () => {
          const { UnprocessedItems } = await dynamo.send(
            new BatchWriteCommand({ RequestItems: { [table]: pending } }),
          );
          const left = UnprocessedItems?.[table] ?? [];
          if (left.length > 0) {
            pending = left as typeof pending;
            throw new ThrottledError(`${left.length} of the deletes were left unprocessed`);
          }
        },
        { what: `delete ${keys.length} rows of ${table}`, ...RETRY },
      );
    }
  };

  return {
    async putConnection({ connectionId, subject, connectedAtMs }) {
      await put({
        ...connectionKeys.connection(connectionId),
        connectionId,
        subject,
        connectedAt: new Date(connectedAtMs).toISOString(),
        [TTL_ATTRIBUTE]: expiresAt(),
      });
    },

    async subscribe(connectionId, target, options = {}) {
      const ttl = expiresAt();
      // The connection's own row first: whatever `$disconnect` or a 410 finds, it can delete.
      await put({ ...connectionKeys.watches(connectionId, target), [TTL_ATTRIBUTE]: ttl });
      await put({
        ...connectionKeys.subscriber(target, connectionId),
        subscribedAt: new Date(now()).toISOString(),
        ...(target === 'all' && options.batch ? { batchFrames: true } : {}),
        [TTL_ATTRIBUTE]: ttl,
      });
    },

    async unsubscribe(connectionId, target) {
      await remove(connectionKeys.subscriber(target, connectionId));
      await remove(connectionKeys.watches(connectionId, target));
    },

    async subscribersOf(target) {
      const rows = await queryKeys(connectionKeys.subscriber(target, '').pk, true);
      return rows.map((row) => row.sk);
    },

    async everyItemSubscribers() {
      const rows = await queryKeys(connectionKeys.subscriber('all', '').pk, true);
      return rows.map((row) => ({ connectionId: row.sk, batch: row.batchFrames === true }));
    },

    async removeConnection(connectionId) {
      const own = await queryKeys(connectionKeys.connection(connectionId).pk, false);
      const subscribers = own.flatMap((row) =>
        row.sk.startsWith('sub#') ? [{ pk: `subs#${row.sk.slice('sub#'.length)}`, sk: connectionId }] : [],
      );
      // Subscriber rows first: if this stops midway, the connection's rows still lead to the rest.
      await removeAll(subscribers);
      await removeAll(own);
      return subscribers.length + own.length;
    },
  };
}
