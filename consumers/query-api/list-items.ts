import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { ItemStatus, ItemSummary } from '../../shared/contracts/stored-item.js';
import { ItemHead, toStoredItem } from '../../shared/items.js';
import { withRetry } from '../../shared/retry.js';
import {
  ITEM_SUMMARY_ATTRIBUTES,
  ITEMS_BY_TENANT_STATUS_INDEX,
  TENANT_STATUS_ATTRIBUTE,
} from '../../shared/tables.js';
import { TENANT_STATUS_BUCKETS, tenantStatusKeyOfBucket } from '../../shared/tenancy.js';

/** A `byTenantStatus` row: the head without what the index does not project. */
const SummaryRow = ItemHead.omit({ version: true });

/** The keys of `byTenantStatus` and what it projects: all a summary shows. */
const SUMMARY_ATTRIBUTES = ['itemId', 'createdAt', ...ITEM_SUMMARY_ATTRIBUTES];

/** Latest first: newest `createdAt`, then item id so that equal times have a stable order. */
const latestFirst = (a: ItemSummary, b: ItemSummary) =>
  a.createdAt === b.createdAt ? a.itemId.localeCompare(b.itemId) : a.createdAt < b.createdAt ? 1 : -1;

/**
 * The `limit` latest items of one tenant in the given statuses, through the `byTenantStatus` index:
 * one Query per status and bucket, all in parallel, each newest first and at most `limit` long, then
 * merged by time. The index is eventually consistent: an item that just changed status may show its
 * previous one for a moment.
 */
export async function listItems(
  dynamo: DynamoDBDocumentClient,
  itemsTable: string,
  tenant: string,
  statuses: readonly ItemStatus[],
  limit: number,
): Promise<ItemSummary[]> {
  const names = Object.fromEntries(SUMMARY_ATTRIBUTES.map((name) => [`#${name}`, name]));
  const keys = statuses.flatMap((status) =>
    Array.from({ length: TENANT_STATUS_BUCKETS }, (_, bucket) =>
      tenantStatusKeyOfBucket(tenant, status, bucket),
    ),
  );
  const pages = await Promise.all(
    keys.map((key) =>
      withRetry(
        () =>
          dynamo.send(
            new QueryCommand({
              TableName: itemsTable,
              IndexName: ITEMS_BY_TENANT_STATUS_INDEX,
              KeyConditionExpression: '#key = :key',
              ExpressionAttributeNames: { ...names, '#key': TENANT_STATUS_ATTRIBUTE },
              ExpressionAttributeValues: { ':key': key },
              ProjectionExpression: Object.keys(names).join(', '),
              ScanIndexForward: false,
              Limit: limit,
            }),
          ),
        { what: `Query ${ITEMS_BY_TENANT_STATUS_INDEX} of ${itemsTable}`, maxAttempts: 3 },
      ),
    ),
  );
  return pages
    .flatMap((page) => page.Items ?? [])
    .map((row) => {
      const { text: _text, ...summary } = toStoredItem(SummaryRow.parse(row), '');
      return summary;
    })
    .sort(latestFirst)
    .slice(0, limit);
}
