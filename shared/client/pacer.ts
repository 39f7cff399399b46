/** How fast a `Pacer` lets messages through. */
export interface PacerOptions {
  /** Messages a second, on average. */
  readonly perSecond: number;
  /** Messages at once, after a quiet spell. */
  readonly burst: number;
  readonly now?: () => number;
}

/**
 * A token bucket in front of a connection: messages go out at once while the bucket holds tokens,
 * and wait their turn, in order, once it is empty. The server drops what a connection sends past
 * its rate limit without answering it, so a client that sends a burst (every unfinished item
 * resubscribed on a reconnect) must keep under the limit itself.
 */
export class Pacer<T> {
  private readonly queue: T[] = [];
  private tokens: number;
  private refilledAt: number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly now: () => number;

  /** `deliver` sends one message, or returns false when it cannot now (it is kept for the next flush). */
  constructor(
    private readonly o: PacerOptions,
    private readonly deliver: (message: T) => boolean,
  ) {
    if (!(o.perSecond > 0 && o.burst >= 1))
      throw new RangeError(`a pacer needs perSecond > 0 and burst >= 1, got ${o.perSecond} and ${o.burst}`);
    this.now = o.now ?? Date.now;
    this.tokens = o.burst;
    this.refilledAt = this.now();
  }

  /** Messages waiting their turn. */
  get waiting(): number {
    return this.queue.length;
  }

  push(message: T): void {
    this.queue.push(message);
    this.flush();
  }

  /** Sends what the bucket allows now; `deliver` refusing stops the flush until the next call. */
  flush(): void {
    const now = this.now();
    this.tokens = Math.min(this.o.burst, this.tokens + ((now - this.refilledAt) / 1000) * this.o.perSecond);
    this.refilledAt = now;
    while (this.queue.length > 0 && this.tokens >= 1) {
      if (!this.deliver(this.queue[0] as T)) return;
      this.queue.shift();
      this.tokens--;
    }
    if (this.queue.length === 0 || this.timer !== undefined) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.flush();
      },
      Math.max(1, ((1 - this.tokens) / this.o.perSecond) * 1000),
    );
  }

  /** Drops every waiting message, returning them (a connection closed: its requests are void). */
  clear(): T[] {
    clearTimeout(this.timer);
    this.timer = undefined;
    return this.queue.splice(0);
  }
}
