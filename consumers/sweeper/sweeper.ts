/**
 * One sweep: finds items `queued` or `streaming` for longer than the stall limit (the `byStatus`
 * index, oldest first), re-reads each head strongly consistently, and marks those that made no
 * progress `failed` with code `stalled` and the reason, in one conditional write each. The claim
 * is marked `failed` too, so an upstream resend starts a new attempt (see producers' claims).
 */
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AwsClients } from '../../shared/aws-clients.js';
import type { Config } from '../../shared/config.js';
import type { ItemStatus } from '../../shared/contracts/stored-item.js';
import type { UpdatePublisher } from '../../shared/delivery.js';
import { classifyAwsError, describe } from '../../shared/errors.js';
import { ItemHead } from '../../shared/items.js';
import { withRetry } from '../../shared/retry.js';
import { ITEMS_BY_STATUS_INDEX } from '../../shared/tables.js';
import { type Logger, type Metrics, MetricUnit } from '../../shared/telemetry.js';
import { stallReason } from './core.js';

/** The error code of an item the sweeper failed. */
export const STALLED_CODE = 'stalled';
/** Default stall limit: 15 min without progress (the producer's lease is renewed every few seconds). */
export const DEFAULT_STALL_LIMIT_MS = 15 * 60 * 1000;
/** Candidates examined per status per sweep, oldest first; the next sweep takes the rest. */
const MAX_CANDIDATES = 500;

export interface SweeperDeps {
  readonly config: Config;
  readonly clients: Pick<AwsClients, 'dynamo'>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Tells viewers an item failed; none when omitted (viewers then learn it from a snapshot). */
  readonly publisher?: UpdatePublisher;
  /** Default `DEFAULT_STALL_LIMIT_MS`. */
  readonly stallLimitMs?: number;
  /** Epoch ms; default `Date.now`. */
  readonly now?: () => number;
}

/** What one sweep did. */
export interface SweepResult {
  readonly examined: number;
  readonly stalled: readonly string[];
}

/** Builds the sweep (the scheduled function's core, and the local stack's timer). */
export function createSweeper(deps: SweeperDeps): () => Promise<SweepResult> {
  const { config, logger, metrics } = deps;
  const dynamo = deps.clients.dynamo;
  const table = config.tables.items;
  const limitMs = deps.stallLimitMs ?? DEFAULT_STALL_LIMIT_MS;
  const now = deps.now ?? Date.now;

  const candidates = async (status: ItemStatus, cutoff: string): Promise<string[]> => {
    const page = await withRetry(
      () =>
        dynamo.send(
          new QueryCommand({
            TableName: table,
            IndexName: ITEMS_BY_STATUS_INDEX,
            KeyConditionExpression: '#status = :status AND #createdAt < :cutoff',
            ExpressionAttributeNames: { '#status': 'status', '#createdAt': 'createdAt', '#itemId': 'itemId' },
            ExpressionAttributeValues: { ':status': status, ':cutoff': cutoff },
            ProjectionExpression: '#itemId',
            Limit: MAX_CANDIDATES,
          }),
        ),
      { what: `query ${table} ${status} items` },
    );
    return (page.Items ?? []).map((item) => String(item.itemId));
  };

  /** Marks one item stalled; the item id when it was, undefined when it moved meanwhile. */
  const sweepItem = async (itemId: string): Promise<string | undefined> => {
    const { Item } = await withRetry(
      () => dynamo.send(new GetCommand({ TableName: table, Key: { itemId }, ConsistentRead: true })),
      { what: `read ${itemId}` },
    );
    if (!Item) return undefined;
    const head = ItemHead.parse(Item);
    const nowMs = now();
    const reason = stallReason(head, nowMs, limitMs);
    if (!reason) return undefined;
    const error = { code: STALLED_CODE, message: reason, retryable: true };
    const at = new Date(nowMs).toISOString();
    try {
      await withRetry(
        () =>
          dynamo.send(
            new UpdateCommand({
              TableName: table,
              Key: { itemId },
              UpdateExpression:
                'SET #status = :failed, #error = :error, claimState = :failed, completedAt = :at, progressAt = :at, #version = :next',
              // Only the head just read: a consumer or producer that moved it meanwhile wins.
              ConditionExpression: '#version = :read',
              ExpressionAttributeNames: { '#status': 'status', '#error': 'error', '#version': 'version' },
              ExpressionAttributeValues: {
                ':failed': 'failed',
                ':error': error,
                ':at': at,
                ':read': head.version,
                ':next': head.version + 1,
              },
            }),
          ),
        { what: `mark ${itemId} stalled` },
      );
    } catch (err) {
      if (classifyAwsError(err) === 'conditional') return undefined;
      throw err;
    }
    logger.warn('item stalled: marked failed', { itemId, reason });
    await deps.publisher?.publish([
      {
        itemId,
        tenant: head.tenant,
        attempt: head.attempt,
        reset: false,
        fromSeq: head.nextSeq,
        toSeq: head.nextSeq - 1,
        text: '',
        status: 'failed',
        error,
      },
    ]);
    return itemId;
  };

  return async () => {
    const cutoff = new Date(now() - limitMs).toISOString();
    const ids = [...(await candidates('queued', cutoff)), ...(await candidates('streaming', cutoff))];
    const stalled: string[] = [];
    for (const itemId of ids) {
      try {
        const marked = await sweepItem(itemId);
        if (marked) stalled.push(marked);
      } catch (err) {
        // The next sweep tries again.
        logger.error('could not sweep an item', { itemId, error: describe(err) });
      }
    }
    metrics.addMetric('ItemsStalled', MetricUnit.Count, stalled.length);
    metrics.publishStoredMetrics();
    return { examined: ids.length, stalled };
  };
}
