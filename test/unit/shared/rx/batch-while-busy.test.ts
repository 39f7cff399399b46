import type { Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { batchWhileBusy } from '../../../../shared/rx/batch-while-busy.js';

const newScheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

/** A send that answers after 4 frames with the batch joined: 'a','b' → 'ab'. */
const joinAfter4 =
  (cold: (marbles: string, values: Record<string, string>) => Observable<string>) => (batch: string[]) =>
    cold('----(r|)', { r: batch.join('') });

describe('batchWhileBusy', () => {
  it('never emits for a source that never emits', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const result = cold<string>('-').pipe(
        batchWhileBusy(joinAfter4(cold), { maxCount: 10, concurrency: 1 }),
      );
      expectObservable(result).toBe('-');
    });
  });

  it('completes at once for an empty source', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const result = cold<string>('|').pipe(
        batchWhileBusy(joinAfter4(cold), { maxCount: 10, concurrency: 1 }),
      );
      expectObservable(result).toBe('|');
    });
  });

  it('sends a single value at once and completes when its send completes', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const result = cold('a|', { a: 'a' }).pipe(
        batchWhileBusy(joinAfter4(cold), { maxCount: 10, concurrency: 1 }),
      );
      expectObservable(result).toBe('----(r|)', { r: 'a' });
    });
  });

  it('sends each value alone while sends keep up', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a 9ms b 9ms c 9ms |', { a: 'a', b: 'b', c: 'c' });
      const result = source.pipe(batchWhileBusy(joinAfter4(cold), { maxCount: 10, concurrency: 1 }));
      expectObservable(result).toBe('----a 9ms b 9ms c 5ms |', { a: 'a', b: 'b', c: 'c' });
    });
  });

  it('queues values while every send is busy and sends them together when one is free', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('ab-c---|', { a: 'a', b: 'b', c: 'c' });
      const result = source.pipe(batchWhileBusy(joinAfter4(cold), { maxCount: 10, concurrency: 1 }));
      expectObservable(result).toBe('----a---(x|)', { a: 'a', x: 'bc' });
    });
  });

  it('sends values arriving in the same turn as one batch', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('(abc|)', { a: 'a', b: 'b', c: 'c' });
      const result = source.pipe(batchWhileBusy(joinAfter4(cold), { maxCount: 10, concurrency: 1 }));
      expectObservable(result).toBe('----(x|)', { x: 'abc' });
    });
  });

  it('caps a batch at maxCount values, in arrival order', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('(abcde|)', { a: 'a', b: 'b', c: 'c', d: 'd', e: 'e' });
      const result = source.pipe(batchWhileBusy(joinAfter4(cold), { maxCount: 2, concurrency: 1 }));
      expectObservable(result).toBe('----x---y---(z|)', { x: 'ab', y: 'cd', z: 'e' });
    });
  });

  it('caps a batch at maxWeight, and sends a value heavier than maxWeight on its own', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('(abcd|)', { a: 'aaa', b: 'bb', c: 'c', d: 'dddddd' });
      const result = source.pipe(
        batchWhileBusy(joinAfter4(cold), {
          maxCount: 10,
          maxWeight: 4,
          weightOf: (s) => s.length,
          concurrency: 1,
        }),
      );
      expectObservable(result).toBe('----x---y---(z|)', { x: 'aaa', y: 'bbc', z: 'dddddd' });
    });
  });

  it('runs up to `concurrency` sends at once', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a-b-c|', { a: 'a', b: 'b', c: 'c' });
      const result = source.pipe(batchWhileBusy(joinAfter4(cold), { maxCount: 10, concurrency: 2 }));
      // a and b go at once in parallel; c waits for a's send to finish at 4.
      expectObservable(result).toBe('----a-b-(c|)', { a: 'a', b: 'b', c: 'c' });
    });
  });

  it('passes a source error on at once, without waiting for sends in flight', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a-#', { a: 'a' }, new Error('input broke'));
      const result = source.pipe(batchWhileBusy(joinAfter4(cold), { maxCount: 10, concurrency: 1 }));
      expectObservable(result).toBe('--#', undefined, new Error('input broke'));
    });
  });

  it('passes an error of a send on', () => {
    newScheduler().run(({ cold, expectObservable }) => {
      const source = cold('a-b|', { a: 'a', b: 'b' });
      const result = source.pipe(
        batchWhileBusy(() => cold('--#', undefined, new Error('PutRecords failed')), {
          maxCount: 10,
          concurrency: 1,
        }),
      );
      expectObservable(result).toBe('--#', undefined, new Error('PutRecords failed'));
    });
  });

  it('unsubscribes the source and the sends in flight on early unsubscribe', () => {
    newScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const source = cold('a 9ms |', { a: 'a' });
      const inner = cold('----(r|)', { r: 'done' });
      const result = source.pipe(batchWhileBusy(() => inner, { maxCount: 10, concurrency: 1 }));
      expectObservable(result, '^-!').toBe('-');
      expectSubscriptions(source.subscriptions).toBe('^-!');
      expectSubscriptions(inner.subscriptions).toBe('^-!');
    });
  });

  it('rejects impossible limits, naming the value', () => {
    const send = (batch: string[]) => [batch.length];
    expect(() => batchWhileBusy(send, { maxCount: 0, concurrency: 1 })).toThrow(/maxCount .* got 0/);
    expect(() => batchWhileBusy(send, { maxCount: 1, concurrency: 0 })).toThrow(/concurrency .* got 0/);
    expect(() => batchWhileBusy(send, { maxCount: 1, concurrency: 1, maxWeight: 0 })).toThrow(
      /maxWeight .* got 0/,
    );
  });
});
