import type { CrashPoint } from '../../producers/generator/generation-env.js';

/**
 * One producer crash at a step of a generation's ending: the first item of the run to reach
 * `point` at or after `atMs` (from the start of the run) dies there, as if its process did. An
 * item is crashed once at most, so the takeover that finishes it is left alone.
 */
export interface EndingCrash {
  /**
   * `ending-recorded`: the claim records the `end` record, which is not put yet; `end-put`: the
   * `end` record is put, the claim not finished. (`before-ending`: the last delta is put, nothing
   * of the ending recorded.)
   */
  readonly point: CrashPoint;
  readonly atMs: number;
}

/** One crash that fired. */
export interface FiredCrash {
  readonly point: CrashPoint;
  readonly itemId: string;
  /** From the start of the run. */
  readonly atMs: number;
}

/**
 * The producer's `crashAt` for a chaos run's crash schedule, and what fired. Each scheduled crash
 * waits for an item to reach its point, however long the run takes to get there.
 */
export class EndingCrashes {
  private readonly pending: EndingCrash[];
  private readonly crashed = new Map<string, FiredCrash>();

  constructor(
    schedule: readonly EndingCrash[],
    private readonly startedAt: number,
    /** Told of each crash as it fires (the run reads the claim it leaves). */
    private readonly onCrash: (crash: FiredCrash) => void = () => {},
  ) {
    this.pending = [...schedule].sort((a, b) => a.atMs - b.atMs);
  }

  /** The producer's tuning `crashAt`: true where the producer must die now. */
  readonly crashAt = (point: CrashPoint, itemId: string): boolean => {
    if (this.crashed.has(itemId)) return false;
    const now = Date.now() - this.startedAt;
    const due = this.pending.findIndex((c) => c.point === point && c.atMs <= now);
    if (due === -1) return false;
    this.pending.splice(due, 1);
    const crash = { point, itemId, atMs: now };
    this.crashed.set(itemId, crash);
    this.onCrash(crash);
    return true;
  };

  fired(): FiredCrash[] {
    return [...this.crashed.values()];
  }

  /** Scheduled crashes that never fired (no item reached their point after their time). */
  unfired(): EndingCrash[] {
    return [...this.pending];
  }

  /** Crashes fired per scheduled point (0 for a point that never fired). */
  countByPoint(): Partial<Record<CrashPoint, number>> {
    const counts: Partial<Record<CrashPoint, number>> = {};
    for (const c of this.pending) counts[c.point] ??= 0;
    for (const c of this.crashed.values()) counts[c.point] = (counts[c.point] ?? 0) + 1;
    return counts;
  }
}
