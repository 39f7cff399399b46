import { performance } from 'node:perf_hooks';

/**
 * Epoch milliseconds with sub-millisecond resolution. Each thread's `timeOrigin` is taken from the
 * same wall clock, so stamps from the model thread and the main thread can be subtracted.
 */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
