import {
  BatchWriteCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { defaultIfEmpty, from, lastValueFrom, mergeMap } from 'rxjs';
import { z } from 'zod';
import { classifyAwsError, ThrottledError } from '../../shared/errors.js';
import { queryPages } from '../../shared/query-pages.js';
import { withRetry } from '../../shared/retry.js';
import { CONNECTIONS_BY_EXPIRY_INDEX, EXPIRY_BUCKET_ATTRIBUTE, TTL_ATTRIBUTE } from '../../shared/tables.js';
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
  /** The row's TTL passed (its token expired, or the connection outlived its TTL): close it, send nothing. */
  readonly expired: boolean;
}

/** What removing a connection did. */
export interface Removal {
  readonly removed: number;
  /** Rows not deleted because the deadline came first. */
  readonly left: number;
}

/** A client message let through the connection's rate limit, or not. */
export interface Admission {
  readonly connection: StoredConnection;
  /** Messages of the connection in the current window, this one included. */
  readonly count: number;
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

/** Where to look for connections whose token expired. */
export interface ExpiredQuery {
  /** Epoch seconds: connections whose token expired at or before this. */
  readonly nowSeconds: number;
  /** How many minutes of expiry buckets before `nowSeconds` are queried (older ones are left). */
  readonly lookbackMinutes: number;
  /** At most this many connection ids are returned (oldest buckets first). */
  readonly limit: number;
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
  /**
   * Counts a client message in the connection's current window (one conditional update of its row,
   * two at a window's start) and returns the connection; undefined when unknown or expired.
   */
  admitMessage(connectionId: string, windowSeconds: number): Promise<Admission | undefined>;
  /**
   * Connections whose token expired (one Query of the sparse `byExpiry` index per minute bucket,
   * oldest first, never a Scan), without the not-expired rest of the current minute.
   */
  expiredConnections(query: ExpiredQuery): Promise<string[]>;
  /** Live connections of a token subject (one Query of its index rows). */
  connectionsOf(subject: string): Promise<number>;
  /** What a connection watches: `sub#` sort keys of its live rows. */
  subscriptionsHeld(connectionId: string): Promise<Set<string>>;
  /** Adds a subscription (idempotent). When it resolves, fan-out queries see it. */
  subscribe(connectionId: string, target: SubscriptionTarget, options?: SubscribeOptions): Promise<void>;
  /** Removes a subscription (idempotent). */
  unsubscribe(connectionId: string, target: SubscriptionTarget): Promise<void>;
  /** Connection ids subscribed to `target`, whatever their tenant, by a strongly consistent key lookup. */
  subscribersOf(target: SubscriptionTarget): Promise<string[]>;
  /**
   * The subscriptions of `target` with their tenants (what the fan-out filters by), strongly
   * consistent; rows whose TTL passed are returned marked `expired`, so their connections can be closed.
   */
  subscriptionsOf(target: SubscriptionTarget): Promise<Subscription[]>;
  /** The every-item subscribers, and which of them take `batch` frames. */
  everyItemSubscribers(): Promise<Array<{ connectionId: string; batch: boolean }>>;
  /**
   * Deletes a connection and every subscription of it, `DELETE_CONCURRENCY` batches of 25 at a time.
   * With `deadlineMs` (epoch ms) no batch starts after it: what is left stays for TTL, a later 410
   * or another removal (the connection's own rows, deleted last, still lead to it).
   */
  removeConnection(connectionId: string, options?: { deadlineMs?: number }): Promise<Removal>;
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

/** The `byExpiry` partition of a token expiry (epoch seconds): its minute. */
export const expiryBucket = (epochSeconds: number) => `exp#${Math.floor(epochSeconds / 60)}`;

/** Key builders of the connections table. */
export const connectionKeys = {
  connection: (connectionId: string) => ({ pk: `conn#${connectionId}`, sk: 'connection' }),
  /** Index of a token subject's connections (for the per-subject limit). */
  ofSubject: (subject: string, connectionId: string) => ({ pk: `subject#${subject}`, sk: connectionId }),
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
  subject: z.string().optional(),
  [TTL_ATTRIBUTE]: z.number().optional(),
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
/** BatchWriteItem calls in flight while removing a connection's rows. */
const DELETE_CONCURRENCY = 8;
const RETRY = { maxAttempts: 5, baseDelayMs: 25, maxDelayMs: 500 } as const;

/** The connection and subscription store on DynamoDB. */
export function createConnectionStore(options: ConnectionStoreOptions): ConnectionStore {
  const { dynamo, table, ttlSeconds } = options;
  const now = options.now ?? Date.now;
  const nowSeconds = () => Math.floor(now() / 1000);
  /** A row lives `ttlSeconds` from its write, and never past `until` (its token's expiry). */
  const expiresAt = (until?: number) =>
    Math.min(nowSeconds() + ttlSeconds, until ?? Number.POSITIVE_INFINITY);

  /**
   * The rows of partition `pk`, strongly consistent (a subscription written before a head update must
   * be seen by the fan-out after it). `live`: without rows whose TTL passed, which DynamoDB may still
   * return; `marked`: all, with their TTL; `keys`: keys and the connection row's subject.
   */
  const queryKeys = async (
    pk: string,
    mode: 'live' | 'marked' | 'keys',
    sk?: { prefix: string },
  ): Promise<Array<z.infer<typeof Key>>> => {
    const keys: Array<z.infer<typeof Key>> = [];
    const live = mode === 'live';
    const pages = queryPages(
      dynamo,
      {
        TableName: table,
        KeyConditionExpression: sk ? 'pk = :pk AND begins_with(sk, :prefix)' : 'pk = :pk',
        ...(live ? { FilterExpression: 'attribute_not_exists(#ttl) OR #ttl > :now' } : {}),
        ...(mode === 'keys' ? {} : { ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE } }),
        ExpressionAttributeValues: {
          ':pk': pk,
          ...(live ? { ':now': nowSeconds() } : {}),
          ...(sk ? { ':prefix': sk.prefix } : {}),
        },
        ProjectionExpression: mode === 'keys' ? 'pk, sk, subject' : 'pk, sk, batchFrames, tenant, #ttl',
        ConsistentRead: true,
      },
      { what: `query ${table} ${pk}`, ...RETRY },
    );
    for await (const items of pages) for (const item of items) keys.push(Key.parse(item));
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

  const removeBatch = async (keys: ReadonlyArray<{ pk: string; sk: string }>) => {
    let pending = keys.map((Key) => ({ DeleteRequest: { Key } }));
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
  };

  /**
   * Deletes rows 25 at a time, `DELETE_CONCURRENCY` batches in flight (10,000 rows: 400 batches);
   * no batch starts after `deadlineMs`. Returns how many rows were left.
   */
  const removeAll = async (keys: ReadonlyArray<{ pk: string; sk: string }>, deadlineMs: number) => {
    const batches: Array<ReadonlyArray<{ pk: string; sk: string }>> = [];
    for (let i = 0; i < keys.length; i += BATCH_LIMIT) batches.push(keys.slice(i, i + BATCH_LIMIT));
    let left = 0;
    await lastValueFrom(
      from(batches).pipe(
        mergeMap(async (batch) => {
          if (now() >= deadlineMs) left += batch.length;
          else await removeBatch(batch);
        }, DELETE_CONCURRENCY),
        defaultIfEmpty(undefined),
      ),
    );
    return left;
  };

  /** Counts a message in the current window if it is the stored one; the row after, or why not. */
  const countInWindow = async (connectionId: string, window: number, fresh: boolean) => {
    try {
      const { Attributes } = await dynamo.send(
        new UpdateCommand({
          TableName: table,
          Key: connectionKeys.connection(connectionId),
          UpdateExpression: fresh ? 'SET msgWindow = :w, msgCount = :one' : 'ADD msgCount :one',
          ConditionExpression: fresh
            ? 'attribute_exists(pk) AND (attribute_not_exists(msgWindow) OR msgWindow < :w)'
            : 'msgWindow = :w',
          ExpressionAttributeValues: { ':w': window, ':one': 1 },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes;
    } catch (err) {
      if (classifyAwsError(err) === 'conditional') return 'conditional' as const;
      throw err;
    }
  };

  /** Connection ids of one expiry bucket whose token expired by `at` (epoch seconds), up to `limit`. */
  const queryExpiryBucket = async (bucket: string, at: number, limit: number): Promise<string[]> => {
    const ids: string[] = [];
    const pages = queryPages(
      dynamo,
      {
        TableName: table,
        IndexName: CONNECTIONS_BY_EXPIRY_INDEX,
        KeyConditionExpression: '#bucket = :bucket',
        FilterExpression: 'tokenExpiresAt <= :at',
        ExpressionAttributeNames: { '#bucket': EXPIRY_BUCKET_ATTRIBUTE },
        ExpressionAttributeValues: { ':bucket': bucket, ':at': at },
        ProjectionExpression: 'pk',
      },
      { what: `query ${table} ${CONNECTIONS_BY_EXPIRY_INDEX} ${bucket}`, ...RETRY },
    );
    for await (const items of pages) {
      for (const item of items) {
        const pk = z.object({ pk: z.string().startsWith('conn#') }).parse(item).pk;
        if (ids.length < limit) ids.push(pk.slice('conn#'.length));
      }
      if (ids.length >= limit) break;
    }
    return ids;
  };

  /** A connection row that parses and whose TTL has not passed. */
  const liveConnection = (item: Record<string, unknown> | undefined): StoredConnection | undefined => {
    const row = ConnectionRow.safeParse(item);
    if (!row.success) return undefined;
    const ttl = row.data[TTL_ATTRIBUTE];
    if (ttl !== undefined && ttl <= nowSeconds()) return undefined;
    const { connectionId, subject, tenant, scopes, tokenExpiresAt } = row.data;
    return { connectionId, subject, tenant, scopes, tokenExpiresAt };
  };

  return {
    async putConnection({ connectionId, subject, connectedAtMs, tenant, scopes, tokenExpiresAt }) {
      await put({
        ...connectionKeys.connection(connectionId),
        connectionId,
        subject,
        ...(tenant !== undefined ? { tenant } : {}),
        ...(scopes !== undefined ? { scopes: [...scopes] } : {}),
        // Only connection rows carry the bucket: the expiry index holds nothing else.
        ...(tokenExpiresAt !== undefined
          ? { tokenExpiresAt, [EXPIRY_BUCKET_ATTRIBUTE]: expiryBucket(tokenExpiresAt) }
          : {}),
        connectedAt: new Date(connectedAtMs).toISOString(),
        [TTL_ATTRIBUTE]: expiresAt(tokenExpiresAt),
      });
      // Found again through the connection row's subject when the connection is removed.
      await put({
        ...connectionKeys.ofSubject(subject, connectionId),
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
      return liveConnection(Item);
    },

    async admitMessage(connectionId, windowSeconds) {
      const window = Math.floor(nowSeconds() / windowSeconds);
      // Usually one write: count in the stored window; at a window's start, open it (a racing
      // message may open it first, then counting in it succeeds).
      for (const fresh of [false, true, false]) {
        const row = await withRetry(() => countInWindow(connectionId, window, fresh), {
          what: `count a message of ${connectionId}`,
          ...RETRY,
        });
        if (row === 'conditional') continue;
        const connection = liveConnection(row);
        return connection && { connection, count: Number(row?.msgCount ?? 1) };
      }
      return undefined;
    },

    async expiredConnections({ nowSeconds: at, lookbackMinutes, limit }) {
      const ids: string[] = [];
      const last = Math.floor(at / 60);
      for (let minute = last - lookbackMinutes; minute <= last && ids.length < limit; minute++) {
        const found = await queryExpiryBucket(`exp#${minute}`, at, limit - ids.length);
        ids.push(...found);
      }
      return ids;
    },

    async connectionsOf(subject) {
      return (await queryKeys(connectionKeys.ofSubject(subject, '').pk, 'live')).length;
    },

    async subscriptionsHeld(connectionId) {
      const rows = await queryKeys(connectionKeys.connection(connectionId).pk, 'live', { prefix: 'sub#' });
      return new Set(rows.map((row) => row.sk));
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
      const rows = await queryKeys(connectionKeys.subscriber(target, '').pk, 'live');
      return rows.map((row) => row.sk);
    },

    async subscriptionsOf(target) {
      const rows = await queryKeys(connectionKeys.subscriber(target, '').pk, 'marked');
      const nowS = nowSeconds();
      return rows.map((row) => ({
        connectionId: row.sk,
        batch: row.batchFrames === true,
        expired: row[TTL_ATTRIBUTE] !== undefined && row[TTL_ATTRIBUTE] <= nowS,
        ...(row.tenant !== undefined ? { tenant: row.tenant } : {}),
      }));
    },

    async everyItemSubscribers() {
      const rows = await queryKeys(connectionKeys.subscriber('all', '').pk, 'live');
      return rows.map((row) => ({ connectionId: row.sk, batch: row.batchFrames === true }));
    },

    async removeConnection(connectionId, { deadlineMs = Number.POSITIVE_INFINITY } = {}) {
      const own = await queryKeys(connectionKeys.connection(connectionId).pk, 'keys');
      const subscribers = own.flatMap((row) => {
        if (row.sk.startsWith('sub#'))
          return [{ pk: `subs#${row.sk.slice('sub#'.length)}`, sk: connectionId }];
        if (row.sk === 'connection' && row.subject)
          return [connectionKeys.ofSubject(row.subject, connectionId)];
        return [];
      });
      // Rows pointed to first: if this stops midway, the connection's rows still lead to the rest.
      const leftPointed = await removeAll(subscribers, deadlineMs);
      // The connection's own rows only once nothing they lead to is left.
      const ownKeys = own.map(({ pk, sk }) => ({ pk, sk }));
      const left = leftPointed > 0 ? leftPointed + own.length : await removeAll(ownKeys, deadlineMs);
      return { removed: subscribers.length + own.length - left, left };
    },
  };
}
