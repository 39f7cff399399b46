import {
  asyncScheduler,
  type MonoTypeOperatorFunction,
  Observable,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { endsWithHighSurrogate, splitUtf8, utf8Length } from '../utf8.js';

export interface CoalesceTextConfig {
  /**
   * Largest UTF-8 size of one emitted chunk, in bytes (at least 4, so any code point fits). A
   * buffer holding this much is flushed at once; longer text leaves in several chunks.
   */
  readonly maxBytes: number;
  /**
   * Least time between two emissions, in ms. Text arriving when the last emission is at least this
   * old leaves at once; text arriving sooner waits until the interval has passed (or the buffer is
   * full). 0 flushes on every value.
   */
  readonly intervalMs: number;
  /**
   * Backpressure from downstream. When given, each emission is "in flight" until `acks` notifies,
   * and nothing more is emitted meanwhile: text accumulates instead, so chunks grow while the
   * consumer is slow and stay small while it keeps up. Default: no gating.
   */
  readonly acks?: Observable<unknown>;
  /** Scheduler of the interval timer. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
}

/**
 * Coalesces a stream of text fragments into fewer, larger chunks, flushed by time and by size,
 * whichever comes first, optionally one chunk in flight at a time.
 *
 * - Time: at most one emission per `intervalMs`; the first fragment after a quiet period leaves at
 *   once (no added latency for a lone or slow source).
 * - Size: a chunk never exceeds `maxBytes` of UTF-8 and a full buffer leaves without waiting for
 *   the interval.
 * - Text is split only at code-point boundaries: a trailing high surrogate is held back until its
 *   low half arrives (or the source completes).
 * - On completion the rest is flushed (still one chunk per ack when gated), then the output
 *   completes. On error the buffer is dropped and the error passes through at once. Unsubscribing
 *   releases the buffer and the timer.
 *
 * @example
 * ```ts
 * const acks = new Subject<void>();
 * modelText$.pipe(
 *   coalesceText({ maxBytes: 4096, intervalMs: 50, acks }),
 *   concatMap((text) => putRecord(text).pipe(tap(() => acks.next()))),
 * );
 * ```
 */
export function coalesceText(config: CoalesceTextConfig): MonoTypeOperatorFunction<string> {
  const { maxBytes, intervalMs, acks } = config;
  if (!Number.isInteger(maxBytes) || maxBytes < 4)
    throw new RangeError(`coalesceText maxBytes must be an integer >= 4, got ${maxBytes}`);
  if (!Number.isFinite(intervalMs) || intervalMs < 0)
    throw new RangeError(`coalesceText intervalMs must be a finite number >= 0, got ${intervalMs}`);
  const scheduler = config.scheduler ?? asyncScheduler;

  return (source) =>
    new Observable<string>((subscriber) => {
      let buffer = '';
      /** Upper bound of `buffer`'s UTF-8 size (a surrogate pair split over two fragments counts 6). */
      let bytes = 0;
      let lastEmitAt = Number.NEGATIVE_INFINITY;
      let inFlight = false;
      let sourceDone = false;
      let flushing = false;
      let timer: Subscription | undefined;

      const cancelTimer = () => {
        timer?.unsubscribe();
        timer = undefined;
      };

      const flush = () => {
        // An ack delivered synchronously from inside `next` lands here: the loop below goes on.
        if (flushing) return;
        flushing = true;
        try {
          while (buffer.length > 0 && !inFlight && !subscriber.closed) {
            const now = scheduler.now();
            const due = sourceDone || bytes >= maxBytes || now - lastEmitAt >= intervalMs;
            if (!due) {
              timer ??= scheduler.schedule(
                () => {
                  timer = undefined;
                  flush();
                },
                lastEmitAt + intervalMs - now,
              );
              return;
            }
            const held = !sourceDone && endsWithHighSurrogate(buffer) ? 1 : 0;
            const [head, rest] = splitUtf8(buffer.slice(0, buffer.length - held), maxBytes);
            // Only a lone high surrogate is buffered: wait for its low half.
            if (head.length === 0) return;
            buffer = rest + buffer.slice(buffer.length - held);
            bytes = utf8Length(buffer);
            cancelTimer();
            lastEmitAt = now;
            if (acks) inFlight = true;
            subscriber.next(head);
          }
          if (sourceDone && buffer.length === 0) subscriber.complete();
        } finally {
          flushing = false;
        }
      };

      const ackSubscription = acks?.subscribe({
        next: () => {
          if (!inFlight) return;
          inFlight = false;
          flush();
        },
        error: (err: unknown) => subscriber.error(err),
      });

      const sourceSubscription = source.subscribe({
        next: (text) => {
          if (text.length === 0) return;
          buffer += text;
          bytes += utf8Length(text);
          flush();
        },
        error: (err: unknown) => {
          buffer = '';
          subscriber.error(err);
        },
        complete: () => {
          sourceDone = true;
          flush();
        },
      });

      return () => {
        cancelTimer();
        ackSubscription?.unsubscribe();
        sourceSubscription.unsubscribe();
        buffer = '';
      };
    });
}
