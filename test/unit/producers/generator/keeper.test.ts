import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ClaimStore } from '../../../../producers/generator/claims.js';
import type { Generation, LeaseWrite } from '../../../../producers/generator/generation.js';
import { ClaimKeeper } from '../../../../producers/generator/keeper.js';
import type { Logger } from '../../../../shared/telemetry.js';

/** The parts of a generation the keeper reads. */
function generation(itemId: string, phase: 'waiting' | 'running', leaseWritten?: LeaseWrite): Generation {
  return {
    itemId,
    phase,
    attempt: 1,
    controller: new AbortController(),
    leaseWritten,
  } as unknown as Generation;
}

const T0 = 1_800_000_000_000;

/** A keeper over a claim store that records each renewal: item, lease length and when. */
function keeperRecording(random: () => number) {
  const renewals: Array<{ itemId: string; leaseMs: number; at: number }> = [];
  const claims = {
    renew: async (itemId: string, _attempt: number, _signal: AbortSignal, leaseMs: number) => {
      renewals.push({ itemId, leaseMs, at: Date.now() - T0 });
      return true;
    },
    flags: async () => new Map(),
  } as unknown as ClaimStore;
  const keeper = new ClaimKeeper({
    claims,
    tickMs: 100,
    leaseMs: 20_000,
    waitLeaseMs: 60_000,
    logger: { warn: () => {} } as unknown as Logger,
    now: () => Date.now(),
    random,
  });
  const of = (itemId: string) => renewals.filter((r) => r.itemId === itemId);
  return { keeper, renewals, of };
}

describe('ClaimKeeper', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: T0 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('renews a running lease every quarter of it and a waiting one after its drawn share, with its own length', async () => {
    const { keeper, of } = keeperRecording(() => 0);
    keeper.hold(generation('runs', 'running'));
    keeper.hold(generation('waits', 'waiting'));

    await vi.advanceTimersByTimeAsync(120_000);
    keeper.stop();

    // Running: at 5 s, then every 5 s. Waiting, at a share of a half: at 10 s (half the claim's
    // 20-s lease), then every 30 s.
    expect(of('runs')).toHaveLength(24);
    expect(of('runs').every((r) => r.leaseMs === 20_000)).toBe(true);
    expect(of('waits').map((r) => Math.round(r.at / 1000))).toEqual([10, 40, 70, 100]);
    expect(of('waits').every((r) => r.leaseMs === 60_000)).toBe(true);
  });

  it('counts the lease a waiting mark wrote, renewing it only after its share', async () => {
    const { keeper, of } = keeperRecording(() => 0);
    // The claim's lease, then the waiting mark's 60-s lease a second later.
    keeper.hold(generation('marked', 'waiting', { at: T0 + 1_000, ms: 60_000 }));

    await vi.advanceTimersByTimeAsync(60_000);
    keeper.stop();

    expect(of('marked').map((r) => Math.round(r.at / 1000))).toEqual([31]);
  });

  it('spreads the renewals of a crowd that arrived together, none after its lease ran out', async () => {
    let draw = 0;
    const { keeper, renewals } = keeperRecording(() => (draw++ % 1000) / 1000);
    for (let i = 0; i < 1_000; i++) keeper.hold(generation(`item-${i}`, 'waiting', { at: T0, ms: 60_000 }));

    await vi.advanceTimersByTimeAsync(50_000);
    keeper.stop();

    const perSecond = new Map<number, number>();
    for (const { at } of renewals)
      perSecond.set(Math.floor(at / 1000), (perSecond.get(Math.floor(at / 1000)) ?? 0) + 1);
    // 1,000 renewals between 30 s and 45 s: about 67 a second, never the whole crowd at once.
    expect(renewals).toHaveLength(1_000);
    expect(Math.max(...perSecond.values())).toBeLessThanOrEqual(100);
    expect(Math.min(...renewals.map((r) => r.at))).toBeGreaterThanOrEqual(30_000);
    expect(Math.max(...renewals.map((r) => r.at))).toBeLessThan(46_000);
  });
});
