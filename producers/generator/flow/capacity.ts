import { Aimd, type AimdOptions, type AimdState } from './aimd.js';

export interface CapacityGateOptions {
  /** The most generations this instance runs at once. */
  readonly maxRunning: number;
  /** Consumer lag above which the window shrinks. */
  readonly lagTargetMs: number;
  /** Reads the consumer's latest lag (cached by the reader); undefined when unknown. */
  readonly readLagMs: () => Promise<number | undefined>;
  readonly aimd?: Partial<AimdOptions>;
  /** The window at the start and after idling. Default 50 (at most `maxRunning`). */
  readonly initialWindow?: number;
  readonly now: () => number;
}

/**
 * How many generations this producer instance may run at once: an AIMD window on the consumer's lag,
 * so the producers admit new generations only while the pipeline behind them keeps up. A lag over
 * the target halves the window (once per cool-down); time grows it back by a few generations per
 * second. Generations already running are never stopped: the window only gates new starts.
 *
 * The window starts small and grows with time while the lag stays under the target, so a crowd of
 * new items is let in as fast as the consumer is seen to keep up, not all at once. A window the
 * producer does not use is brought back to twice what runs, so an idle spell does not leave it wide
 * open for the next crowd (as TCP validates an unused congestion window).
 */
export class CapacityGate {
  private readonly aimd: Aimd;
  private readonly options: AimdOptions;
  private readonly initialWindow: number;
  private state: AimdState;
  private running = 0;

  constructor(private readonly o: CapacityGateOptions) {
    this.options = {
      min: 1,
      max: o.maxRunning,
      decreaseFactor: 0.5,
      increasePerSecond: Math.max(1, o.maxRunning / 50),
      cooldownMs: 1_000,
      ...o.aimd,
    };
    this.aimd = new Aimd(this.options);
    this.initialWindow = Math.min(o.maxRunning, o.initialWindow ?? 50);
    this.state = this.restartedAt(this.initialWindow, o.now());
  }

  /** The window now, in generations. */
  window(): number {
    return Math.max(1, Math.floor(this.aimd.valueAt(this.state, this.o.now())));
  }

  /** Generations running now. */
  get inUse(): number {
    return this.running;
  }

  /** Reads the consumer's lag and shrinks the window while it is over the target. */
  async observe(): Promise<number | undefined> {
    const unused = Math.max(this.initialWindow, 2 * this.running);
    if (this.window() > unused) this.state = this.restartedAt(unused, this.o.now());
    const lag = await this.o.readLagMs();
    if (lag !== undefined && lag > this.o.lagTargetMs) {
      const next = this.aimd.decrease(this.state, this.o.now());
      if (next) this.state = next;
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

  /**
   * A window of `value` at `now` that grows from there, yet may still halve at once on congestion
   * (its last decrease dated one cool-down back).
   */
  private restartedAt(value: number, now: number): AimdState {
    const { cooldownMs, increasePerSecond } = this.options;
    return { value: value - (cooldownMs / 1000) * increasePerSecond, decreasedAt: now - cooldownMs };
  }

  /** A generation ended. */
  done(): void {
    this.running = Math.max(0, this.running - 1);
  }
}
