import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Waiting } from '../../../../../shared/contracts/stored-item.js';
import type { Priority } from '../../../../../shared/contracts/work-item.js';
import { Admission, type Admitted } from '../../../../../producers/generator/flow/admission.js';
import { CircuitBreaker } from '../../../../../producers/generator/flow/breaker.js';
import { CapacityGate } from '../../../../../producers/generator/flow/capacity.js';
import { FleetQuota } from '../../../../../producers/generator/flow/fleet-quota.js';
import { CountingQuotaStore } from '../../../../support/counting-quota-store.js';
import { QuotaWaitExceededError, ReleasedError } from '../../../../../producers/generator/errors.js';

const PRIMARY = 'anthropic.claude-3-5-haiku-20241022-v1:0';
const FALLBACK = 'us.anthropic.claude-3-5-haiku-20241022-v1:0';

function admission(
  options: { rpm?: Record<string, number>; lagMs?: number; maxWaitMs?: number; initialWindow?: number } = {},
) {
  const now = () => Date.now();
  const rpm = options.rpm ?? { [PRIMARY]: 60 };
  const store = new CountingQuotaStore();
  const quota = new FleetQuota({
    store,
    limitsOf: (model) => ({
      requestsPerMinute: rpm[model] ?? 0,
      tokensPerMinute: 1_000_000,
      outputBurndown: 1,
    }),
    now,
  });
  const breakers = new Map<string, CircuitBreaker>();
  const capacity = new CapacityGate({
    maxRunning: 100,
    lagTargetMs: 1_000,
    readLag: async () =>
      options.lagMs === undefined ? [] : [{ shardId: 'shard-0', lagMs: options.lagMs, at: now() }],
    ...(options.initialWindow === undefined ? {} : { initialWindow: options.initialWindow }),
    now,
  });
  const a = new Admission({
    quota,
    capacity,
    breakerOf: (model) => {
      const b =
        breakers.get(model) ??
        new CircuitBreaker({ failureThreshold: 5, coolDownMs: 1_000, maxCoolDownMs: 8_000, now });
      breakers.set(model, b);
      return b;
    },
    fallbackAfterMs: 5_000,
    maxWaitMs: options.maxWaitMs ?? 600_000,
    ageStepMs: 20_000,
    now,
    onError: (err) => {
      throw err;
    },
  });
  return { a, capacity, store, quota };
}

function ticket(itemId: string, priority: Priority, waiting: Waiting[] = [], waitingSince = Date.now()) {
  return {
    itemId,
    priority,
    models: [PRIMARY, FALLBACK],
    tokens: 100,
    waitingSince,
    signal: new AbortController().signal,
    onWaiting: (reason: Waiting) => waiting.push(reason),
  };
}

describe('Admission', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_800_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('admits a crowd of waiting items with one quota write, in priority order', async () => {
    const { a, store } = admission({ rpm: { [PRIMARY]: 6_000 }, initialWindow: 100 });
    const admitted: string[] = [];
    const tickets = Array.from({ length: 40 }, (_, i) =>
      ticket(`item-${i}`, i % 4 === 0 ? 'high' : 'normal'),
    );
    for (const t of tickets) void a.admit(t).then(() => admitted.push(t.itemId));
    await vi.advanceTimersByTimeAsync(10);
    expect(admitted).toHaveLength(40);
    expect(store.writes).toBe(1);
    // In priority order: the high items first.
    expect(admitted.slice(0, 10).every((id) => Number(id.split('-')[1]) % 4 === 0)).toBe(true);
  });

  it('admits the highest priority first when quota is short, and ages a low item so it never starves', async () => {
    const { a } = admission();
    const order: string[] = [];
    const record = (id: string) => (x: Admitted) => {
      order.push(id);
      a.done();
      return x;
    };
    // Spend the burst, so that each further request waits for quota.
    const warm = Promise.all(
      [0, 1, 2, 3, 4].map((i) => a.admit(ticket(`warm-${i}`, 'high')).then(record(`warm-${i}`))),
    );
    await vi.advanceTimersByTimeAsync(4_000);
    await warm;
    order.length = 0;
    const old = Date.now() - 45_000; // waited 45 s: two age steps up, from low to high
    void a.admit(ticket('low', 'low')).then(record('low'));
    void a.admit(ticket('aged-low', 'low', [], old)).then(record('aged-low'));
    void a.admit(ticket('normal', 'normal')).then(record('normal'));
    void a.admit(ticket('high', 'high')).then(record('high'));
    await vi.advanceTimersByTimeAsync(30_000);
    expect(order).toEqual(['aged-low', 'high', 'normal', 'low']);
  });

  it('says an item waits for quota, and fails it with quota_wait_exceeded after the maximum wait', async () => {
    const { a } = admission({ rpm: { [PRIMARY]: 0 }, maxWaitMs: 10_000 });
    const waiting: Waiting[] = [];
    const result = a
      .admit({ ...ticket('starved', 'high', waiting), models: [PRIMARY] })
      .catch((err: unknown) => err);
    await vi.advanceTimersByTimeAsync(12_000);
    expect(await result).toBeInstanceOf(QuotaWaitExceededError);
    expect(waiting).toEqual(['quota']);
  });

  it('runs an item on its fallback model once the primary has been out of quota for fallbackAfterMs', async () => {
    const { a } = admission({ rpm: { [PRIMARY]: 0, [FALLBACK]: 60 } });
    let admitted: Admitted | undefined;
    void a.admit(ticket('fallback', 'normal')).then((x) => {
      admitted = x;
    });
    await vi.advanceTimersByTimeAsync(4_000);
    expect(admitted).toBeUndefined();
    await vi.advanceTimersByTimeAsync(2_000);
    expect(admitted?.model).toBe(FALLBACK);
  });

  it('holds new items as waiting for capacity while the consumer lag is over its target', async () => {
    const { a, capacity } = admission({ rpm: { [PRIMARY]: 6_000 }, lagMs: 5_000 });
    const admitted: string[] = [];
    const waiting: Waiting[] = [];
    for (let i = 0; i < 200; i++)
      void a.admit(ticket(`item-${i}`, 'normal', waiting)).then(() => admitted.push(`item-${i}`));
    await vi.advanceTimersByTimeAsync(5_000);
    // The window halved once per second from 100; the running generations never finish here.
    expect(capacity.window()).toBeLessThan(100);
    expect(admitted.length).toBeLessThan(100);
    expect(admitted.length).toBe(capacity.inUse);
    expect(waiting).toContain('capacity');
  });

  it('keeps a crowd shown as waiting for capacity through a refusal of quota that ends within a second', async () => {
    const { a, capacity, quota } = admission({ rpm: { [PRIMARY]: 600 }, initialWindow: 10 });
    for (let i = 0; i < 10; i++) capacity.take();
    const shown = new Map<string, Waiting[]>();
    for (let i = 0; i < 50; i++) {
      const waiting: Waiting[] = [];
      shown.set(`item-${i}`, waiting);
      void a.admit(ticket(`item-${i}`, 'normal', waiting));
    }
    await vi.advanceTimersByTimeAsync(50);
    expect([...shown.values()].every((w) => w.join() === 'capacity')).toBe(true);
    // Spend the model's burst: the next request fits again in about 100 ms (600 a minute).
    let refusal: number | undefined;
    while (refusal === undefined) {
      const answer = await quota.tryAcquire(PRIMARY, 100, 'high');
      if (!answer.granted) refusal = answer.retryInMs;
    }
    expect(refusal).toBeLessThan(1_000);
    capacity.done();

    await vi.advanceTimersByTimeAsync(3_000);
    expect(capacity.inUse).toBeGreaterThanOrEqual(10);
    // Items took the freed places as quota allowed; none of the others ever showed a wait for quota.
    expect([...shown.values()].filter((w) => w.join() !== 'capacity')).toEqual([]);
  });

  it('expects an item to wait for capacity once the claims ahead of it fill the window, and for what the queue shows', async () => {
    const { a, capacity } = admission({ rpm: { [PRIMARY]: 0, [FALLBACK]: 0 }, initialWindow: 10 });
    // Nothing queued: room for 10, so the 10th claim in flight would still start and the 11th not.
    expect(a.expectedWait(9)).toBeUndefined();
    expect(a.expectedWait(10)).toBe('capacity');
    for (let i = 0; i < 10; i++) capacity.take();
    expect(a.expectedWait()).toBe('capacity');
    for (let i = 0; i < 10; i++) capacity.done();
    // A queued item waiting for quota (none can be had): a new one would wait for the same.
    void a.admit(ticket('waits', 'normal')).catch(() => {});
    await vi.advanceTimersByTimeAsync(50);
    expect(a.expectedWait()).toBe('quota');
    a.close();
  });

  it('close releases every waiting item and refuses later ones, without admitting them', async () => {
    const { a } = admission({ rpm: { [PRIMARY]: 0, [FALLBACK]: 0 } });
    const waiting: Waiting[] = [];
    const early = a.admit(ticket('early', 'normal', waiting));
    early.catch(() => {});
    await vi.advanceTimersByTimeAsync(50);
    expect(waiting).toEqual(['quota']);
    a.close();
    await expect(early).rejects.toBeInstanceOf(ReleasedError);
    await expect(a.admit(ticket('late', 'high'))).rejects.toBeInstanceOf(ReleasedError);
    expect(a.waiting).toBe(0);
    expect(a.isClosed).toBe(true);
  });
});
