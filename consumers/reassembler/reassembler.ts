/**
 * One chunk-stream batch, end to end: decode, group by item, read the heads, fold each item's
 * records into its head, write each changed item with one conditional update, hand the applied
 * updates to live delivery, and report only the records to redeliver.
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import type { AwsClients } from '../../shared/aws-clients.js';
import type { Config } from '../../shared/config.js';
import type { ChunkRecord } from '../../shared/contracts/chunk-record.js';
import { createLagReporter } from '../../shared/coordination.js';
import { type DeadLetterSink, invalidRecordLetter } from '../../shared/dead-letters.js';
import type { ItemUpdate, UpdatePublisher } from '../../shared/delivery.js';
import { describe } from '../../shared/errors.js';
import type { ItemHead } from '../../shared/items.js';
import { backoffDelayMs, DEFAULT_BACKOFF, sleep } from '../../shared/retry.js';
import { itemKeys, type Logger, type Metrics, MetricUnit } from '../../shared/telemetry.js';
import { DEFAULT_TENANT } from '../../shared/tenancy.js';
import { DEFAULT_SEAL_BYTES, emptyState, type FoldCounts, planItem, stateOfHead } from './core.js';
import { decodeChunkRecord } from './records.js';
import { createItemStore, type StoreMeter } from './store.js';

/** Rounds of read–fold–write for one item before its records are handed back for redelivery. */
export const MAX_WRITE_ROUNDS = 4;
/** Items written at the same time within one batch. */
export const DEFAULT_ITEM_CONCURRENCY = 8;

export interface ReassemblerDeps {
  readonly config: Config;
  readonly clients: Pick<AwsClients, 'dynamo'>;
  readonly deadLetters: DeadLetterSink;
  readonly publisher: UpdatePublisher;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Tail size at which text is sealed into a part row; default `DEFAULT_SEAL_BYTES`. */
  readonly sealBytes?: number;
  /** Items written concurrently within a batch; default `DEFAULT_ITEM_CONCURRENCY`. */
  readonly itemConcurrency?: number;
  /** Counts the DynamoDB calls made; none when omitted. */
  readonly meter?: StoreMeter;
  /** Epoch ms; default `Date.now`. */
  readonly now?: () => number;
  /**
   * Fault injection (tests, chaos): runs after the batch's writes and before anything is published.
   * A throw there fails the invocation exactly as a crash between commit and publish would.
   */
  readonly afterCommit?: (updates: readonly ItemUpdate[]) => void | Promise<void>;
}

interface ItemBatch {
  readonly itemId: string;
  /** Sequence number of the item's first record in the batch: where redelivery must start. */
  readonly firstSequenceNumber: string;
  readonly records: ChunkRecord[];
  /** The `traceparent` the item's records carry, if any (for log lines and delivery). */
  traceparent?: string;
}

type ItemOutcome =
  | {
      readonly ok: true;
      readonly update: ItemUpdate | undefined;
      readonly counts?: FoldCounts;
      readonly conflicts: number;
    }
  | { readonly ok: false; readonly reason: string; readonly conflicts: number };

/** Builds the chunk-stream consumer (Lambda Kinesis handler with `ReportBatchItemFailures`). */
export function createReassemblerHandler(
  deps: ReassemblerDeps,
): (event: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse> {
  const { config, deadLetters, publisher, logger, metrics } = deps;
  const sealBytes = deps.sealBytes ?? DEFAULT_SEAL_BYTES;
  if (!Number.isInteger(sealBytes) || sealBytes < 1) {
    throw new RangeError(`sealBytes must be a positive integer, got ${sealBytes}`);
  }
  const concurrency = deps.itemConcurrency ?? DEFAULT_ITEM_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`itemConcurrency must be a positive integer, got ${concurrency}`);
  }
  const now = deps.now ?? Date.now;
  const store = createItemStore({ dynamo: deps.clients.dynamo, tables: config.tables, meter: deps.meter });
  // Producers admit new generations only while this lag stays under their target.
  const reportLag = createLagReporter({
    dynamo: deps.clients.dynamo,
    table: config.tables.coordination,
    everyMs: 500,
    now,
    onError: (err) => logger.warn('could not publish the consumer lag', { error: err }),
  });

  /** Read–fold–write, repeated on a conflicting write with a fresh strongly consistent read. */
  async function applyItem(
    batch: ItemBatch,
    firstRead: ItemHead | undefined,
    fresh: boolean,
  ): Promise<ItemOutcome> {
    let head = firstRead;
    let conflicts = 0;
    for (let round = 1; round <= MAX_WRITE_ROUNDS; round++) {
      if (round > 1 || !fresh) head = await store.readHead(batch.itemId);
      const held = head && head.held > 0 ? await store.readHeld(batch.itemId) : [];
      const nowMs = now();
      const nowIso = new Date(nowMs).toISOString();
      const plan = planItem(batch.itemId, head ? stateOfHead(head) : emptyState(), held, batch.records, {
        now: nowIso,
        sealBytes,
      });
      if (plan.changed) {
        // Parts and held records first: their content is fixed by the records alone, so a writer
        // that loses the race below has written exactly what the winner did.
        await store.putTextRows(batch.itemId, plan.partsToWrite, plan.holdsToWrite, nowMs);
        const expected = head ? { version: head.version, tenant: head.tenant } : ('absent' as const);
        if ((await store.commitHead(batch.itemId, expected, plan.state, nowIso)) === 'conflict') {
          conflicts += 1;
          await sleep(backoffDelayMs(round, DEFAULT_BACKOFF));
          continue;
        }
      }
      if (plan.changed && head && head.attempt > 0 && plan.state.attempt > head.attempt) {
        // The new attempt's text replaced the old one's for good: its parts are garbage now.
        await store.deleteSupersededParts(batch.itemId, plan.state.attempt).catch((err: unknown) => {
          logger.warn('could not delete the parts of a superseded attempt', {
            itemId: batch.itemId,
            error: describe(err),
          });
        });
      }
      if (plan.holdsToDelete.length > 0) {
        await store.deleteHeld(batch.itemId, plan.holdsToDelete).catch((err: unknown) => {
          // Unneeded rows are ignored as duplicates when read and expire by TTL.
          logger.warn('could not delete released held records', {
            itemId: batch.itemId,
            error: describe(err),
          });
        });
      }
      // Viewers are chosen by the item's tenant, fixed when it was created (rows from before tenancy: default).
      const update = plan.update && { ...plan.update, tenant: head?.tenant ?? DEFAULT_TENANT };
      return { ok: true, update, counts: plan.counts, conflicts };
    }
    return {
      ok: false,
      reason: `the head changed under ${MAX_WRITE_ROUNDS} conditional writes in a row`,
      conflicts,
    };
  }

  return async (event) => {
    const lagHandled = reportLag(event);
    const startedAt = now();
    const failed: string[] = [];
    const byItem = new Map<string, ItemBatch>();
    let malformed = 0;

    for (const raw of event.Records) {
      const decoded = decodeChunkRecord(raw);
      if (!decoded.ok) {
        malformed += 1;
        if (!(await sendDeadLetter(raw, decoded.reason))) failed.push(raw.kinesis.sequenceNumber);
        continue;
      }
      const { itemId, traceparent } = decoded.record;
      const batch = byItem.get(itemId);
      if (batch) {
        batch.records.push(decoded.record);
        batch.traceparent ??= traceparent;
      } else
        byItem.set(itemId, {
          itemId,
          firstSequenceNumber: raw.kinesis.sequenceNumber,
          records: [decoded.record],
          traceparent,
        });
    }

    const items = [...byItem.values()];
    let heads: ReadonlyMap<string, ItemHead> = new Map();
    let unread: ReadonlySet<string> = new Set();
    try {
      ({ heads, unread } = await store.readHeads(items.map((i) => i.itemId)));
    } catch (err) {
      // Each item falls back to its own read below.
      logger.warn('could not batch-read item heads', { error: describe(err) });
      unread = new Set(byItem.keys());
    }

    const outcomes = await lastValueFrom(
      from(items).pipe(
        mergeMap(async (batch) => {
          let outcome: ItemOutcome;
          try {
            outcome = await applyItem(batch, heads.get(batch.itemId), !unread.has(batch.itemId));
          } catch (err) {
            outcome = { ok: false, reason: describe(err), conflicts: 0 };
          }
          return { batch, outcome };
        }, concurrency),
        toArray(),
      ),
    );

    const updates: ItemUpdate[] = [];
    const totals: FoldCounts = { applied: 0, duplicate: 0, stale: 0, held: 0, afterFinal: 0 };
    let conflicts = 0;
    for (const { batch, outcome } of outcomes) {
      conflicts += outcome.conflicts;
      if (!outcome.ok) {
        logger.error('item not written; its records will be redelivered', {
          ...itemKeys(batch),
          sequenceNumber: batch.firstSequenceNumber,
          reason: outcome.reason,
        });
        failed.push(batch.firstSequenceNumber);
        continue;
      }
      if (outcome.update) {
        const update = { ...outcome.update, ...itemKeys(batch) };
        updates.push(update);
        logApplied(update, batch.records.length);
      }
      for (const key of Object.keys(totals) as (keyof FoldCounts)[])
        totals[key] += outcome.counts?.[key] ?? 0;
    }

    // Storage is done and reported before any viewer is posted to: fan-out cannot delay either.
    metrics.addMetric('ChunkRecords', MetricUnit.Count, event.Records.length);
    metrics.addMetric('ChunkRecordsApplied', MetricUnit.Count, totals.applied);
    metrics.addMetric('ChunkRecordsDuplicate', MetricUnit.Count, totals.duplicate);
    metrics.addMetric('ChunkRecordsStale', MetricUnit.Count, totals.stale + totals.afterFinal);
    metrics.addMetric('ChunkRecordsHeld', MetricUnit.Count, totals.held);
    metrics.addMetric('ChunkRecordsMalformed', MetricUnit.Count, malformed);
    metrics.addMetric('ItemWriteConflicts', MetricUnit.Count, conflicts);
    metrics.addMetric('ItemsNotWritten', MetricUnit.Count, outcomes.filter((o) => !o.outcome.ok).length);
    metrics.addMetric('BatchStoreMs', MetricUnit.Milliseconds, now() - startedAt);
    metrics.publishStoredMetrics();
    await deps.afterCommit?.(updates);

    if (updates.length > 0) {
      const fanoutStartedAt = now();
      try {
        await publisher.publish(updates);
      } catch (err) {
        // The items are stored; viewers catch up from a snapshot. Never fail the batch for delivery.
        logger.error('live delivery failed', { items: updates.length, error: describe(err) });
        metrics.addMetric('DeliveryFailures', MetricUnit.Count, 1);
      }
      metrics.addMetric('BatchFanoutMs', MetricUnit.Milliseconds, now() - fanoutStartedAt);
      metrics.publishStoredMetrics();
    }
    // Reported once the batch is stored and posted to viewers, so the lag holds its handling too.
    lagHandled();

    return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
  };

  /**
   * One line per item and batch: at INFO when the batch began an attempt or ended the item (a few
   * lines per item), at DEBUG otherwise (every batch).
   */
  function logApplied(update: ItemUpdate, records: number): void {
    const line = {
      ...itemKeys(update),
      attempt: update.attempt,
      fromSeq: update.fromSeq,
      toSeq: update.toSeq,
      status: update.status,
      records,
    };
    const milestone = update.reset || update.status === 'completed' || update.status === 'failed';
    if (milestone) logger.info('item applied', line);
    else logger.debug('item applied', line);
  }

  /** Sends a malformed record to the dead-letter store; false when that failed (the record must be redelivered). */
  async function sendDeadLetter(raw: KinesisStreamRecord, reason: string): Promise<boolean> {
    try {
      await deadLetters.send(invalidRecordLetter('consumer', raw, reason));
      return true;
    } catch (err) {
      logger.error('could not store a malformed chunk record in the dead-letter store', {
        sequenceNumber: raw.kinesis.sequenceNumber,
        reason,
        error: describe(err),
      });
      return false;
    }
  }
}
