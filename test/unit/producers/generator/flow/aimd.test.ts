import { describe, expect, it } from 'vitest';
import { Aimd } from '../../../../../producers/generator/flow/aimd.js';

const aimd = new Aimd({ min: 0.05, max: 1, decreaseFactor: 0.5, increasePerSecond: 0.1, cooldownMs: 2_000 });

describe('Aimd', () => {
  it('halves on a congestion signal and recovers linearly with time, up to its maximum', () => {
    const start = aimd.initial();
    expect(aimd.valueAt(start, 0)).toBe(1);
    const down = aimd.decrease(start, 10_000);
    expect(down).toEqual({ value: 0.5, decreasedAt: 10_000 });
    if (!down) throw new Error('no decrease');
    expect(aimd.valueAt(down, 12_000)).toBeCloseTo(0.7);
    expect(aimd.valueAt(down, 15_000)).toBe(1);
  });

  it('counts signals inside the cool-down as one, and never goes below its minimum', () => {
    let state = aimd.initial();
    let decreases = 0;
    for (let t = 0; t < 40_000; t += 100) {
      const next = aimd.decrease(state, t);
      if (next) {
        state = next;
        decreases++;
      }
    }
    expect(decreases).toBe(20);
    expect(aimd.valueAt(state, 39_900)).toBeGreaterThanOrEqual(0.05);
    expect(aimd.valueAt(state, state.decreasedAt)).toBeLessThan(0.3);
  });

  it('refuses settings that could not back off', () => {
    expect(
      () => new Aimd({ min: 0, max: 1, decreaseFactor: 0.5, increasePerSecond: 1, cooldownMs: 0 }),
    ).toThrow(/min/);
    expect(
      () => new Aimd({ min: 0.1, max: 1, decreaseFactor: 1, increasePerSecond: 1, cooldownMs: 0 }),
    ).toThrow(/decreaseFactor/);
  });
});
