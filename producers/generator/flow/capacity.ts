import type { LagReport } from '../../../shared/coordination.js';

/** The most of the window a decrease leaves: a lag just over the target still trims a tenth. */
const MAX_DECREASE_SHARE = 0.9;

export interface CapacityGateOptions {
  /** The most generations this instance runs at once. */
  readonly maxRunning: number;
  /** Consumer lag above which the window shrinks; it grows only while new reports are under it. */
  readonly lagTargetMs: number;
  /** Reads the consumer's latest lag reports, one per shard (cached by the reader). */
  readonly readLag: () => Promise<readonly LagReport[]>;
  /**
   * The window at the start and after idling. Default 20 (at most `maxRunning`): a crowd that
   * arrives at once loads the consumer with its claims and first tokens before any lag shows.
   */
  readonly initialWindow?: number;
  /**
   * The window never shrinks below this. A consumer slowed by something other than the producers'
   * load (faults, a thread or table it shares) reports a lag over the target however few
   * generations run; shrinking on it down to one would stall the items for as long as that lasts.
   * Default 10 (at most `maxRunning`).
   */
  readonly minWindow?: number;
  /** Share of the window it grows by per second while the consumer keeps up (at least 1). Default 0.1. */
  readonly growthPerSecond?: number;
  /**
   * The smallest share of the window a decrease leaves, for a lag of `1 / decreaseFactor` times
   * the target or more; a lag closer to the target leaves target ÷ lag of it (at most 0.9).
   * Default 0.5.
   */
  readonly decreaseFactor?: number;
  /** Decreases closer together than this count once: new starts need time to show in the lag. Default 2 s. */
  readonly cooldownMs?: number;
  readonly now: () => number;
}

/**
 * How many generations this producer instance may run at once: a window on the consumer's lag, so
 * the producers admit new generations only while the pipeline behind them keeps up. Generations
 * already running are never stopped: the window only gates new starts, which then run for seconds,
 * so the lag answers a change of the window late. The window moves only on lag reports made since
 * the last look (the largest of them): a shard that went quiet keeps its last report for a while,
 * and reading it again would count one congestion many times. By that lag:
 *
 * - over the target: the window shrinks in proportion (to target ÷ lag of itself, between half
 *   and nine tenths), never below `minWindow`, and once per congestion: not again until the
 *   generations running have come down to the window the last decrease set (until then the lag
 *   still shows the load from before it, as TCP counts one loss per window of data in flight),
 *   and not within a cool-down of it;
 * - at or under the target: it grows by a share of itself per second — gently, so a crowd of
 *   waiting items is let in only as fast as the lag is seen to stay low;
 * - no new report while some shard's last one is still fresh (a consumer too busy to write one):
 *   the window holds where it is;
 * - no fresh report from any shard (the consumer has had nothing new to read): it grows on time.
 *
 * The consumer leaves records handed to it again out of its lag (`createLagReporter`), so a batch
 * retried through faults does not close the window on generations that could run.
 *
 * A window the producer does not use is brought back to twice what runs, so an idle spell does not
 * leave it wide open for the next crowd (as TCP validates an unused congestion window).
 */
export class CapacityGate {
  private readonly initialWindow: number;
  private readonly minWindow: number;
  private readonly growthPerSecond: number;
  private readonly decreaseFactor: number;
  private readonly cooldownMs: number;
  private value: number;
  /** When the last look found a new report. */
  private reportedAt: number;
  private decreasedAt = Number.NEGATIVE_INFINITY;
  /** The latest report seen of each shard (its time). */
  private readonly seen = new Map<string, number>();
  private running = 0;

  constructor(private readonly o: CapacityGateOptions) {
    if (!(o.maxRunning >= 1)) throw new RangeError(`maxRunning must be >= 1, got ${o.maxRunning}`);
    this.minWindow = Math.min(o.maxRunning, o.minWindow ?? 10);
    this.initialWindow = Math.max(this.minWindow, Math.min(o.maxRunning, o.initialWindow ?? 20));
    this.growthPerSecond = o.growthPerSecond ?? 0.1;
    this.decreaseFactor = o.decreaseFactor ?? 0.5;
    this.cooldownMs = o.cooldownMs ?? 2_000;
    this.value = this.initialWindow;
    this.reportedAt = o.now();
  }

  /** The window now, in generations. */
  window(): number {
    return Math.max(1, Math.floor(this.value));
  }

  /** Generations running now. */
  get inUse(): number {
    return this.running;
  }

  /** Reads the consumer's lag and moves the window by the reports made since the last look. */
  async observe(): Promise<void> {
    const reports = await this.o.readLag();
    // No shard reported lately: the consumer has had no new records, so there is nothing to protect.
    const lag = reports.length === 0 ? 0 : this.newest(reports);
    const now = this.o.now();
    // Growth is for the time since the previous new report; a long gap is no licence to grow by all of it.
    const elapsedS = Math.min(1, Math.max(0, now - this.reportedAt) / 1000);
    if (lag !== undefined) this.reportedAt = now;
    if (lag !== undefined && lag > this.o.lagTargetMs) {
      if (now - this.decreasedAt >= this.cooldownMs && this.running <= this.value) {
        const share = Math.min(MAX_DECREASE_SHARE, Math.max(this.decreaseFactor, this.o.lagTargetMs / lag));
        this.value = Math.max(this.minWindow, this.value * share);
        this.decreasedAt = now;
      }
    } else if (lag !== undefined) {
      const step = Math.max(1, this.value * this.growthPerSecond) * elapsedS;
      this.value = Math.min(this.o.maxRunning, this.value + step);
    }
    this.value = Math.min(this.value, Math.max(this.initialWindow, 2 * this.running));
  }

  /** The largest lag among the reports newer than those seen before; undefined when none is. */
  private newest(reports: readonly LagReport[]): number | undefined {
    let lag: number | undefined;
    for (const { shardId, lagMs, at } of reports) {
      if (at <= (this.seen.get(shardId) ?? Number.NEGATIVE_INFINITY)) continue;
      this.seen.set(shardId, at);
      lag = Math.max(lag ?? 0, lagMs);
    }
    return lag;
  }

  /** How many more generations may start now. */
  room(): number {
    return Math.max(0, this.window() - this.running);
  }

  /** True when one more generation may start now. */
  hasRoom(): boolean {
    return this.running < this.window();
  }

  /** A generation started. */
  take(): void {
    this.running++;
  }

  /** A generation ended. */
  done(): void {
    this.running = Math.max(0, this.running - 1);
  }
}
