import { sleep } from '../../shared/retry.js';

/**
 * A token bucket: holds up to `capacity`, refilled continuously at `perMinute / 60 000` per ms. Its
 * level may go below zero when a reservation turns out larger than estimated (the debt is then
 * repaid by waiting longer next time).
 */
export class TokenBucket {
  readonly capacity: number;
  private readonly perMs: number;
  private level: number;
  private updatedAt: number;

  constructor(
    perMinute: number,
    capacity: number,
    private readonly now: () => number,
  ) {
    if (!(perMinute > 0)) throw new RangeError(`token bucket rate must be > 0 per minute, got ${perMinute}`);
    if (!(capacity >= 1)) throw new RangeError(`token bucket capacity must be >= 1, got ${capacity}`);
    this.perMs = perMinute / 60_000;
    this.capacity = capacity;
    this.level = capacity;
    this.updatedAt = now();
  }

  private refill(): void {
    const t = this.now();
    this.level = Math.min(this.capacity, this.level + (t - this.updatedAt) * this.perMs);
    this.updatedAt = t;
  }

  /** Ms until `amount` (capped at the capacity) is available; 0 when it is now. */
  waitMs(amount: number): number {
    this.refill();
    const need = Math.min(amount, this.capacity) - this.level;
    return need <= 0 ? 0 : Math.ceil(need / this.perMs);
  }

  /** Takes `amount` (capped at the capacity, so one large request cannot wait forever). */
  take(amount: number): void {
    this.refill();
    this.level -= Math.min(amount, this.capacity);
  }

  /** Gives back `amount` (an over-estimate), or takes more when negative (an under-estimate). */
  adjust(amount: number): void {
    this.refill();
    this.level = Math.min(this.capacity, this.level + amount);
  }

  /** The current level (tests, stats). */
  available(): number {
    this.refill();
    return this.level;
  }
}

/** What `acquire` took, to settle once the real token count is known. */
export interface QuotaReservation {
  readonly tokens: number;
  /** Ms spent waiting for the quota. */
  readonly waitedMs: number;
}

export interface ModelQuotaOptions {
  readonly requestsPerMinute: number;
  readonly tokensPerMinute: number;
  /** How many seconds of quota may be spent in one burst. Default 10. */
  readonly burstSeconds?: number;
  readonly now?: () => number;
  /** Waits (tests inject a fake). Default: `sleep` from shared/retry. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * Client-side quota of one model: requests per minute and tokens per minute, each a token bucket
 * holding `burstSeconds` of quota, so a burst of work items spreads out instead of becoming a storm
 * of throttles. Callers are served in arrival order.
 */
export class ModelQuota {
  private readonly requests: TokenBucket;
  private readonly tokens: TokenBucket;
  private readonly now: () => number;
  private readonly wait: (ms: number, signal?: AbortSignal) => Promise<void>;
  private tail: Promise<void> = Promise.resolve();

  constructor(options: ModelQuotaOptions) {
    this.now = options.now ?? Date.now;
    this.wait = options.sleep ?? sleep;
    const burst = (options.burstSeconds ?? 10) / 60;
    this.requests = new TokenBucket(
      options.requestsPerMinute,
      Math.max(1, options.requestsPerMinute * burst),
      this.now,
    );
    this.tokens = new TokenBucket(
      options.tokensPerMinute,
      Math.max(1, options.tokensPerMinute * burst),
      this.now,
    );
  }

  /**
   * Waits until one request and `estimatedTokens` fit, then takes them. Rejects with the signal's
   * reason when aborted while waiting (nothing is taken then).
   */
  acquire(estimatedTokens: number, signal?: AbortSignal): Promise<QuotaReservation> {
    const start = this.now();
    const turn = this.tail.then(async () => {
      for (;;) {
        signal?.throwIfAborted();
        const ms = Math.max(this.requests.waitMs(1), this.tokens.waitMs(estimatedTokens));
        if (ms === 0) break;
        await this.wait(ms, signal);
      }
      this.requests.take(1);
      this.tokens.take(estimatedTokens);
      return { tokens: estimatedTokens, waitedMs: this.now() - start };
    });
    // The next caller waits for this one's turn, whether it was served or aborted.
    this.tail = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  /** Corrects a reservation once the attempt's real token count is known. */
  settle(reservation: QuotaReservation, actualTokens: number): void {
    this.tokens.adjust(reservation.tokens - actualTokens);
  }

  /** Tokens available now (tests, stats). */
  availableTokens(): number {
    return this.tokens.available();
  }
}

/** One `ModelQuota` per foundation model, created on first use and kept for the process's life. */
export class QuotaRegistry {
  private readonly quotas = new Map<string, ModelQuota>();
  constructor(private readonly options: ModelQuotaOptions) {}

  forModel(foundationModelId: string): ModelQuota {
    let quota = this.quotas.get(foundationModelId);
    if (!quota) {
      quota = new ModelQuota(this.options);
      this.quotas.set(foundationModelId, quota);
    }
    return quota;
  }
}

/**
 * A rough token count of a prompt (about 4 bytes of UTF-8 per token), used only to reserve quota
 * before the model reports the real count.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
}
