/** `closed`: requests flow · `open`: none until the cool-down ends · `half-open`: one probe in flight. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Failures in a row that open the breaker. */
  readonly failureThreshold: number;
  /** How long an opened breaker stays open before it lets one probe through. */
  readonly coolDownMs: number;
  /** Each failed probe doubles the cool-down, up to this. */
  readonly maxCoolDownMs: number;
  readonly now: () => number;
}

/**
 * A circuit breaker for one model: a run of `failureThreshold` unavailability errors opens it; while
 * open nothing is sent (and nothing fails: callers wait); after the cool-down one probe goes through
 * (half-open); its success closes the breaker, its failure opens it again for twice as long.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private failures = 0;
  private openedUntil = 0;
  private coolDownMs: number;

  constructor(private readonly o: BreakerOptions) {
    if (!(o.failureThreshold >= 1))
      throw new RangeError(`failureThreshold must be >= 1, got ${o.failureThreshold}`);
    this.coolDownMs = o.coolDownMs;
  }

  /** The state now (an open breaker whose cool-down ended reads as `half-open`). */
  current(): BreakerState {
    if (this.state === 'open' && this.o.now() >= this.openedUntil) return 'half-open';
    return this.state;
  }

  /**
   * Whether a request may be sent now. In half-open, the first caller gets the probe and the breaker
   * stays half-open (no second probe) until `success` or `failure` reports its result.
   */
  tryPass(): { readonly pass: true } | { readonly pass: false; readonly retryInMs: number } {
    const state = this.current();
    if (state === 'closed') return { pass: true };
    if (state === 'half-open' && this.state === 'open') {
      this.state = 'half-open';
      return { pass: true };
    }
    const retryInMs = state === 'open' ? this.openedUntil - this.o.now() : this.coolDownMs;
    return { pass: false, retryInMs: Math.max(1, retryInMs) };
  }

  /** A request succeeded (its stream opened): closes the breaker. */
  success(): void {
    this.state = 'closed';
    this.failures = 0;
    this.coolDownMs = this.o.coolDownMs;
  }

  /** A request failed with an unavailability error. Returns true when this opened the breaker. */
  failure(): boolean {
    if (this.state === 'half-open') {
      this.coolDownMs = Math.min(this.o.maxCoolDownMs, this.coolDownMs * 2);
      return this.open();
    }
    if (this.state === 'open') return false;
    return ++this.failures >= this.o.failureThreshold ? this.open() : false;
  }

  /** Opens the breaker until `until` (another instance opened it for the fleet). */
  openUntil(until: number): void {
    if (until <= this.o.now() || (this.state === 'open' && this.openedUntil >= until)) return;
    this.state = 'open';
    this.openedUntil = until;
  }

  /** When the breaker, if open, lets a probe through (epoch ms). */
  get reopensAt(): number {
    return this.openedUntil;
  }

  private open(): boolean {
    this.state = 'open';
    this.failures = 0;
    this.openedUntil = this.o.now() + this.coolDownMs;
    return true;
  }
}
