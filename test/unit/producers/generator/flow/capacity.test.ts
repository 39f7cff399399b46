import { describe, expect, it } from 'vitest';
import { CapacityGate } from '../../../../../producers/generator/flow/capacity.js';
import type { LagReport } from '../../../../../shared/coordination.js';

/** A gate on a simulated clock (an initial window of 50 unless said); the test writes the lag reports. */
function gate(maxRunning = 200, initialWindow: number | null = 50) {
  const clock = { t: 1_000_000 };
  const reports = new Map<string, LagReport>();
  const capacity = new CapacityGate({
    maxRunning,
    lagTargetMs: 1_000,
    readLag: async () => [...reports.values()],
    ...(initialWindow === null ? {} : { initialWindow }),
    now: () => clock.t,
  });
  /** A new report of `shardId`, made now. */
  const report = (lagMs: number, shardId = 'shard-0') =>
    reports.set(shardId, { shardId, lagMs, at: clock.t });
  const start = (n: number) => {
    for (let i = 0; i < n && capacity.hasRoom(); i++) capacity.take();
  };
  /** `n` of the running generations end. */
  const end = (n: number) => {
    for (let i = 0; i < n; i++) capacity.done();
  };
  return { capacity, clock, report, start, end, reports };
}

describe('CapacityGate', () => {
  it('lets a crowd in at the initial window, then grows by a tenth a second while new reports stay under target', async () => {
    const { capacity, clock, report, start } = gate();
    start(1_000);
    expect(capacity.inUse).toBe(50);
    for (let s = 0; s < 3; s++) {
      clock.t += 1_000;
      report(300);
      await capacity.observe();
    }
    start(1_000);
    // 50 → 55 → 60.5 → 66.55
    expect(capacity.inUse).toBe(66);
  });

  it('starts a crowd at 20 by default: its first starts and their claims load the consumer before any lag shows', async () => {
    const { capacity, start } = gate(200, null);
    start(1_000);
    expect(capacity.inUse).toBe(20);
  });

  it('never grows on time alone: without a new report the window holds', async () => {
    const { capacity, clock, report, start } = gate();
    start(50);
    report(300);
    await capacity.observe();
    const before = capacity.window();
    for (let s = 0; s < 10; s++) {
      clock.t += 1_000;
      await capacity.observe();
    }
    expect(capacity.window()).toBe(before);
  });

  it('grows on time while no shard has a fresh report: an idle consumer has nothing to protect', async () => {
    const { capacity, clock, report, start, reports } = gate();
    start(50);
    report(300);
    await capacity.observe();
    reports.clear();
    for (let s = 0; s < 3; s++) {
      clock.t += 1_000;
      await capacity.observe();
    }
    start(1_000);
    // 50 → 55 → 60.5 → 66.55
    expect(capacity.inUse).toBe(66);
  });

  it('halves the window on a new report at twice the target or more, once per cool-down, and not again for the same report', async () => {
    const { capacity, clock, report, start, end } = gate();
    start(50);
    report(5_000);
    await capacity.observe();
    expect(capacity.window()).toBe(25);
    end(25);
    clock.t += 2_500;
    // The same report read again: one congestion, counted once.
    await capacity.observe();
    expect(capacity.window()).toBe(25);
    report(5_000);
    clock.t += 100;
    await capacity.observe();
    expect(capacity.window()).toBe(12);
    end(13);
    report(5_000);
    clock.t += 100;
    await capacity.observe();
    // Within the cool-down of the last decrease.
    expect(capacity.window()).toBe(12);
    expect(capacity.hasRoom()).toBe(false);
  });

  it('shrinks the window in proportion to how far the lag is over the target: by half at most, by a tenth at least', async () => {
    for (const [lagMs, window] of [
      [1_250, 40],
      [1_010, 45],
      [3_000, 25],
    ] as const) {
      const { capacity, report, start } = gate();
      start(50);
      report(lagMs);
      await capacity.observe();
      expect(capacity.window(), `a lag of ${lagMs} ms`).toBe(window);
    }
  });

  it('counts one congestion per window of generations: no second decrease until those running come down to the first one', async () => {
    const { capacity, clock, report, start, end } = gate();
    start(50);
    report(2_000);
    await capacity.observe();
    expect(capacity.window()).toBe(25);
    // Still 50 running, long past the cool-down: the lag still shows the load the decrease answered.
    for (let i = 0; i < 5; i++) {
      clock.t += 3_000;
      report(2_000);
      await capacity.observe();
    }
    expect(capacity.window()).toBe(25);
    // Those running have come down to the window: a lag still over the target is a new congestion.
    end(25);
    clock.t += 3_000;
    report(2_000);
    await capacity.observe();
    expect(capacity.window()).toBe(12);
  });

  it('never halves below its floor, so a consumer slowed by something other than load does not stall the items', async () => {
    const { capacity, clock, report, start, end } = gate();
    start(50);
    for (let i = 0; i < 6; i++) {
      report(5_000);
      await capacity.observe();
      end(capacity.inUse - capacity.window());
      clock.t += 2_000;
    }
    expect(capacity.window()).toBe(10);
  });

  it('takes the largest lag among the shards that reported since the last look, ignoring a quiet shard', async () => {
    const { capacity, clock, report, start } = gate();
    start(50);
    report(5_000, 'quiet');
    report(200, 'busy');
    await capacity.observe();
    expect(capacity.window()).toBe(25);
    clock.t += 3_000;
    report(200, 'busy');
    await capacity.observe();
    // The quiet shard's old report is not read as a new congestion: the window grows.
    expect(capacity.window()).toBeGreaterThan(25);
  });

  it('brings an unused window back to twice what runs, so a crowd after an idle spell is let in gradually', async () => {
    const { capacity, clock, report, start } = gate();
    start(3);
    for (let s = 0; s < 60; s++) {
      clock.t += 1_000;
      report(100);
      await capacity.observe();
    }
    expect(capacity.window()).toBe(50);
    for (let i = 0; i < 3; i++) capacity.done();
    start(1_000);
    expect(capacity.inUse).toBe(50);
  });
});
