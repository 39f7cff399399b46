import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ClaimStore } from '../../../../producers/generator/claims.js';
import type { Generation } from '../../../../producers/generator/generation.js';
import { ClaimKeeper } from '../../../../producers/generator/keeper.js';
import type { Logger } from '../../../../shared/telemetry.js';

/** The parts of a generation the keeper reads. */
function generation(itemId: string, phase: 'waiting' | 'running'): Generation {
  return { itemId, phase, attempt: 1, controller: new AbortController() } as unknown as Generation;
}

describe('ClaimKeeper', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_800_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('renews a running lease every quarter of it and a waiting one every half, with its own length', async () => {
    const renewals: Array<{ itemId: string; leaseMs: number }> = [];
    const claims = {
      renew: async (itemId: string, _attempt: number, _signal: AbortSignal, leaseMs: number) => {
        renewals.push({ itemId, leaseMs });
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
    });
    keeper.hold(generation('runs', 'running'));
    keeper.hold(generation('waits', 'waiting'));

    await vi.advanceTimersByTimeAsync(120_000);
    keeper.stop();

    const of = (itemId: string) => renewals.filter((r) => r.itemId === itemId);
    // Running: at 5 s, then every 5 s. Waiting: at 5 s (the first look), then every 30 s.
    expect(of('runs')).toHaveLength(24);
    expect(of('runs').every((r) => r.leaseMs === 20_000)).toBe(true);
    expect(of('waits')).toHaveLength(4);
    expect(of('waits').every((r) => r.leaseMs === 60_000)).toBe(true);
  });
});
