import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ErrorCode } from '../../shared/contracts/websocket.js';
import { classifyAwsError } from '../../shared/errors.js';
import { type ItemTables, readItemHead } from '../../shared/items.js';
import { withRetry } from '../../shared/retry.js';
import { ALL_TENANTS, coversTenant, DEFAULT_TENANT } from '../../shared/tenancy.js';

/** Whether a cancel request was recorded, or why not (sent back as an `error` message). */
export type CancelOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly code: Extract<ErrorCode, 'not_found' | 'not_cancellable'>;
      readonly error: string;
    };

/** The condition on the item's tenant: none for `*`; rows from before tenancy are `default`'s. */
function tenantCondition(tenant: string): { expression: string; values: Record<string, string> } {
  if (tenant === ALL_TENANTS) return { expression: '', values: {} };
  const legacy = tenant === DEFAULT_TENANT ? ' OR attribute_not_exists(#tenant)' : '';
  return { expression: ` AND (#tenant = :tenant${legacy})`, values: { ':tenant': tenant } };
}

/**
 * Marks an item of `tenant` (`*`: any) for cancellation: sets `cancelRequested` on its head, only
 * while it is `queued` or `streaming` and of that tenant — one conditional attribute update
 * (`version` is untouched because neither the status nor the text changes). The producer polls the
 * flag, stops the generation and ends it with an error record `cancelled`, which viewers receive
 * as `failed`. An item of another tenant is answered exactly like one that does not exist.
 */
export async function requestCancel(
  dynamo: DynamoDBDocumentClient,
  tables: ItemTables,
  itemId: string,
  tenant: string,
): Promise<CancelOutcome> {
  const scope = tenantCondition(tenant);
  try {
    await withRetry(
      () =>
        dynamo.send(
          new UpdateCommand({
            TableName: tables.items,
            Key: { itemId },
            UpdateExpression: 'SET cancelRequested = :yes',
            ConditionExpression: `attribute_exists(itemId) AND #status IN (:queued, :streaming)${scope.expression}`,
            ExpressionAttributeNames: {
              '#status': 'status',
              ...(scope.expression ? { '#tenant': 'tenant' } : {}),
            },
            ExpressionAttributeValues: {
              ':yes': true,
              ':queued': 'queued',
              ':streaming': 'streaming',
              ...scope.values,
            },
          }),
        ),
      { what: `cancel ${itemId}` },
    );
    return { ok: true };
  } catch (err) {
    if (classifyAwsError(err) !== 'conditional') throw err;
    // Only to say why: the write above is the whole authorization.
    const head = await readItemHead(dynamo, tables, itemId);
    if (!head || !coversTenant({ tenant }, head.tenant))
      return { ok: false, code: 'not_found', error: `cannot cancel ${itemId}: no such item` };
    return {
      ok: false,
      code: 'not_cancellable',
      error: `cannot cancel ${itemId}: it is ${head.status}; only a queued or streaming item can be cancelled`,
    };
  }
}
