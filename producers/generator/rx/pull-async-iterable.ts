import { Observable } from 'rxjs';

export interface PullAsyncIterableOptions {
  /**
   * Demand from downstream: the iterator's `next()` is called only while the latest value is true
   * (and not at all before a first value). Default: pull continuously.
   */
  readonly canPull?: Observable<boolean>;
}

/**
 * An async iterable as an Observable that pulls one value at a time, and only on demand: while
 * `canPull` says false, `next()` is not called, so a source with flow control of its own (an HTTP
 * response stream) is paused at the source instead of buffered here. Unsubscribing stops pulling
 * and calls the iterator's `return()`.
 *
 * @example
 * ```ts
 * const buffered = new BehaviorSubject(0);
 * pullAsyncIterable(response.body, { canPull: buffered.pipe(map((bytes) => bytes < cap)) });
 * ```
 */
export function pullAsyncIterable<T>(
  iterable: AsyncIterable<T>,
  options: PullAsyncIterableOptions = {},
): Observable<T> {
  return new Observable<T>((subscriber) => {
    const iterator = iterable[Symbol.asyncIterator]();
    let open = options.canPull === undefined;
    let stopped = false;
    let wake: (() => void) | undefined;

    const demand = options.canPull?.subscribe({
      next: (value) => {
        open = value;
        if (value && wake) {
          const resume = wake;
          wake = undefined;
          resume();
        }
      },
      error: (err: unknown) => subscriber.error(err),
    });

    const pump = async () => {
      try {
        while (!stopped) {
          if (!open) await new Promise<void>((resolve) => (wake = resolve));
          if (stopped) return;
          const result = await iterator.next();
          if (stopped) return;
          if (result.done) return subscriber.complete();
          subscriber.next(result.value);
        }
      } catch (err) {
        if (!stopped) subscriber.error(err);
      }
    };
    void pump();

    return () => {
      stopped = true;
      demand?.unsubscribe();
      wake?.();
      wake = undefined;
      // An iterator busy in next() finishes that first; its settling is of no interest any more.
      iterator.return?.().catch(() => undefined);
    };
  });
}
