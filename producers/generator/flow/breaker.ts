/** `closed`: requests flow · `open`: none until the cool-down ends · `half-open`: one probe at a time. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Failures in a row that open the breaker. */
  readonly failureThreshold: number;
  /** How long an opened breaker stays open before it lets one probe through. */
  readonly coolDownMs: number;
  /** Each failed probe doubles the cool-down, up to this. */
  readonly maxCoolDownMs: number;
  /**
   * Longest a probe holds the half-open breaker without a verdict: after it, another request may
   * probe. A probe whose caller died, or ended without learning whether the model is available, so
   * never keeps the model closed to every request. Default 30 s.
   */
  readonly probeTimeoutMs?: number;
  readonly now: () => number;
}

/**
 * A circuit breaker for one model: a run of `failureThreshold` unavailability errors opens it; while
 * open nothing is sent (and nothing fails: callers wait); after the cool-down one probe goes through
 * (half-open); its success closes the breaker, its failure opens it again for twice as long. A probe
 * that ends without a verdict (`release`) or never reports (`probeTimeoutMs`) lets the next one go.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed';
  private failures = 0;
  private openedUntil = 0;
  private coolDownMs: number;
  /** The probe now holding the half-open breaker, and until when. */
  private probe = 0;
  private probeUntil = 0;

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
   * Whether a request may be sent now. In half-open, the first caller gets the probe (its number in
   * `probe`) and no second probe goes until `success` or `failure` reports its result, `release`
   * hands it back, or `probeTimeoutMs` passes.
   */
  tryPass():
    | { readonly pass: true; readonly probe?: number }
    | { readonly pass: false; readonly retryInMs: number } {
    const state = this.current();
    if (state === 'closed') return { pass: true };
    const now = this.o.now();
    if (state === 'half-open' && (this.state === 'open' || now >= this.probeUntil)) {
      this.state = 'half-open';
      this.probeUntil = now + (this.o.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS);
      return { pass: true, probe: ++this.probe };
    }
    const retryInMs = state === 'open' ? this.openedUntil - now : this.probeUntil - now;
    return { pass: false, retryInMs: Math.max(1, retryInMs) };
  }

  /**
   * Probe `probe` ended without a verdict on the model's availability (throttled, superseded, its
   * item failed for another reason): the next request may probe now. Any other probe is unaffected.
   */
  release(probe: number): void {
    if (this.state === 'half-open' && probe === this.probe) this.probeUntil = 0;
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
    this.probeUntil = 0;
    this.state = 'open';
    this.failures = 0;
    this.openedUntil = this.o.now() + this.coolDownMs;
    return true;
  }
}

const DEFAULT_PROBE_TIMEOUT_MS = 30_000;
