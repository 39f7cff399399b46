import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { classifyAwsError } from '../../shared/errors.js';
import { type ItemTables, readItemHead } from '../../shared/items.js';
import { withRetry } from '../../shared/retry.js';

/** Whether a cancel request was recorded, or why not (sent back as an `error` message). */
export type CancelOutcome = { readonly ok: true } | { readonly ok: false; readonly error: string };

/**
 * Marks an item for cancellation: sets `cancelRequested` on its head, only while it is `queued`
 * or `streaming` (one conditional write; `version` is untouched because neither the status nor
 * the text changes). The producer polls the flag, stops the generation and ends it with an error
 * record `cancelled`, which viewers receive as `failed`.
 */
export async function requestCancel(
  dynamo: DynamoDBDocumentClient,
  tables: ItemTables,
  itemId: string,
): Promise<CancelOutcome> {
  try {
    await withRetry(
      () =>
        dynamo.send(
          new UpdateCommand({
            TableName: tables.items,
            Key: { itemId },
            UpdateExpression: 'SET cancelRequested = :yes',
            ConditionExpression: 'attribute_exists(itemId) AND #status IN (:queued, :streaming)',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':yes': true, ':queued': 'queued', ':streaming': 'streaming' },
          }),
        ),
      { what: `cancel ${itemId}` },
    );
    return { ok: true };
  } catch (err) {
    if (classifyAwsError(err) !== 'conditional') throw err;
    const head = await readItemHead(dynamo, tables, itemId);
    if (!head) return { ok: false, error: `cannot cancel ${itemId}: no such item` };
    return {
      ok: false,
      error: `cannot cancel ${itemId}: it is ${head.status}; only a queued or streaming item can be cancelled`,
    };
  }
}
