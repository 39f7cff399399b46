import { describe, expect, it } from 'vitest';
import { CapacityGate } from '../../../../../producers/generator/flow/capacity.js';

/** A gate on a simulated clock whose consumer lag the test sets. */
function gate(maxRunning = 200) {
  const clock = { t: 1_000_000 };
  const lag: { ms: number | undefined } = { ms: undefined };
  const capacity = new CapacityGate({
    maxRunning,
    lagTargetMs: 1_000,
    readLagMs: async () => lag.ms,
    now: () => clock.t,
  });
  const start = (n: number) => {
    for (let i = 0; i < n && capacity.hasRoom(); i++) capacity.take();
  };
  return { capacity, clock, lag, start };
}

describe('CapacityGate', () => {
  it('lets a crowd in at the initial window, then more as time passes with the lag under target', async () => {
    const { capacity, clock, lag, start } = gate();
    start(1_000);
    expect(capacity.inUse).toBe(50);
    lag.ms = 300;
    clock.t += 1_000;
    await capacity.observe();
    start(1_000);
    // 200 / 50 = 4 more per second.
    expect(capacity.inUse).toBe(54);
  });

  it('halves the window while the consumer lags, once per cool-down', async () => {
    const { capacity, clock, lag, start } = gate();
    clock.t += 10_000;
    start(90);
    await capacity.observe();
    const before = capacity.window();
    lag.ms = 5_000;
    await capacity.observe();
    await capacity.observe();
    expect(capacity.window()).toBe(Math.floor(before / 2));
    expect(capacity.hasRoom()).toBe(false);
  });

  it('brings an unused window back to twice what runs, so a crowd after an idle spell is let in gradually', async () => {
    const { capacity, clock, lag, start } = gate();
    lag.ms = 100;
    start(3);
    clock.t += 60_000;
    await capacity.observe();
    expect(capacity.window()).toBe(50);
    for (let i = 0; i < 3; i++) capacity.done();
    start(1_000);
    expect(capacity.inUse).toBe(50);
  });
});
