import type { ErrorInfo, Usage } from '../../shared/contracts/chunk-record.js';
import type { ItemStatus, ItemSummary } from '../../shared/contracts/stored-item.js';

/** One row of the items table: what the query API and the live stream told about an item. */
export interface ItemRow {
  readonly itemId: string;
  readonly status: ItemStatus;
  readonly attempt: number;
  readonly modelId?: string;
  readonly usage?: Usage;
  readonly costUsd?: number;
  readonly error?: ErrorInfo;
  /** Epoch ms (the query API's timestamps). */
  readonly createdAt?: number;
  readonly firstTokenAt?: number;
  readonly completedAt?: number;
  /** When this page first heard of the item: orders items the query API has not described yet. */
  readonly seenAt: number;
}

/** The live fields of an item, as the client library's `ItemView` has them. */
export interface LiveItem {
  readonly itemId: string;
  readonly status: ItemStatus;
  readonly attempt: number;
  readonly usage?: Usage;
  readonly costUsd?: number;
  readonly error?: ErrorInfo;
}

export type StatusFilter = ItemStatus | 'all';

const RANK: Record<ItemStatus, number> = { queued: 0, streaming: 1, completed: 2, failed: 2 };

export const isTerminal = (status: ItemStatus) => status === 'completed' || status === 'failed';

/**
 * Whether `next` is at least as far along as `current`: a later attempt, or the same attempt in
 * the same or a later status. The query API's list is eventually consistent and the live stream
 * is ahead of it, so whichever source is behind must not move a row back.
 */
function notBehind(next: { attempt: number; status: ItemStatus }, current: ItemRow): boolean {
  if (next.attempt !== current.attempt) return next.attempt > current.attempt;
  return RANK[next.status] >= RANK[current.status];
}

const epoch = (iso: string | null) => {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms;
};

/** The outcome of a live update, for deciding whether to ask the query API for the rest. */
export interface LiveUpdate {
  /** The page had not heard of the item before. */
  readonly isNew: boolean;
  /** The item just completed or failed. */
  readonly ended: boolean;
}

/** The items the page knows, merged from the query API and the live stream. Pure: no I/O. */
export class ItemsStore {
  readonly #rows = new Map<string, ItemRow>();

  get(itemId: string): ItemRow | undefined {
    return this.#rows.get(itemId);
  }

  get size(): number {
    return this.#rows.size;
  }

  /** Merges an entry of `GET /items`. */
  applySummary(summary: ItemSummary, now: number): void {
    const current = this.#rows.get(summary.itemId);
    const timestamps = {
      createdAt: epoch(summary.createdAt),
      firstTokenAt: epoch(summary.firstTokenAt),
      completedAt: epoch(summary.completedAt),
    };
    const described = {
      itemId: summary.itemId,
      modelId: summary.modelId,
      createdAt: timestamps.createdAt ?? current?.createdAt,
      seenAt: current?.seenAt ?? now,
    };
    if (!current || notBehind(summary, current)) {
      this.#rows.set(
        summary.itemId,
        clean({
          ...described,
          status: summary.status,
          attempt: summary.attempt,
          usage: summary.usage ?? undefined,
          costUsd: summary.costUsd ?? undefined,
          error: summary.error ?? undefined,
          firstTokenAt: timestamps.firstTokenAt,
          completedAt: timestamps.completedAt,
        }),
      );
      return;
    }
    // The live stream is ahead: keep its status, take what only the query API knows.
    this.#rows.set(
      summary.itemId,
      clean({
        ...current,
        ...described,
        firstTokenAt: current.firstTokenAt ?? timestamps.firstTokenAt,
      }),
    );
  }

  /** Merges what the live stream says about an item. */
  applyLive(live: LiveItem, now: number): LiveUpdate {
    const current = this.#rows.get(live.itemId);
    if (current && !notBehind(live, current)) return { isNew: false, ended: false };
    const newAttempt = current !== undefined && live.attempt > current.attempt;
    // Another attempt's usage, error and end time say nothing about this one.
    const base = current && !newAttempt ? current : undefined;
    const row = clean({
      itemId: live.itemId,
      status: live.status,
      attempt: live.attempt,
      modelId: current?.modelId,
      createdAt: current?.createdAt,
      firstTokenAt: current?.firstTokenAt,
      completedAt: base?.completedAt,
      usage: live.usage ?? base?.usage,
      costUsd: live.costUsd ?? base?.costUsd,
      error: live.error ?? base?.error,
      seenAt: current?.seenAt ?? now,
    });
    this.#rows.set(live.itemId, row);
    return {
      isNew: current === undefined,
      ended: isTerminal(live.status) && (current === undefined || !isTerminal(current.status) || newAttempt),
    };
  }

  /** Rows with the given status (or all), latest first, at most `limit`. */
  list(filter: StatusFilter, limit: number): ItemRow[] {
    const rows = [...this.#rows.values()].filter((row) => filter === 'all' || row.status === filter);
    rows.sort(latestFirst);
    return rows.slice(0, limit);
  }

  /** How many rows have each status. */
  counts(): Record<ItemStatus, number> {
    const counts: Record<ItemStatus, number> = { queued: 0, streaming: 0, completed: 0, failed: 0 };
    for (const row of this.#rows.values()) counts[row.status]++;
    return counts;
  }

  /** Items received and not finished: queued or streaming. */
  inFlight(): number {
    const counts = this.counts();
    return counts.queued + counts.streaming;
  }
}

const orderKey = (row: ItemRow) => row.createdAt ?? row.seenAt;

function latestFirst(a: ItemRow, b: ItemRow): number {
  const byTime = orderKey(b) - orderKey(a);
  return byTime !== 0 ? byTime : a.itemId.localeCompare(b.itemId);
}

/** Drops undefined fields, so rows compare and print without noise. */
function clean<T extends object>(row: T): T {
  return Object.fromEntries(Object.entries(row).filter(([, value]) => value !== undefined)) as T;
}

/** Time from receipt to the first token, in ms, when known. */
export function timeToFirstTokenMs(row: ItemRow): number | undefined {
  if (row.createdAt !== undefined && row.firstTokenAt !== undefined) return row.firstTokenAt - row.createdAt;
  return row.usage?.firstByteLatencyMs;
}

/** Time from receipt to the end, or so far while the item runs, in ms, when known. */
export function durationMs(row: ItemRow, now: number): number | undefined {
  if (row.createdAt !== undefined && row.completedAt !== undefined) return row.completedAt - row.createdAt;
  if (isTerminal(row.status)) return row.usage?.invocationLatencyMs;
  if (row.createdAt !== undefined) return Math.max(0, now - row.createdAt);
  return undefined;
}
