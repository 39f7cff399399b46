/**
 * The DynamoDB layout, shared by the CDK app and the local stack so both create the same tables.
 *
 * - items: one head row per item (`itemId`), the small, hot part of an item: status, attempt, the
 *   next seq expected, the unsealed tail of the text, usage, timestamps. GSI `byTenantStatus`
 *   (`tenantStatus` = `<tenant>#<status>#<bucket>`, `createdAt`) serves `GET /items?status=`
 *   for one tenant; see `TENANT_STATUS_BUCKETS` for why the key is spread.
 * - item-text (`itemId`, `key`): sealed text parts of long outputs (`part#<attempt>#<index>`) and
 *   chunk records held until a gap before them fills (`pending#<attempt>#<seq>`).
 * - connections (`pk`, `sk`): WebSocket connections and subscriptions.
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
  connections: { partitionKey: 'pk', sortKey: 'sk' },
  coordination: { partitionKey: 'pk' },
} as const satisfies Record<'items' | 'text' | 'connections' | 'coordination', TableSpec>;
