/**
 * The DynamoDB layout, shared by the CDK app and the local stack so both create the same tables.
 *
 * - items: one head row per item (`itemId`), the small, hot part of an item: status, attempt, the
 *   next seq expected, the unsealed tail of the text, usage, timestamps. GSI `byTenantStatus`
 *   (`tenantStatus` = `<tenant>#<status>#<bucket>`, `createdAt`) serves `GET /items?status=`
 *   for one tenant; see `TENANT_STATUS_BUCKETS` for why the key is spread.
 * - item-text (`itemId`, `key`): sealed text parts of long outputs (`part#<attempt>#<index>`) and
 *   chunk records held until a gap before them fills (`pending#<attempt>#<seq>`).
 * - connections (`pk`, `sk`): WebSocket connections and subscriptions. Sparse GSI `byExpiry`
 *   (`expiryBucket` = `exp#<epoch minute of the token's expiry>`, `pk`) over the connection rows
 *   only: what the expiry sweep queries to close connections whose token expired.
 * - coordination (`pk`): small rows every instance shares: per-model quota buckets and breakers
 *   (`quota#<modelId>`), the consumer's lag (`lag#consumer`).
 * TTL attribute on every table: `expiresAt` (epoch seconds).
 */
export interface TableSpec {
  readonly partitionKey: string;
  readonly sortKey?: string;
  readonly indexes?: ReadonlyArray<{
    readonly name: string;
    readonly partitionKey: string;
    readonly sortKey: string;
    /** Non-key attributes copied into the index (INCLUDE projection). */
    readonly projected: readonly string[];
  }>;
}

export const TTL_ATTRIBUTE = 'expiresAt';

export const ITEMS_BY_TENANT_STATUS_INDEX = 'byTenantStatus';

/** GSI (`status`, `createdAt`) over every tenant: what the stall sweeper scans by status. */
export const ITEMS_BY_STATUS_INDEX = 'byStatus';

/** The partition key attribute of `byTenantStatus`, written with every write that sets `status`. */
export const TENANT_STATUS_ATTRIBUTE = 'tenantStatus';

/**
 * What `GET /items` shows besides the keys. Only these are projected into `byTenantStatus`: a head write
 * that changes none of them (every batch that appends text) then costs no index write.
 */
export const ITEM_SUMMARY_ATTRIBUTES = [
  'status',
  'tenant',
  'attempt',
  'modelId',
  'metadata',
  'usage',
  'costUsd',
  'firstTokenAt',
  'completedAt',
  'error',
] as const;

/** Sparse GSI of the connections table: connection rows by the minute their token expires. */
export const CONNECTIONS_BY_EXPIRY_INDEX = 'byExpiry';

/** The partition key of `byExpiry`, written on connection rows only. */
export const EXPIRY_BUCKET_ATTRIBUTE = 'expiryBucket';

export const TABLES = {
  items: {
    partitionKey: 'itemId',
    indexes: [
      {
        name: ITEMS_BY_STATUS_INDEX,
        partitionKey: 'status',
        sortKey: 'createdAt',
        projected: ITEM_SUMMARY_ATTRIBUTES.filter((name) => name !== 'status'),
      },
      {
        name: ITEMS_BY_TENANT_STATUS_INDEX,
        partitionKey: TENANT_STATUS_ATTRIBUTE,
        sortKey: 'createdAt',
        projected: ITEM_SUMMARY_ATTRIBUTES,
      },
    ],
  },
  text: { partitionKey: 'itemId', sortKey: 'key' },
  connections: {
    partitionKey: 'pk',
    sortKey: 'sk',
    indexes: [
      {
        name: CONNECTIONS_BY_EXPIRY_INDEX,
        partitionKey: EXPIRY_BUCKET_ATTRIBUTE,
        sortKey: 'pk',
        projected: ['tokenExpiresAt'],
      },
    ],
  },
  coordination: { partitionKey: 'pk' },
} as const satisfies Record<'items' | 'text' | 'connections' | 'coordination', TableSpec>;
