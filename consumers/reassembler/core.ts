/**
 * The pure core of reassembly: folds chunk records, one at a time, into the consumer-owned state of
 * an item. Nothing here does I/O, reads a clock or depends on how records were batched: folding a
 * set of records in any order, in one batch or many, gives the same state (see README.md).
 */
import type { ChunkRecord, ErrorInfo, Usage } from '../../shared/contracts/chunk-record.js';
import type { ItemStatus } from '../../shared/contracts/stored-item.js';
import type { ItemUpdate } from '../../shared/delivery.js';

/** What a batch changed for an item, before the item's tenant (which the head holds) is added. */
export type AppliedUpdate = Omit<ItemUpdate, 'tenant'>;
import type { ItemHead } from '../../shared/items.js';

/**
 * Seal the unsealed tail into a part row once it reaches this many UTF-8 bytes. A head write costs
 * one write unit per KB of the larger of the old and new row, so a small tail keeps each batch's
 * write cheap, while each part row is written once. Measured (consumers/README.md): 2 KB costs
 * 40–60% fewer write units than 8 KB for outputs of 1k–4k tokens, and below 2 KB the per-row
 * rounding of part writes costs more than it saves. A part holds at most this plus one delta.
 */
export const DEFAULT_SEAL_BYTES = 2 * 1024;

/** The consumer-owned fields of an item, plus the records held ahead of a gap. */
export interface ItemState {
  /** Attempt whose text is stored; 0 before the first record. */
  readonly attempt: number;
  /** Next seq of `attempt` to apply. */
  readonly nextSeq: number;
  readonly status: ItemStatus;
  /** The unsealed tail of `attempt`'s text. */
  readonly tail: string;
  /** Sealed parts of `attempt`, numbered from 0. */
  readonly parts: number;
  readonly usage: Usage | null;
  readonly costUsd: number | null;
  readonly firstTokenAt: string | null;
  readonly completedAt: string | null;
  readonly error: ErrorInfo | null;
  /** Records of `attempt` that arrived ahead of a gap (seq > nextSeq), by seq. */
  readonly held: ReadonlyMap<number, ChunkRecord>;
}

/** A sealed piece of an attempt's text; its content depends only on the attempt's records. */
export interface SealedPart {
  readonly attempt: number;
  readonly index: number;
  readonly text: string;
}

/** What happened to each record folded, for metrics and tests. */
export interface FoldCounts {
  /** Applied to the text or status (including held records released by this fold). */
  applied: number;
  /** seq already applied in the same attempt. */
  duplicate: number;
  /** Of an attempt older than the item's. */
  stale: number;
  /** Ahead of a gap: kept until the gap fills (a record held twice counts twice). */
  held: number;
  /** After the attempt's `end` or final `error`: cannot belong to the attempt. */
  afterFinal: number;
}

export interface FoldResult {
  readonly state: ItemState;
  /** Parts of `state.attempt` sealed by this fold, in order. */
  readonly sealed: readonly SealedPart[];
  /** First seq this fold applied in `state.attempt` (the state's `nextSeq` before it, or 0 after a new attempt). */
  readonly fromSeq: number;
  /** Text the applied deltas of `state.attempt` added, in seq order. */
  readonly appended: string;
  /** How many records of `state.attempt` were applied. */
  readonly appliedInAttempt: number;
  readonly counts: FoldCounts;
}

export interface FoldOptions {
  /** ISO-8601 time stamped on `firstTokenAt` and `completedAt`. */
  readonly now: string;
  /** See `DEFAULT_SEAL_BYTES`. */
  readonly sealBytes: number;
}

const isFinal = (status: ItemStatus) => status === 'completed' || status === 'failed';

/** The state of an item that has received no chunk record yet. */
export function emptyState(status: ItemStatus = 'queued'): ItemState {
  return {
    attempt: 0,
    nextSeq: 0,
    status,
    tail: '',
    parts: 0,
    usage: null,
    costUsd: null,
    firstTokenAt: null,
    completedAt: null,
    error: null,
    held: new Map(),
  };
}

/** The state stored in a head row. Held records live in their own rows: pass them to `foldRecords`. */
export function stateOfHead(head: ItemHead): ItemState {
  return {
    attempt: head.attempt,
    nextSeq: head.nextSeq,
    status: head.status,
    tail: head.text,
    parts: head.parts,
    usage: head.usage,
    costUsd: head.costUsd,
    firstTokenAt: head.firstTokenAt,
    completedAt: head.completedAt,
    error: head.error,
    held: new Map(),
  };
}

/**
 * Folds `records` into `initial`, one by one:
 * - older attempt → ignored; newer attempt → the item starts over (text, parts, usage, error
 *   and held records dropped, status `streaming`), then the record is folded;
 * - seq < nextSeq → duplicate, ignored; seq > nextSeq → held until the gap fills;
 * - seq = nextSeq → applied, then every held record that has become next is applied too;
 * - `delta` appends (sealing the tail into a part at `sealBytes`), `end` completes, a final `error`
 *   fails (keeping the text), a non-final `error` leaves the item streaming for the next attempt.
 */
export function foldRecords(
  initial: ItemState,
  records: Iterable<ChunkRecord>,
  options: FoldOptions,
): FoldResult {
  let s = { ...initial, held: new Map(initial.held) };
  let tailBytes = Buffer.byteLength(s.tail);
  let sealed: SealedPart[] = [];
  let appended = '';
  let appliedInAttempt = 0;
  const counts: FoldCounts = { applied: 0, duplicate: 0, stale: 0, held: 0, afterFinal: 0 };

  const startAttempt = (attempt: number) => {
    s = { ...emptyState('streaming'), attempt, held: new Map() };
    tailBytes = 0;
    sealed = [];
    appended = '';
    appliedInAttempt = 0;
  };

  const apply = (record: ChunkRecord) => {
    switch (record.type) {
      case 'delta': {
        s.tail += record.text;
        tailBytes += Buffer.byteLength(record.text);
        appended += record.text;
        s.status = 'streaming';
        s.firstTokenAt ??= options.now;
        if (tailBytes >= options.sealBytes) {
          sealed.push({ attempt: s.attempt, index: s.parts, text: s.tail });
          s.parts += 1;
          s.tail = '';
          tailBytes = 0;
        }
        break;
      }
      case 'end':
        s.status = 'completed';
        s.usage = record.usage;
        s.costUsd = record.costUsd ?? null;
        s.error = null;
        s.completedAt = options.now;
        break;
      case 'error':
        // A non-final error is followed by a new attempt, whose first record resets the item.
        if (record.final) {
          s.status = 'failed';
          s.error = record.error;
          s.usage = record.usage ?? null;
          s.completedAt = options.now;
        }
        break;
    }
    s.nextSeq = record.seq + 1;
    counts.applied += 1;
    appliedInAttempt += 1;
    // Nothing can follow the last record of an attempt: anything held beyond it is not of it.
    if (record.type !== 'delta') s.held.clear();
  };

  for (const record of records) {
    if (record.attempt < s.attempt) {
      counts.stale += 1;
      continue;
    }
    if (record.attempt > s.attempt) startAttempt(record.attempt);
    if (record.seq < s.nextSeq) {
      counts.duplicate += 1;
      continue;
    }
    if (isFinal(s.status)) {
      counts.afterFinal += 1;
      continue;
    }
    if (record.seq > s.nextSeq) {
      s.held.set(record.seq, record);
      counts.held += 1;
      continue;
    }
    apply(record);
    for (let next = s.held.get(s.nextSeq); next !== undefined; next = s.held.get(s.nextSeq)) {
      s.held.delete(next.seq);
      apply(next);
    }
  }

  const fromSeq = s.attempt === initial.attempt ? initial.nextSeq : 0;
  return { state: s, sealed, fromSeq, appended, appliedInAttempt, counts };
}

/** A held record's identity: its row key in the text table. */
export interface HeldKey {
  readonly attempt: number;
  readonly seq: number;
}

/** Everything one item's records change, decided before any write. */
export interface ItemPlan {
  /** False when the records changed nothing (all duplicates or stale): no head write is needed. */
  readonly changed: boolean;
  readonly state: ItemState;
  /** Part rows to put before the head write (idempotent: same key, same content). */
  readonly partsToWrite: readonly SealedPart[];
  /** Records to hold durably (put before the head write). */
  readonly holdsToWrite: readonly ChunkRecord[];
  /** Held rows no longer needed once the head write (if any) succeeds. */
  readonly holdsToDelete: readonly HeldKey[];
  /**
   * What viewers need to know: what was applied, or that a new attempt replaced text; when the
   * records were all applied before, the same messages again (`republishedUpdate`).
   */
  readonly update: AppliedUpdate | undefined;
  readonly counts: FoldCounts;
}

/**
 * Plans the writes for one item: folds its durably held records and the batch's records into the
 * head's state, and diffs the held set against the rows that hold it.
 */
export function planItem(
  itemId: string,
  current: ItemState,
  heldRows: readonly ChunkRecord[],
  records: readonly ChunkRecord[],
  options: FoldOptions,
): ItemPlan {
  // Held rows are folded as records: the fold does not depend on order, and a row that a failed
  // write left behind is still a genuine record of the stream.
  const result = foldRecords({ ...current, held: new Map() }, [...heldRows, ...records], options);
  const { state } = result;
  const keyOf = (k: HeldKey) => `${k.attempt}:${k.seq}`;
  const rowKeys = new Set(heldRows.map(keyOf));
  const stateKeys = new Set([...state.held.values()].map(keyOf));
  const holdsToWrite = [...state.held.values()].filter((r) => !rowKeys.has(keyOf(r)));
  const holdsToDelete = heldRows
    .filter((r) => !stateKeys.has(keyOf(r)))
    .map((r) => ({ attempt: r.attempt, seq: r.seq }));
  // The held set only shrinks when a record is applied or a new attempt starts, so rows dropped
  // without either are leftovers of an earlier failed write: deleting them needs no head write.
  const changed =
    state.attempt !== current.attempt || state.nextSeq !== current.nextSeq || holdsToWrite.length > 0;
  const reset = state.attempt !== current.attempt && current.attempt > 0;
  const applied: AppliedUpdate | undefined =
    result.appliedInAttempt > 0 || reset
      ? {
          itemId,
          attempt: state.attempt,
          reset,
          fromSeq: result.fromSeq,
          toSeq: result.fromSeq + result.appliedInAttempt - 1,
          text: result.appended,
          status: state.status,
          ...(state.status === 'completed' && state.usage ? { usage: state.usage } : {}),
          ...(state.status === 'completed' && state.costUsd !== null ? { costUsd: state.costUsd } : {}),
          ...(state.status === 'failed' && state.error ? { error: state.error } : {}),
        }
      : undefined;
  return {
    changed,
    state,
    partsToWrite: result.sealed,
    holdsToWrite,
    holdsToDelete,
    update: applied ?? (changed ? undefined : republishedUpdate(itemId, state, records)),
    counts: result.counts,
  };
}

/**
 * What viewers are told again when a batch brings only records the item already applied. A
 * consumer that committed a batch and died before publishing it leaves viewers without those
 * messages, and its retry finds only duplicates: this rebuilds the messages from the records
 * themselves (a record's identity fixes its content). The longest contiguous run of the stored
 * attempt's applied records is published; when it reaches the item's next seq it carries the
 * item's status, so a viewer gets `done` / `failed`. A viewer that had them drops the delta as
 * below its next seq; `done` / `failed` again changes nothing.
 */
export function republishedUpdate(
  itemId: string,
  state: ItemState,
  records: readonly ChunkRecord[],
): AppliedUpdate | undefined {
  const bySeq = new Map<number, ChunkRecord>();
  for (const r of records) if (r.attempt === state.attempt && r.seq < state.nextSeq) bySeq.set(r.seq, r);
  if (bySeq.size === 0) return undefined;
  // The run ending highest wins: it is the one that can carry the item's final status.
  const last = Math.max(...bySeq.keys());
  let first = last;
  while (bySeq.has(first - 1)) first -= 1;
  let text = '';
  for (let seq = first; seq <= last; seq++) {
    const r = bySeq.get(seq);
    if (r?.type === 'delta') text += r.text;
  }
  const reachesHead = last === state.nextSeq - 1;
  const status = reachesHead ? state.status : 'streaming';
  return {
    itemId,
    attempt: state.attempt,
    reset: false,
    fromSeq: first,
    toSeq: last,
    text,
    status,
    ...(status === 'completed' && state.usage ? { usage: state.usage } : {}),
    ...(status === 'completed' && state.costUsd !== null ? { costUsd: state.costUsd } : {}),
    ...(status === 'failed' && state.error ? { error: state.error } : {}),
  };
}
