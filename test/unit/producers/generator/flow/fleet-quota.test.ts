import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Priority } from '../../../../../shared/contracts/work-item.js';
import { CountingQuotaStore } from '../../../../support/counting-quota-store.js';
import { FleetQuota } from '../../../../../producers/generator/flow/fleet-quota.js';

const LIMITS = { requestsPerMinute: 120, tokensPerMinute: 40_000, outputBurndown: 1 };
const MODEL = 'anthropic.claude-3-5-haiku-20241022-v1:0';

/** Several instances sharing one store, each with its own cache of the row, on one simulated clock. */
function fleet(instances: number, limits = LIMITS) {
  const clock = { t: 1_000_000 };
  const store = new CountingQuotaStore();
  const quotas = Array.from(
    { length: instances },
    () => new FleetQuota({ store, limitsOf: () => limits, now: () => clock.t }),
  );
  return { clock, store, quotas };
}

/** The largest sum of `amount` over any window of `windowMs`. */
function busiestWindow(grants: Array<{ at: number; amount: number }>, windowMs = 60_000): number {
  let best = 0;
  let sum = 0;
  let from = 0;
  for (const g of grants) {
    sum += g.amount;
    while (grants[from] && (grants[from]?.at ?? 0) <= g.at - windowMs) sum -= grants[from++]?.amount ?? 0;
    best = Math.max(best, sum);
  }
  return best;
}

const PRIORITIES: Priority[] = ['high', 'normal', 'low'];

describe('FleetQuota', () => {
  it('never lets several instances together exceed a model quota in any minute (property, simulated clock)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 6 }),
        fc.array(
          fc.record({
            instance: fc.nat(),
            stepMs: fc.integer({ min: 0, max: 400 }),
            tokens: fc.integer({ min: 50, max: 1_500 }),
            priority: fc.constantFrom(...PRIORITIES),
          }),
          { minLength: 100, maxLength: 600 },
        ),
        async (n, requests) => {
          const { clock, quotas } = fleet(n);
          const grants: Array<{ at: number; amount: number }> = [];
          const calls: Array<{ at: number; amount: number }> = [];
          for (const r of requests) {
            clock.t += r.stepMs;
            const quota = quotas[r.instance % n];
            const answer = await quota?.tryAcquire(MODEL, r.tokens, r.priority);
            if (answer?.granted) {
              grants.push({ at: clock.t, amount: r.tokens });
              calls.push({ at: clock.t, amount: 1 });
            }
          }
          expect(busiestWindow(grants)).toBeLessThanOrEqual(LIMITS.tokensPerMinute);
          expect(busiestWindow(calls)).toBeLessThanOrEqual(LIMITS.requestsPerMinute);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('never exceeds the quota when instances take grants in batches (property, simulated clock)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 5 }),
        fc.array(
          fc.record({
            instance: fc.nat(),
            stepMs: fc.integer({ min: 0, max: 1_500 }),
            batch: fc.array(
              fc.record({
                tokens: fc.integer({ min: 50, max: 1_500 }),
                priority: fc.constantFrom(...PRIORITIES),
              }),
              { minLength: 1, maxLength: 12 },
            ),
          }),
          { minLength: 50, maxLength: 300 },
        ),
        async (n, asks) => {
          const { clock, quotas } = fleet(n);
          const grants: Array<{ at: number; amount: number }> = [];
          const calls: Array<{ at: number; amount: number }> = [];
          for (const ask of asks) {
            clock.t += ask.stepMs;
            const answer = await quotas[ask.instance % n]?.tryAcquireMany(MODEL, ask.batch);
            answer?.grants.forEach((grant, i) => {
              // A prefix, each grant for the request at its place.
              expect(grant.reservedTokens).toBe(ask.batch[i]?.tokens);
              grants.push({ at: clock.t, amount: grant.reservedTokens });
              calls.push({ at: clock.t, amount: 1 });
            });
          }
          expect(busiestWindow(grants)).toBeLessThanOrEqual(LIMITS.tokensPerMinute);
          expect(busiestWindow(calls)).toBeLessThanOrEqual(LIMITS.requestsPerMinute);
        },
      ),
      // Large inputs shrink slowly: report the first counterexample as found.
      { numRuns: 60, endOnFailure: true },
    );
  });

  it('grants a batch exactly what the same requests get one by one, with one write', async () => {
    const requests = [300, 900, 200, 1_200, 400, 700, 100].map((tokens, i) => ({
      tokens,
      priority: PRIORITIES[i % 3] as Priority,
    }));
    const one = fleet(1);
    let singly = 0;
    for (const r of requests) {
      const answer = await one.quotas[0]?.tryAcquire(MODEL, r.tokens, r.priority);
      if (!answer?.granted) break;
      singly++;
    }
    const many = fleet(1);
    const writes = many.store.writes;
    const answer = await many.quotas[0]?.tryAcquireMany(MODEL, requests);
    expect(singly).toBeGreaterThan(1);
    expect(singly).toBeLessThan(requests.length);
    expect(answer?.grants.length).toBe(singly);
    expect(answer?.retryInMs).toBeGreaterThan(0);
    expect(many.store.writes - writes).toBe(1);
    expect(await many.store.read(MODEL)).toEqual(await one.store.read(MODEL));
  });

  it('uses at least 90 % of the quota while four instances keep asking', async () => {
    const { clock, quotas } = fleet(4);
    let requests = 0;
    for (let step = 0; step < 10 * 60 * 20; step++) {
      clock.t += 50;
      const answer = await quotas[step % 4]?.tryAcquire(MODEL, 300, 'normal');
      if (answer?.granted) requests++;
    }
    // Ten minutes at 120 requests/min.
    expect(requests).toBeGreaterThanOrEqual(0.9 * 1_200);
    expect(requests).toBeLessThanOrEqual(1_200 + 2);
  });

  it('charges the output burndown and gives unused reservation back when a request settles', async () => {
    const { clock, quotas } = fleet(1, {
      requestsPerMinute: 6_000,
      tokensPerMinute: 60_000,
      outputBurndown: 5,
    });
    const [quota] = quotas;
    if (!quota) throw new Error('no quota');
    const grant = await quota.tryAcquire(MODEL, 2_000, 'high');
    if (!grant.granted) throw new Error('not granted');
    // 100 input + 400 output × 5 = 2,100: 100 more than reserved, so the next 2,000 wait longer.
    await quota.settle(grant.grant, 100, 400);
    const next = await quota.tryAcquire(MODEL, 2_000, 'high');
    expect(next).toMatchObject({ granted: false, reason: 'quota' });
    clock.t += 10_000;
    expect((await quota.tryAcquire(MODEL, 2_000, 'high')).granted).toBe(true);
  });

  it('lets a high-priority request through where a low-priority one must wait', async () => {
    const { quotas } = fleet(1);
    const [quota] = quotas;
    if (!quota) throw new Error('no quota');
    // Spend the burst down to where only high priority may go.
    while ((await quota.tryAcquire(MODEL, 100, 'low')).granted);
    expect((await quota.tryAcquire(MODEL, 100, 'low')).granted).toBe(false);
    expect((await quota.tryAcquire(MODEL, 100, 'high')).granted).toBe(true);
  });

  it('halves the fleet rate on a throttle, once per cool-down, and every instance reads it', async () => {
    const { clock, quotas } = fleet(2);
    const [a, b] = quotas;
    if (!a || !b) throw new Error('no quota');
    await a.throttled(MODEL);
    await b.throttled(MODEL);
    clock.t += 1_001;
    await b.tryAcquire(MODEL, 10, 'high');
    expect(b.factorOf(MODEL)).toBeCloseTo(0.5, 1);
    clock.t += 60_000;
    await b.tryAcquire(MODEL, 10, 'high');
    expect(b.factorOf(MODEL)).toBe(1);
  });

  it('throttles everything for a model whose limit is 0', async () => {
    const { quotas } = fleet(1, { requestsPerMinute: 0, tokensPerMinute: 40_000, outputBurndown: 1 });
    expect(await quotas[0]?.tryAcquire(MODEL, 1, 'high')).toMatchObject({ granted: false, reason: 'quota' });
  });
});
