import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { ItemStatus, ItemSummary } from '../../shared/contracts/stored-item.js';
import { ItemHead, toStoredItem } from '../../shared/items.js';
import { withRetry } from '../../shared/retry.js';
import { ITEM_SUMMARY_ATTRIBUTES, ITEMS_BY_STATUS_INDEX } from '../../shared/tables.js';

/** A `byStatus` row: the head without what the index does not project. */
const SummaryRow = ItemHead.omit({ version: true });

/** The keys of `byStatus` and what it projects: all a summary shows. */
const SUMMARY_ATTRIBUTES = ['itemId', 'status', 'createdAt', ...ITEM_SUMMARY_ATTRIBUTES];

/** Latest first: newest `createdAt`, then item id so that equal times have a stable order. */
const latestFirst = (a: ItemSummary, b: ItemSummary) =>
  a.createdAt === b.createdAt ? a.itemId.localeCompare(b.itemId) : a.createdAt < b.createdAt ? 1 : -1;

/**
 * The `limit` latest items of the given statuses, through the `byStatus` index (one Query per
 * status, newest first, merged). The index is eventually consistent: an item that just changed
 * status may show its previous one for a moment.
 */
export async function listItems(
  dynamo: DynamoDBDocumentClient,
  itemsTable: string,
  statuses: readonly ItemStatus[],
  limit: number,
): Promise<ItemSummary[]> {
  const names = Object.fromEntries(SUMMARY_ATTRIBUTES.map((name) => [`#${name}`, name]));
  const pages = await Promise.all(
    statuses.map((status) =>
      withRetry(
        () =>
          dynamo.send(
            new QueryCommand({
              TableName: itemsTable,
              IndexName: ITEMS_BY_STATUS_INDEX,
              KeyConditionExpression: '#status = :status',
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: { ':status': status },
              ProjectionExpression: Object.keys(names).join(', '),
              ScanIndexForward: false,
              Limit: limit,
            }),
          ),
        { what: `Query ${ITEMS_BY_STATUS_INDEX} of ${itemsTable}`, maxAttempts: 3 },
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
