import { BehaviorSubject, firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { pullAsyncIterable } from '../../../../producers/generator/rx/pull-async-iterable.js';

/** An async iterable over `values` that counts pulls and records whether it was closed. */
function counted<T>(values: T[], failAt?: number) {
  const state = { pulls: 0, returned: false };
  const iterable: AsyncIterable<T> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        const i = state.pulls++;
        if (i === failAt) throw new Error(`source failed at ${i}`);
        return i < values.length ? { value: values[i] as T, done: false } : { value: undefined, done: true };
      },
      return: async () => {
        state.returned = true;
        return { value: undefined, done: true };
      },
    }),
  };
  return { iterable, state };
}

/** Resolves once `check` holds, or fails after 2 s. */
async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached within 2 s');
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe('pullAsyncIterable', () => {
  it('completes without values for an empty iterable', async () => {
    const { iterable } = counted<number>([]);
    await expect(lastValueFrom(pullAsyncIterable(iterable).pipe(toArray()))).resolves.toEqual([]);
  });

  it('emits one value, then many, in order', async () => {
    await expect(lastValueFrom(pullAsyncIterable(counted([7]).iterable).pipe(toArray()))).resolves.toEqual([
      7,
    ]);
    await expect(
      lastValueFrom(pullAsyncIterable(counted([1, 2, 3]).iterable).pipe(toArray())),
    ).resolves.toEqual([1, 2, 3]);
  });

  it('passes the iterator error on', async () => {
    const { iterable } = counted([1, 2, 3], 1);
    await expect(lastValueFrom(pullAsyncIterable(iterable))).rejects.toThrow('source failed at 1');
  });

  it('never calls next() before there is demand, and pulls everything once demand comes', async () => {
    const { iterable, state } = counted([1, 2, 3, 4]);
    const demand = new BehaviorSubject(false);
    const done = lastValueFrom(pullAsyncIterable(iterable, { canPull: demand }).pipe(toArray()));
    // Several turns of the event loop: a pull, had there been one, would have happened by now.
    await new Promise((r) => setTimeout(r, 20));
    expect(state.pulls).toBe(0);
    demand.next(true);
    await expect(done).resolves.toEqual([1, 2, 3, 4]);
  });

  it('stops pulling as soon as demand is withdrawn from inside a value', async () => {
    const { iterable, state } = counted([1, 2, 3, 4, 5]);
    const demand = new BehaviorSubject(true);
    const seen: number[] = [];
    const sub = pullAsyncIterable(iterable, { canPull: demand }).subscribe((v) => {
      seen.push(v);
      if (v === 2) demand.next(false);
    });
    await until(() => seen.length === 2);
    await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([1, 2]);
    expect(state.pulls).toBe(2);
    demand.next(true);
    await until(() => seen.length === 5);
    sub.unsubscribe();
  });

  it('calls return() and stops pulling on early unsubscribe', async () => {
    const { iterable, state } = counted([1, 2, 3, 4, 5]);
    const first = await firstValueFrom(pullAsyncIterable(iterable).pipe(take(1)));
    expect(first).toBe(1);
    await until(() => state.returned);
    const pullsAtStop = state.pulls;
    await new Promise((r) => setTimeout(r, 20));
    expect(state.pulls).toBe(pullsAtStop);
  });

  it('never pulls after unsubscribing while paused', async () => {
    const { iterable, state } = counted([1, 2, 3]);
    const demand = new BehaviorSubject(false);
    const sub = pullAsyncIterable(iterable, { canPull: demand }).subscribe();
    sub.unsubscribe();
    demand.next(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(state.pulls).toBe(0);
    expect(state.returned).toBe(true);
  });
});
