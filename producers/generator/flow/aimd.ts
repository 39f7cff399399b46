/** How an additive-increase / multiplicative-decrease control value moves. */
export interface AimdOptions {
  /** Smallest value a decrease leaves. */
  readonly min: number;
  /** Largest value an increase reaches. */
  readonly max: number;
  /** A decrease multiplies the value by this (0 < β < 1). */
  readonly decreaseFactor: number;
  /** The value grows by this much per second since the last decrease. */
  readonly increasePerSecond: number;
  /** Decreases closer together than this count once: one congestion event, many signals. */
  readonly cooldownMs: number;
}

/** The state an AIMD value is derived from: its value right after the last decrease, and when. */
export interface AimdState {
  readonly value: number;
  readonly decreasedAt: number;
}

/**
 * Additive increase, multiplicative decrease (as TCP shares a link): the value recovers linearly
 * with time since the last decrease and halves (`decreaseFactor`) on a congestion signal, at most once
 * per `cooldownMs`. Stored as the value at the last decrease plus its time, so recovery costs no
 * writes and every instance reading the same state computes the same value.
 */
export class Aimd {
  constructor(private readonly o: AimdOptions) {
    if (!(o.min > 0 && o.min <= o.max))
      throw new RangeError(`AIMD needs 0 < min <= max, got ${o.min}, ${o.max}`);
    if (!(o.decreaseFactor > 0 && o.decreaseFactor < 1))
      throw new RangeError(`AIMD decreaseFactor must be in (0, 1), got ${o.decreaseFactor}`);
  }

  /** The state of a value that has never been decreased. */
  initial(): AimdState {
    return { value: this.o.max, decreasedAt: Number.NEGATIVE_INFINITY };
  }

  /** The value at `now`. */
  valueAt(state: AimdState, now: number): number {
    const elapsedS = Math.max(0, now - state.decreasedAt) / 1000;
    return Math.min(this.o.max, state.value + elapsedS * this.o.increasePerSecond);
  }

  /** The state after a congestion signal at `now`, or undefined when it falls in the cooldown. */
  decrease(state: AimdState, now: number): AimdState | undefined {
    if (now - state.decreasedAt < this.o.cooldownMs) return undefined;
    return {
      value: Math.max(this.o.min, this.valueAt(state, now) * this.o.decreaseFactor),
      decreasedAt: now,
    };
  }
}
