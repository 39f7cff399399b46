import { type AwsErrorKind, classifyAwsError, RetriesExhaustedError } from './errors.js';

export interface BackoffOptions {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** Delay cap before the first retry, in ms. */
  readonly baseDelayMs: number;
  /** Largest delay cap, in ms. */
  readonly maxDelayMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 2_000 };

/** "Full jitter" delay before retry number `retry` (1-based): uniform in [0, min(max, base·2^(retry-1))]. */
export function backoffDelayMs(
  retry: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * cap);
}

/** Resolves after `ms`, or rejects with the signal's reason when aborted first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOptions extends Partial<BackoffOptions> {
  /** What the operation is, for the error when retries run out. */
  readonly what: string;
  /** Which kinds of failure to retry; default: throttling and transient. */
  readonly retryOn?: (kind: AwsErrorKind, err: unknown) => boolean;
  readonly signal?: AbortSignal;
  /** Called before each retry (metrics, logs). */
  readonly onRetry?: (err: unknown, retry: number, delayMs: number) => void;
}

const retryThrottlingAndTransient = (kind: AwsErrorKind) => kind === 'throttling' || kind === 'transient';

/**
 * Runs `operation`, retrying failures of a retryable kind with exponential backoff and full jitter.
 * A failure of another kind is thrown at once; when attempts run out a `RetriesExhaustedError`
 * carrying the last failure is thrown.
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const backoff = { ...DEFAULT_BACKOFF, ...options };
  const retryOn = options.retryOn ?? retryThrottlingAndTransient;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (err) {
      if (!retryOn(classifyAwsError(err), err)) throw err;
      if (attempt >= backoff.maxAttempts) throw new RetriesExhaustedError(options.what, attempt, err);
      const delay = backoffDelayMs(attempt, backoff);
      options.onRetry?.(err, attempt, delay);
      await sleep(delay, options.signal);
    }
  }
}
