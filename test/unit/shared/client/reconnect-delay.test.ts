import { describe, expect, it } from 'vitest';
import { reconnectDelayMs } from '../../../../shared/client/index.js';

describe('reconnectDelayMs', () => {
  const options = { initialDelayMs: 100, maxDelayMs: 1_000 };

  it('lies between half the cap and the cap, never 0', () => {
    expect(reconnectDelayMs(1, options, () => 0)).toBe(50);
    expect(reconnectDelayMs(1, options, () => 0.999_999)).toBe(99);
  });

  it('doubles its cap with every retry up to the maximum', () => {
    const caps = [1, 2, 3, 4, 5, 6].map((retry) => reconnectDelayMs(retry, options, () => 0) * 2);
    expect(caps).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });
});
