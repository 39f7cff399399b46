/** Backoff of a repeated request: delay caps grow from `initialDelayMs` to `maxDelayMs`. */
export interface BackoffOptions {
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
}

/**
 * Delay before retry number `retry` (from 1): an exponential cap, min(max, initial·2ʳ⁻¹), with
 * "equal jitter" (uniform in [cap/2, cap]), never 0, so a refusing server is not hammered.
 */
export function equalJitterDelayMs(
  retry: number,
  options: BackoffOptions,
  defaults: Required<BackoffOptions>,
  random: () => number,
): number {
  const initial = options.initialDelayMs ?? defaults.initialDelayMs;
  const cap = Math.min(options.maxDelayMs ?? defaults.maxDelayMs, initial * 2 ** Math.max(0, retry - 1));
  return Math.floor(cap / 2 + (random() * cap) / 2);
}

/** How the subscribes of one client are retried. */
export interface SubscribeRetryOptions {
  /** Backoff after a failure other than `not_found` (the reconnect backoff). */
  readonly failure: Required<BackoffOptions>;
  /** Backoff after `not_found`, and how long after the first one the client stops asking. */
  readonly notFound: Required<BackoffOptions> & { readonly deadlineMs: number };
  readonly random: () => number;
  readonly now?: () => number;
}

/** What to do after a failed subscribe. */
export type RetryDecision =
  | { readonly kind: 'retry'; readonly delayMs: number }
  | { readonly kind: 'give-up'; readonly waitedMs: number };

/**
 * The one owner of a client's subscribe retries: counts failures per item, keeps the time an item
 * was first answered `not_found` (an item that does not exist yet is asked for until a deadline),
 * and holds the retry timers so that unsubscribing or closing cancels them.
 */
export class SubscribeRetries {
  readonly #options: SubscribeRetryOptions;
  readonly #failures = new Map<string, number>();
  readonly #notFoundSince = new Map<string, number>();
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(options: SubscribeRetryOptions) {
    this.#options = options;
  }

  /** A subscribe of `itemId` was answered with an error of `code`: when to ask again, or give up. */
  failed(itemId: string, code: string | undefined): RetryDecision {
    const { failure, notFound, random } = this.#options;
    const now = (this.#options.now ?? Date.now)();
    const failures = (this.#failures.get(itemId) ?? 0) + 1;
    this.#failures.set(itemId, failures);
    if (code !== 'not_found')
      return { kind: 'retry', delayMs: equalJitterDelayMs(failures, failure, failure, random) };
    const since = this.#notFoundSince.get(itemId) ?? now;
    this.#notFoundSince.set(itemId, since);
    if (now - since >= notFound.deadlineMs) {
      this.forget(itemId);
      return { kind: 'give-up', waitedMs: now - since };
    }
    return { kind: 'retry', delayMs: equalJitterDelayMs(failures, notFound, notFound, random) };
  }

  /** Runs `retry` after `delayMs`, replacing a retry of the same item already waiting. */
  schedule(itemId: string, delayMs: number, retry: () => void): void {
    clearTimeout(this.#timers.get(itemId));
    this.#timers.set(
      itemId,
      setTimeout(() => {
        this.#timers.delete(itemId);
        retry();
      }, delayMs),
    );
  }

  /** The item's snapshot arrived: its next failure starts a fresh backoff. */
  succeeded(itemId: string): void {
    this.#failures.delete(itemId);
    this.#notFoundSince.delete(itemId);
  }

  /** The item is no longer watched: its pending retry is cancelled. */
  forget(itemId: string): void {
    this.succeeded(itemId);
    clearTimeout(this.#timers.get(itemId));
    this.#timers.delete(itemId);
  }

  /** Cancels every pending retry (the client closed). */
  clear(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#failures.clear();
    this.#notFoundSince.clear();
  }
}
