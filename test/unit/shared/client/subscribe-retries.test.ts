import { afterEach, describe, expect, it, vi } from 'vitest';
import { equalJitterDelayMs, SubscribeRetries } from '../../../../shared/client/subscribe-retries.js';

const OPTIONS = {
  failure: { initialDelayMs: 250, maxDelayMs: 10_000 },
  notFound: { initialDelayMs: 100, maxDelayMs: 400, deadlineMs: 1_000 },
  random: () => 1,
};

describe('equalJitterDelayMs', () => {
  it('doubles the cap from the initial delay up to the maximum, jittered within [cap/2, cap]', () => {
    const opts = { initialDelayMs: 100, maxDelayMs: 400 };
    expect([1, 2, 3, 4].map((n) => equalJitterDelayMs(n, opts, opts, () => 1))).toEqual([100, 200, 400, 400]);
    expect(equalJitterDelayMs(3, opts, opts, () => 0)).toBe(200);
  });
});

describe('SubscribeRetries', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('retries not_found with its own backoff until the deadline after the first one, then gives up', () => {
    // Prepare
    let now = 0;
    const retries = new SubscribeRetries({ ...OPTIONS, now: () => now });
    // Act / Assess
    expect(retries.failed('a', 'not_found')).toEqual({ kind: 'retry', delayMs: 100 });
    now = 500;
    expect(retries.failed('a', 'not_found')).toEqual({ kind: 'retry', delayMs: 200 });
    now = 999;
    expect(retries.failed('a', 'not_found')).toEqual({ kind: 'retry', delayMs: 400 });
    now = 1_000;
    expect(retries.failed('a', 'not_found')).toEqual({ kind: 'give-up', waitedMs: 1_000 });
    // Given up: the item starts afresh if asked for again.
    expect(retries.failed('a', 'not_found')).toEqual({ kind: 'retry', delayMs: 100 });
  });

  it('other failures use the reconnect backoff and never give up; a snapshot resets both', () => {
    let now = 0;
    const retries = new SubscribeRetries({ ...OPTIONS, now: () => now });
    expect(retries.failed('a', 'unavailable')).toEqual({ kind: 'retry', delayMs: 250 });
    now = 60_000;
    expect(retries.failed('a', 'unavailable')).toEqual({ kind: 'retry', delayMs: 500 });
    retries.succeeded('a');
    expect(retries.failed('a', 'not_found')).toEqual({ kind: 'retry', delayMs: 100 });
    now = 60_999;
    expect(retries.failed('a', 'not_found').kind).toBe('retry');
  });

  it('runs one retry per item; forgetting or clearing cancels it', () => {
    vi.useFakeTimers();
    const retries = new SubscribeRetries(OPTIONS);
    const ran: string[] = [];
    retries.schedule('a', 100, () => ran.push('a1'));
    retries.schedule('a', 100, () => ran.push('a2'));
    retries.schedule('b', 100, () => ran.push('b'));
    retries.schedule('c', 100, () => ran.push('c'));
    retries.forget('b');
    vi.advanceTimersByTime(100);
    expect(ran).toEqual(['a2', 'c']);
    retries.schedule('a', 100, () => ran.push('a3'));
    retries.clear();
    vi.advanceTimersByTime(1_000);
    expect(ran).toEqual(['a2', 'c']);
  });
});
