import {
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
} from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { ThrottledError } from '../../shared/errors.js';
import { withRetry } from '../../shared/retry.js';
import { TTL_ATTRIBUTE } from '../../shared/tables.js';
import { Scope } from '../../shared/tenancy.js';

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

/** Who a connection speaks for: what `$connect` learned from its token. */
export interface ConnectionPrincipal {
  readonly subject: string;
  /** A tenant name, or `*`. */
  readonly tenant: string;
  readonly scopes: readonly Scope[];
  /** The token's `exp`, epoch seconds: the connection's rows expire then at the latest. */
  readonly tokenExpiresAt: number;
}

/** A stored connection. */
export interface StoredConnection extends ConnectionPrincipal {
  readonly connectionId: string;
}

/** One subscription row of a target: who watches it, for which tenant (`*`: every tenant). */
export interface Subscription {
  readonly connectionId: string;
  /** Absent on rows written before tenancy: such a row receives nothing. */
  readonly tenant?: string;
  /** Every-item subscriptions only: the connection takes `batch` frames. */
  readonly batch: boolean;
}

/** How a subscription is written. */
export interface SubscribeOptions {
  /** The subscriber's tenant (`*` for every tenant): fan-out delivers only items it covers. */
  readonly tenant?: string;
  /** Every-item subscriptions only: the connection takes `batch` frames. */
  readonly batch?: boolean;
  /** Epoch seconds after which the rows are dead (the token's expiry), if before their TTL. */
  readonly until?: number;
}

/** Connections and subscriptions, as the routes and the fan-out use them. */
export interface ConnectionStore {
  /** Records a new connection (with the principal of its token, when it has one). */
  putConnection(
    connection: {
      connectionId: string;
      subject: string;
      connectedAtMs: number;
    } & Partial<ConnectionPrincipal>,
  ): Promise<void>;
  /** The stored connection, by a strongly consistent read; undefined when unknown or expired. */
  getConnection(connectionId: string): Promise<StoredConnection | undefined>;
  /** Adds a subscription (idempotent). When it resolves, fan-out queries see it. */
  subscribe(connectionId: string, target: SubscriptionTarget, options?: SubscribeOptions): Promise<void>;
  /** Removes a subscription (idempotent). */
  unsubscribe(connectionId: string, target: SubscriptionTarget): Promise<void>;
  /** Connection ids subscribed to `target`, whatever their tenant, by a strongly consistent key lookup. */
  subscribersOf(target: SubscriptionTarget): Promise<string[]>;
  /** The subscriptions of `target` with their tenants (what the fan-out filters by), strongly consistent. */
  subscriptionsOf(target: SubscriptionTarget): Promise<Subscription[]>;
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

const Key = z.object({
  pk: z.string(),
  sk: z.string(),
  batchFrames: z.boolean().optional(),
  tenant: z.string().optional(),
});
const ConnectionRow = z.object({
  connectionId: z.string(),
  subject: z.string(),
  tenant: z.string(),
  scopes: z.array(Scope),
  tokenExpiresAt: z.number(),
  [TTL_ATTRIBUTE]: z.number().optional(),
});
const BATCH_LIMIT = 25;
const RETRY = { maxAttempts: 5, baseDelayMs: 25, maxDelayMs: 500 } as const;

/** The connection and subscription store on DynamoDB. */
export function createConnectionStore(options: ConnectionStoreOptions): ConnectionStore {
  const { dynamo, table, ttlSeconds } = options;
  const now = options.now ?? Date.now;
  const nowSeconds = () => Math.floor(now() / 1000);
  /** A row lives `ttlSeconds` from its write, and never past `until` (its token's expiry). */
  const expiresAt = (until?: number) =>
    Math.min(nowSeconds() + ttlSeconds, until ?? Number.POSITIVE_INFINITY);

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
              ProjectionExpression: live ? 'pk, sk, batchFrames, tenant, #ttl' : 'pk, sk',
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
    async putConnection({ connectionId, subject, connectedAtMs, tenant, scopes, tokenExpiresAt }) {
      await put({
        ...connectionKeys.connection(connectionId),
        connectionId,
        subject,
        ...(tenant !== undefined ? { tenant } : {}),
        ...(scopes !== undefined ? { scopes: [...scopes] } : {}),
        ...(tokenExpiresAt !== undefined ? { tokenExpiresAt } : {}),
        connectedAt: new Date(connectedAtMs).toISOString(),
        [TTL_ATTRIBUTE]: expiresAt(tokenExpiresAt),
      });
    },

    async getConnection(connectionId) {
      const { Item } = await withRetry(
        () =>
          dynamo.send(
            new GetCommand({
              TableName: table,
              Key: connectionKeys.connection(connectionId),
              ConsistentRead: true,
            }),
          ),
        { what: `get ${table} conn#${connectionId}`, ...RETRY },
      );
      const row = ConnectionRow.safeParse(Item);
      if (!row.success) return undefined;
      const ttl = row.data[TTL_ATTRIBUTE];
      if (ttl !== undefined && ttl <= nowSeconds()) return undefined;
      const { connectionId: id, subject, tenant, scopes, tokenExpiresAt } = row.data;
      return { connectionId: id, subject, tenant, scopes, tokenExpiresAt };
    },

    async subscribe(connectionId, target, options = {}) {
      const ttl = expiresAt(options.until);
      // The connection's own row first: whatever `$disconnect` or a 410 finds, it can delete.
      await put({ ...connectionKeys.watches(connectionId, target), [TTL_ATTRIBUTE]: ttl });
      await put({
        ...connectionKeys.subscriber(target, connectionId),
        subscribedAt: new Date(now()).toISOString(),
        ...(options.tenant !== undefined ? { tenant: options.tenant } : {}),
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

    async subscriptionsOf(target) {
      const rows = await queryKeys(connectionKeys.subscriber(target, '').pk, true);
      return rows.map((row) => ({
        connectionId: row.sk,
        batch: row.batchFrames === true,
        ...(row.tenant !== undefined ? { tenant: row.tenant } : {}),
      }));
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
