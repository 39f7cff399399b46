import {
  BatchGetCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import type { EndRecord } from '../../shared/contracts/chunk-record.js';
import type { Waiting } from '../../shared/contracts/stored-item.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { classifyAwsError } from '../../shared/errors.js';
import { type ItemHead, readItemHead } from '../../shared/items.js';
import { withRetry } from '../../shared/retry.js';
import { DEFAULT_TENANT, tenantStatusKey } from '../../shared/tenancy.js';

/**
 * What a delivery of a work item may do, given the item's head row:
 * - `create`: no row yet — create it with attempt 1;
 * - `reclaim`: the last claimed attempt failed for good — start a new attempt (status back to `queued`);
 * - `takeover`: a producer claimed it and stopped renewing its lease (it crashed or timed out);
 * - `held`: a producer holds an unexpired lease — it may be alive, or have just died;
 * - `completed`: the item is done; a second generation must not start;
 * - `ended`: this very input record already claimed the item and its generation failed for good —
 *   a Lambda retry of the record, not a resend, so its final error stays final;
 * - `finish-ending`: a producer recorded the `end` record it was putting and stopped renewing its
 *   lease — the output is complete; put that record (again) and finish, never a second generation;
 * - `close-ending`: the consumer already completed the item from the `end` record of a claim still
 *   `ending` (its producer died after putting it) — record the claim completed, put nothing.
 */
export type ClaimDecision =
  | 'create'
  | 'reclaim'
  | 'takeover'
  | 'held'
  | 'completed'
  | 'ended'
  | 'finish-ending'
  | 'close-ending';

/**
 * Decides what a delivery of the input record `recordId` may do with an item, from its head row
 * (pure).
 */
export function decideClaim(head: ItemHead | undefined, now: number, recordId: string): ClaimDecision {
  if (!head) return 'create';
  if (head.claimState === 'completed') return 'completed';
  if (head.status === 'completed') return head.claimState === 'ending' ? 'close-ending' : 'completed';
  const leased = head.leaseUntil !== undefined && head.leaseUntil > now;
  if (head.claimState === 'ending') return leased ? 'held' : 'finish-ending';
  // A running lease wins over a `failed` status: the consumer may still be applying the final error
  // of an older attempt while a newer one runs.
  if (head.claimState !== 'failed' && leased) return 'held';
  if (head.claimState === 'failed' || head.status === 'failed')
    return head.claimedBy === recordId ? 'ended' : 'reclaim';
  return 'takeover';
}

/** One delivery of a work item: the item, the model it asks for, and the input record's `eventID`. */
export interface Delivery {
  readonly item: WorkItem;
  readonly modelId: string;
  readonly recordId: string;
  /**
   * The item will wait behind others: a new item's head says so from its creation, held for
   * `leaseMs`, which saves the waiting mark's write a crowd of new items would each cost.
   */
  readonly waiting?: { readonly reason: Waiting; readonly leaseMs: number };
}

/** A claim that created an item's head as waiting: for what, when, and the lease it wrote. */
export interface ShownWaiting {
  readonly reason: Waiting;
  readonly at: number;
  readonly leaseMs: number;
}

/** The outcome of trying to claim an item. */
export type ClaimResult =
  | {
      readonly kind: 'claimed';
      readonly attempt: number;
      readonly decision: 'create' | 'reclaim' | 'takeover';
      /** Since when the item has waited for quota or capacity, if a earlier claim let it wait. */
      readonly waitingSince: number | undefined;
      /** The claim created the item's head as waiting (`Delivery.waiting`): when, and the lease it wrote. */
      readonly shownWaiting?: ShownWaiting;
    }
  /** A producer died while putting this `end` record: put it and finish the claim. */
  | { readonly kind: 'ending'; readonly attempt: number; readonly record: EndRecord }
  | { readonly kind: 'completed' }
  /** A redelivery of the record whose claim already failed for good. */
  | { readonly kind: 'ended' }
  /** Held under a lease that was renewed while we waited: another producer is running it. */
  | { readonly kind: 'running' }
  /** Held under a lease that would not expire within the time we may wait: try again later. */
  | { readonly kind: 'deferred'; readonly leaseUntil: number };

export interface ClaimStoreOptions {
  readonly dynamo: DynamoDBDocumentClient;
  readonly table: string;
  /** How long a claim or renewal holds the item, in ms. */
  readonly leaseMs: number;
  readonly now: () => number;
  /** Waits (abortable); tests may shorten it. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Cancel flag and claimed attempt of a running item, as polled. */
export interface HeadFlags {
  readonly cancelRequested: boolean;
  readonly claimedAttempt: number;
}

const Flags = z.object({
  itemId: z.string(),
  cancelRequested: z.boolean().optional(),
  claimedAttempt: z.number().int().optional(),
});

/** Conditional conflicts (another writer got there first) re-read and decide again, this often. */
const MAX_CLAIM_ROUNDS = 5;
/** DynamoDB's BatchGetItem limit. */
const BATCH_GET_KEYS = 100;

const dynamoRetry = (what: string, signal?: AbortSignal) => ({
  what,
  maxAttempts: 4,
  baseDelayMs: 50,
  maxDelayMs: 1_000,
  signal,
});

/**
 * The producer's side of the items table: claiming an item (one generation per work item), fencing
 * each new attempt, renewing the lease while generating, recording how the claim ended, and polling
 * cancel flags. Every write is a single-item conditional write (no transactions, as in dynalite).
 */
export class ClaimStore {
  constructor(private readonly o: ClaimStoreOptions) {}

  /**
   * Claims `item` for a new generation. Waits for a lease held by someone else to expire as long as
   * `waitUntil` allows: a lease that is renewed meanwhile belongs to a live producer (`running`); one
   * that runs out belonged to a dead one and is taken over. Throws when DynamoDB keeps failing.
   */
  async claim(delivery: Delivery, waitUntil: number, signal?: AbortSignal): Promise<ClaimResult> {
    const { item } = delivery;
    let watched: ItemHead | undefined;
    // Most deliveries are of new items: try to create the head first, and read only if it exists.
    const createdAt = this.o.now();
    if (await this.write(delivery, 'create', undefined, 1, createdAt, signal)) {
      const { waiting } = delivery;
      return {
        kind: 'claimed',
        attempt: 1,
        decision: 'create',
        waitingSince: undefined,
        ...(waiting ? { shownWaiting: { ...waiting, at: createdAt } } : {}),
      };
    }
    for (let round = 1; ; round++) {
      // readItemHead retries throttling and transient errors itself.
      const head = await readItemHead(this.o.dynamo, { items: this.o.table, text: '' }, item.itemId);
      const now = this.o.now();
      const decision = decideClaim(head, now, delivery.recordId);
      if (decision === 'completed') return { kind: 'completed' };
      if (decision === 'close-ending' && head) {
        // Lease or not: the output is stored whole, so a producer still ending could only finish too.
        if (await this.closeEnding(head, signal)) return { kind: 'completed' };
        continue;
      }
      if (decision === 'ended') return { kind: 'ended' };
      if (decision === 'held' && head) {
        if (
          watched &&
          (watched.leaseUntil !== head.leaseUntil || watched.claimedAttempt !== head.claimedAttempt)
        )
          return { kind: 'running' };
        const leaseUntil = head.leaseUntil ?? now;
        if (leaseUntil >= waitUntil) return { kind: 'deferred', leaseUntil };
        watched = head;
        await this.o.sleep(leaseUntil - now + 1, signal);
        continue;
      }
      if (decision === 'finish-ending' && head?.ending) {
        if (await this.takeEnding(delivery.recordId, head, now, signal))
          return { kind: 'ending', attempt: head.claimedAttempt, record: head.ending };
        continue;
      }
      const attempt = (head?.claimedAttempt ?? 0) + 1;
      const written = await this.write(delivery, decision, head, attempt, now, signal);
      if (written)
        return {
          kind: 'claimed',
          attempt,
          decision: decision as 'create' | 'reclaim' | 'takeover',
          waitingSince: decision === 'takeover' ? head?.waitingSince : undefined,
        };
      if (round >= MAX_CLAIM_ROUNDS)
        throw new Error(
          `could not claim item ${item.itemId}: its head row changed under ${MAX_CLAIM_ROUNDS} claims in a row`,
        );
    }
  }

  private async write(
    delivery: Delivery,
    decision: ClaimDecision,
    head: ItemHead | undefined,
    attempt: number,
    now: number,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const { item, modelId, recordId, waiting } = delivery;
    const { table, leaseMs } = this.o;
    const leaseUntil = now + leaseMs;
    let command: PutCommand | UpdateCommand;
    if (decision === 'create' || !head) {
      const shown = decision === 'create' && waiting;
      command = new PutCommand({
        TableName: table,
        Item: {
          itemId: item.itemId,
          status: 'queued',
          version: 1,
          claimedAttempt: attempt,
          claimState: 'running',
          claimedBy: recordId,
          leaseUntil: shown ? now + shown.leaseMs : leaseUntil,
          ...(shown ? { waiting: shown.reason, waitingSince: now } : {}),
          attempt: 0,
          nextSeq: 0,
          text: '',
          parts: 0,
          held: 0,
          modelId,
          tenant: item.tenant ?? DEFAULT_TENANT,
          tenantStatus: tenantStatusKey(item.tenant ?? DEFAULT_TENANT, 'queued', item.itemId),
          metadata: item.metadata ?? null,
          usage: null,
          costUsd: null,
          createdAt: new Date(now).toISOString(),
          firstTokenAt: null,
          completedAt: null,
          error: null,
          cancelRequested: false,
        },
        ConditionExpression: 'attribute_not_exists(itemId)',
      });
    } else if (decision === 'reclaim') {
      // A resend of a failed item is a new request: status back to queued (a status change, so the
      // version moves), its model and metadata as sent now, and an earlier cancel no longer applies.
      command = new UpdateCommand({
        TableName: table,
        Key: { itemId: item.itemId },
        UpdateExpression:
          'SET claimedAttempt = :attempt, claimState = :running, claimedBy = :by, leaseUntil = :lease, ' +
          '#status = :queued, tenantStatus = :tenantStatus, ' +
          '#version = #version + :one, modelId = :model, metadata = :metadata, cancelRequested = :false ' +
          'REMOVE waiting, waitingSince, ending',
        ConditionExpression: `${seenClaim(head)} AND #version = :version`,
        ExpressionAttributeNames: { '#status': 'status', '#version': 'version' },
        ExpressionAttributeValues: {
          ...seenClaimValues(head),
          ':attempt': attempt,
          ':running': 'running',
          ':lease': leaseUntil,
          ':queued': 'queued',
          // The tenant stays the one the item was created with.
          ':tenantStatus': tenantStatusKey(head.tenant, 'queued', item.itemId),
          ':by': recordId,
          ':one': 1,
          ':model': modelId,
          ':metadata': item.metadata ?? null,
          ':false': false,
          ':version': head.version,
        },
      });
    } else {
      command = new UpdateCommand({
        TableName: table,
        Key: { itemId: item.itemId },
        UpdateExpression:
          'SET claimedAttempt = :attempt, claimState = :running, claimedBy = :by, leaseUntil = :lease',
        ConditionExpression: seenClaim(head),
        ExpressionAttributeValues: {
          ...seenClaimValues(head),
          ':by': recordId,
          ':attempt': attempt,
          ':running': 'running',
          ':lease': leaseUntil,
        },
      });
    }
    return this.conditional(command, `claim of ${item.itemId}`, signal);
  }

  /**
   * Moves the claim from attempt `from` to `to` (a new attempt after a failure), renewing the lease.
   * False when another producer has claimed the item meanwhile: this one must stop.
   */
  fence(itemId: string, from: number, to: number, signal?: AbortSignal): Promise<boolean> {
    return this.conditional(
      new UpdateCommand({
        TableName: this.o.table,
        Key: { itemId },
        UpdateExpression: 'SET claimedAttempt = :to, leaseUntil = :lease',
        ConditionExpression: 'claimedAttempt = :from AND claimState = :running',
        ExpressionAttributeValues: {
          ':from': from,
          ':to': to,
          ':running': 'running',
          ':lease': this.o.now() + this.o.leaseMs,
        },
      }),
      `fence of ${itemId} attempt ${to}`,
      signal,
    );
  }

  /**
   * Extends the lease of `attempt` by `leaseMs` (default the claim's lease). False when it is no
   * longer the claimed attempt.
   */
  renew(itemId: string, attempt: number, signal?: AbortSignal, leaseMs = this.o.leaseMs): Promise<boolean> {
    return this.conditional(
      new UpdateCommand({
        TableName: this.o.table,
        Key: { itemId },
        UpdateExpression: 'SET leaseUntil = :lease',
        ConditionExpression: 'claimedAttempt = :attempt AND claimState = :running',
        ExpressionAttributeValues: {
          ':attempt': attempt,
          ':running': 'running',
          ':lease': this.o.now() + leaseMs,
        },
      }),
      `lease renewal of ${itemId}`,
      signal,
    );
  }

  /**
   * Says that a claimed, still `queued` item waits for quota or capacity (`waiting`, shown to
   * readers), since when (kept from an earlier wait), and holds it for `leaseMs`. False when the
   * attempt is no longer claimed or the item already started.
   */
  markWaiting(itemId: string, attempt: number, reason: Waiting, leaseMs: number): Promise<boolean> {
    const now = this.o.now();
    return this.conditional(
      new UpdateCommand({
        TableName: this.o.table,
        Key: { itemId },
        UpdateExpression:
          'SET waiting = :reason, waitingSince = if_not_exists(waitingSince, :now), leaseUntil = :lease',
        ConditionExpression: 'claimedAttempt = :attempt AND claimState = :running AND #status = :queued',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':reason': reason,
          ':now': now,
          ':lease': now + leaseMs,
          ':attempt': attempt,
          ':running': 'running',
          ':queued': 'queued',
        },
      }),
      `waiting mark of ${itemId}`,
    );
  }

  /** Records the model that really runs `attempt` (a fallback). */
  setModel(itemId: string, attempt: number, modelId: string): Promise<boolean> {
    return this.conditional(
      new UpdateCommand({
        TableName: this.o.table,
        Key: { itemId },
        UpdateExpression: 'SET modelId = :model',
        ConditionExpression: 'claimedAttempt = :attempt',
        ExpressionAttributeValues: { ':model': modelId, ':attempt': attempt },
      }),
      `model of ${itemId}`,
    );
  }

  /**
   * Records, before it is put, the `end` record of `attempt`, whose deltas are all on the chunk
   * stream: from here on a takeover finishes this ending instead of generating again.
   */
  beginEnding(itemId: string, attempt: number, record: EndRecord): Promise<boolean> {
    return this.conditional(
      new UpdateCommand({
        TableName: this.o.table,
        Key: { itemId },
        UpdateExpression: 'SET claimState = :ending, ending = :record, leaseUntil = :lease',
        ConditionExpression: 'claimedAttempt = :attempt AND claimState = :running',
        ExpressionAttributeValues: {
          ':ending': 'ending',
          ':record': record,
          ':lease': this.o.now() + this.o.leaseMs,
          ':attempt': attempt,
          ':running': 'running',
        },
      }),
      `ending of ${itemId}`,
    );
  }

  /** Takes over a dead producer's `ending` claim (its lease ran out), to finish it. */
  private takeEnding(recordId: string, head: ItemHead, now: number, signal?: AbortSignal): Promise<boolean> {
    return this.conditional(
      new UpdateCommand({
        TableName: this.o.table,
        Key: { itemId: head.itemId },
        UpdateExpression: 'SET claimedBy = :by, leaseUntil = :lease',
        ConditionExpression: `claimState = :ending AND ${seenClaim(head)}`,
        ExpressionAttributeValues: {
          ...seenClaimValues(head),
          ':ending': 'ending',
          ':by': recordId,
          ':lease': now + this.o.leaseMs,
        },
      }),
      `takeover of the ending of ${head.itemId}`,
      signal,
    );
  }

  /**
   * Records a claim left `ending` as completed once the consumer has completed the item (from the
   * `end` record its dead producer put). False when the claim changed meanwhile.
   */
  private closeEnding(head: ItemHead, signal?: AbortSignal): Promise<boolean> {
    return this.conditional(
      new UpdateCommand({
        TableName: this.o.table,
        Key: { itemId: head.itemId },
        UpdateExpression: 'SET claimState = :completed REMOVE leaseUntil, ending',
        ConditionExpression: 'claimState = :ending AND claimedAttempt = :attempt',
        ExpressionAttributeValues: {
          ':completed': 'completed',
          ':ending': 'ending',
          ':attempt': head.claimedAttempt,
        },
      }),
      `close of the ending of ${head.itemId}`,
      signal,
    );
  }

  /** Records that `attempt`'s last record is on the chunk stream: `completed` or finally `failed`. */
  finish(itemId: string, attempt: number, state: 'completed' | 'failed'): Promise<boolean> {
    return this.conditional(
      new UpdateCommand({
        TableName: this.o.table,
        Key: { itemId },
        UpdateExpression: 'SET claimState = :state REMOVE leaseUntil, ending',
        ConditionExpression: 'claimedAttempt = :attempt',
        ExpressionAttributeValues: { ':attempt': attempt, ':state': state },
      }),
      `finish of ${itemId}`,
    );
  }

  /**
   * Gives up `attempt`'s lease without an ending (its records could not be written), so that the
   * redelivery of the work item takes the item over at once instead of waiting for the lease.
   */
  release(itemId: string, attempt: number): Promise<boolean> {
    return this.conditional(
      new UpdateCommand({
        TableName: this.o.table,
        Key: { itemId },
        UpdateExpression: 'SET leaseUntil = :expired',
        ConditionExpression: 'claimedAttempt = :attempt AND claimState = :running',
        ExpressionAttributeValues: { ':attempt': attempt, ':running': 'running', ':expired': 0 },
      }),
      `release of ${itemId}`,
    );
  }

  /**
   * Reads the cancel flag and claimed attempt of many items, 100 keys per BatchGetItem. Items left
   * unprocessed by DynamoDB are simply missing from the result (the next poll reads them).
   */
  async flags(itemIds: readonly string[], signal?: AbortSignal): Promise<Map<string, HeadFlags>> {
    const out = new Map<string, HeadFlags>();
    for (let i = 0; i < itemIds.length; i += BATCH_GET_KEYS) {
      const keys = itemIds.slice(i, i + BATCH_GET_KEYS).map((itemId) => ({ itemId }));
      const response = await withRetry(
        () =>
          this.o.dynamo.send(
            new BatchGetCommand({
              RequestItems: {
                [this.o.table]: {
                  Keys: keys,
                  ProjectionExpression: 'itemId, cancelRequested, claimedAttempt',
                  ConsistentRead: true,
                },
              },
            }),
            { abortSignal: signal },
          ),
        dynamoRetry(`BatchGetItem ${this.o.table}`, signal),
      );
      for (const row of response.Responses?.[this.o.table] ?? []) {
        const flags = Flags.parse(row);
        out.set(flags.itemId, {
          cancelRequested: flags.cancelRequested ?? false,
          claimedAttempt: flags.claimedAttempt ?? 0,
        });
      }
    }
    return out;
  }

  /** Sends a conditional write: true when written, false when its condition failed. */
  private async conditional(
    command: PutCommand | UpdateCommand,
    what: string,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const send = () =>
      command instanceof PutCommand
        ? this.o.dynamo.send(command, { abortSignal: signal })
        : this.o.dynamo.send(command, { abortSignal: signal });
    try {
      await withRetry(send, dynamoRetry(what, signal));
      return true;
    } catch (err) {
      if (classifyAwsError(err) === 'conditional') return false;
      throw err;
    }
  }
}

/** The condition that the claim fields are still as read. */
function seenClaim(head: ItemHead): string {
  const attempt =
    head.claimedAttempt > 0
      ? 'claimedAttempt = :seenAttempt'
      : '(attribute_not_exists(claimedAttempt) OR claimedAttempt = :seenAttempt)';
  const lease =
    head.leaseUntil === undefined ? 'attribute_not_exists(leaseUntil)' : 'leaseUntil = :seenLease';
  return `${attempt} AND ${lease}`;
}

function seenClaimValues(head: ItemHead): Record<string, unknown> {
  return {
    ':seenAttempt': head.claimedAttempt,
    ...(head.leaseUntil === undefined ? {} : { ':seenLease': head.leaseUntil }),
  };
}
