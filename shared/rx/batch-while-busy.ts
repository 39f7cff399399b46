import {
  asapScheduler,
  from,
  Observable,
  type ObservableInput,
  type OperatorFunction,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';

export interface BatchWhileBusyConfig<T> {
  /** Most values in one batch (e.g. 500 records per Kinesis PutRecords call). */
  readonly maxCount: number;
  /** Most total weight in one batch (e.g. 5 MiB per PutRecords call). Default: unbounded. */
  readonly maxWeight?: number;
  /** Weight of a value; a value heavier than `maxWeight` goes in a batch of its own. Default 1. */
  readonly weightOf?: (value: T) => number;
  /** Most batches being sent at once; values arriving while all are busy wait for the next batch. */
  readonly concurrency: number;
  /**
   * Where a send is started. Values arriving in the same turn of this scheduler ride one batch.
   * Default `asapScheduler` (a microtask), so a burst of synchronous arrivals is one batch.
   */
  readonly scheduler?: SchedulerLike;
}

/**
 * Sends values in batches, adaptively: while fewer than `concurrency` sends are in flight a value
 * leaves at once (with whatever arrived in the same turn); while every send is busy, values queue
 * and the next free send takes as many as fit (`maxCount`, `maxWeight`), in arrival order. Batches
 * therefore stay small under light load and grow under heavy load, with no timer.
 *
 * Emits what the sends emit. Completes when the source has completed and every queued value has
 * been sent and every send has completed. An error of the source or of a send is passed on at once;
 * queued values are dropped then, and on unsubscribe, which also unsubscribes the sends in flight.
 *
 * @example
 * ```ts
 * records$.pipe(
 *   batchWhileBusy((batch) => kinesis.send(new PutRecordsCommand({ StreamName, Records: batch })), {
 *     maxCount: 500,
 *     maxWeight: 5 * 1024 * 1024,
 *     weightOf: (r) => r.Data.length + Buffer.byteLength(r.PartitionKey),
 *     concurrency: 4,
 *   }),
 * );
 * ```
 */
export function batchWhileBusy<T, R>(
  send: (batch: T[]) => ObservableInput<R>,
  config: BatchWhileBusyConfig<T>,
): OperatorFunction<T, R> {
  const { maxCount, concurrency } = config;
  const maxWeight = config.maxWeight ?? Number.POSITIVE_INFINITY;
  const weightOf = config.weightOf ?? (() => 1);
  const scheduler = config.scheduler ?? asapScheduler;
  if (!Number.isInteger(maxCount) || maxCount < 1)
    throw new RangeError(`batchWhileBusy maxCount must be an integer >= 1, got ${maxCount}`);
  if (!Number.isInteger(concurrency) || concurrency < 1)
    throw new RangeError(`batchWhileBusy concurrency must be an integer >= 1, got ${concurrency}`);
  if (!(maxWeight > 0)) throw new RangeError(`batchWhileBusy maxWeight must be > 0, got ${maxWeight}`);

  return (source) =>
    new Observable<R>((subscriber) => {
      let queue: Array<{ value: T; weight: number }> = [];
      let head = 0;
      let active = 0;
      let sourceDone = false;
      let pending: Subscription | undefined;
      const sends = new Set<Subscription>();

      const takeBatch = (): T[] => {
        const batch: T[] = [];
        let weight = 0;
        while (head < queue.length && batch.length < maxCount) {
          const next = queue[head]!;
          if (batch.length > 0 && weight + next.weight > maxWeight) break;
          batch.push(next.value);
          weight += next.weight;
          head++;
        }
        // Compact now and then, so a long-lived queue does not keep sent values alive.
        if (head > 1024 && head * 2 > queue.length) {
          queue = queue.slice(head);
          head = 0;
        }
        return batch;
      };

      const settle = () => {
        if (sourceDone && active === 0 && head >= queue.length && !subscriber.closed) subscriber.complete();
      };

      const pump = () => {
        while (active < concurrency && head < queue.length && !subscriber.closed) {
          const batch = takeBatch();
          active++;
          let finished = false;
          let subscription: Subscription | undefined;
          subscription = from(send(batch)).subscribe({
            next: (result) => subscriber.next(result),
            error: (err: unknown) => subscriber.error(err),
            complete: () => {
              finished = true;
              if (subscription) sends.delete(subscription);
              active--;
              pump();
            },
          });
          if (!finished) sends.add(subscription);
        }
        settle();
      };

      const schedulePump = () => {
        pending ??= scheduler.schedule(() => {
          pending = undefined;
          pump();
        });
      };

      const sourceSubscription = source.subscribe({
        next: (value) => {
          queue.push({ value, weight: weightOf(value) });
          if (active < concurrency) schedulePump();
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => {
          sourceDone = true;
          schedulePump();
        },
      });

      return () => {
        sourceSubscription.unsubscribe();
        pending?.unsubscribe();
        for (const s of sends) s.unsubscribe();
        sends.clear();
        queue = [];
        head = 0;
      };
    });
}
