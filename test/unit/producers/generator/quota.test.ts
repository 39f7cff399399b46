import { describe, expect, it } from 'vitest';
import { estimateTokens, ModelQuota, TokenBucket } from '../../../../producers/generator/quota.js';

/** A manual clock; `sleep` advances it, so waiting is instant and exactly measured. */
function fakeClock() {
  let t = 0;
  const sleeps: number[] = [];
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
    sleeps,
    sleep: async (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted();
      sleeps.push(ms);
      t += ms;
    },
  };
}

describe('TokenBucket', () => {
  it('starts full, refills at the per-minute rate and never above capacity', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(60, 10, clock.now); // 1 per second
    expect(bucket.waitMs(10)).toBe(0);
    bucket.take(10);
    expect(bucket.waitMs(1)).toBe(1000);
    clock.advance(2500);
    expect(bucket.available()).toBeCloseTo(2.5);
    clock.advance(60_000);
    expect(bucket.available()).toBe(10);
  });

  it('caps one take at the capacity, so a request larger than the bucket waits for a full bucket only', () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(60, 10, clock.now);
    bucket.take(3);
    expect(bucket.waitMs(1_000)).toBe(3000);
  });

  it('rejects a rate or capacity that could never serve a request', () => {
    expect(() => new TokenBucket(0, 10, Date.now)).toThrow(/rate must be > 0 per minute, got 0/);
    expect(() => new TokenBucket(10, 0, Date.now)).toThrow(/capacity must be >= 1, got 0/);
  });
});

describe('ModelQuota', () => {
  it('lets a burst within the quota through at once and spreads the rest at the request rate', async () => {
    const clock = fakeClock();
    // 60 requests/min with 10 s of burst: 10 at once, then one per second.
    const quota = new ModelQuota({
      requestsPerMinute: 60,
      tokensPerMinute: 1_000_000,
      now: clock.now,
      sleep: clock.sleep,
    });
    const served: number[] = [];
    await Promise.all(
      Array.from({ length: 13 }, () => quota.acquire(1).then(() => served.push(clock.now()))),
    );
    expect(served).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1000, 2000, 3000]);
  });

  it('holds requests back by tokens per minute, and refunds an over-estimate when settled', async () => {
    const clock = fakeClock();
    const quota = new ModelQuota({
      requestsPerMinute: 1_000,
      tokensPerMinute: 6_000, // 100 tokens/s, 1,000 tokens of burst
      now: clock.now,
      sleep: clock.sleep,
    });
    const first = await quota.acquire(800);
    const second = quota.acquire(800);
    // Only 200 left: the second must wait for 600 more tokens, i.e. 6 s...
    quota.settle(first, 300); // ...unless the first used only 300: 700 available now.
    await second;
    expect(clock.now()).toBe(1000);
    expect(clock.sleeps).toEqual([1000]);
  });

  it('stops waiting when aborted and does not hold up the callers behind it', async () => {
    const clock = fakeClock();
    const quota = new ModelQuota({
      requestsPerMinute: 6,
      tokensPerMinute: 1_000_000,
      now: clock.now,
      sleep: clock.sleep,
    });
    await quota.acquire(1); // the one request of burst is spent
    const aborted = new AbortController();
    aborted.abort(new Error('cancelled'));
    await expect(quota.acquire(1, aborted.signal)).rejects.toThrow('cancelled');
    const next = await quota.acquire(1);
    expect(next.waitedMs).toBe(10_000);
  });
});

describe('estimateTokens', () => {
  it('counts about four UTF-8 bytes per token, rounding up', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('abcde')).toBe(2);
    expect(estimateTokens('😀😀')).toBe(2);
  });
});
