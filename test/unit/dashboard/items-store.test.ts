import { describe, expect, it } from 'vitest';
import { durationMs, ItemsStore, timeToFirstTokenMs } from '../../../dashboard/page/items-store.js';
import type { ItemSummary } from '../../../shared/contracts/stored-item.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

function summary(itemId: string, fields: Partial<ItemSummary> = {}): ItemSummary {
  return {
    itemId,
    status: 'streaming',
    attempt: 1,
    modelId: 'anthropic.claude-3-5-haiku-20241022-v1:0',
    tenant: 'default',
    metadata: null,
    usage: null,
    costUsd: null,
    createdAt: iso(T0),
    firstTokenAt: iso(T0 + 300),
    completedAt: null,
    error: null,
    ...fields,
  };
}

const usage = { inputTokens: 10, outputTokens: 200, firstByteLatencyMs: 250, invocationLatencyMs: 1_800 };

describe('ItemsStore', () => {
  it('takes model and timestamps from the query API and status from whichever source is further along', () => {
    // Prepare: the live stream has seen the item complete; the (eventually consistent) list still says streaming
    const store = new ItemsStore();
    store.applyLive({ itemId: 'a', status: 'completed', attempt: 1, usage, costUsd: 0.002 }, T0 + 2_000);

    // Act
    store.applySummary(summary('a'), T0 + 2_100);

    // Assess
    const row = store.get('a');
    expect(row?.status).toBe('completed');
    expect(row?.usage).toEqual(usage);
    expect(row?.costUsd).toBe(0.002);
    expect(row?.modelId).toBe('anthropic.claude-3-5-haiku-20241022-v1:0');
    expect(row?.createdAt).toBe(T0);
    expect(row ? timeToFirstTokenMs(row) : undefined).toBe(300);
  });

  it('never moves a row back to an earlier status of the same attempt', () => {
    const store = new ItemsStore();
    store.applySummary(summary('a', { status: 'completed', usage, completedAt: iso(T0 + 2_000) }), T0);
    const update = store.applyLive({ itemId: 'a', status: 'streaming', attempt: 1 }, T0 + 10);
    expect(update).toEqual({ isNew: false, ended: false });
    expect(store.get('a')?.status).toBe('completed');
  });

  it('lets a later attempt replace a failed one and forgets that attempt’s error and end', () => {
    const store = new ItemsStore();
    const error = { code: 'ModelStreamErrorException', message: 'boom', retryable: true };
    store.applySummary(summary('a', { status: 'failed', error, completedAt: iso(T0 + 900) }), T0);
    store.applyLive({ itemId: 'a', status: 'streaming', attempt: 2 }, T0 + 1_000);
    const row = store.get('a');
    expect(row?.status).toBe('streaming');
    expect(row?.attempt).toBe(2);
    expect(row?.error).toBeUndefined();
    expect(row?.completedAt).toBeUndefined();
  });

  it('reports a new item once and an ending once', () => {
    const store = new ItemsStore();
    expect(store.applyLive({ itemId: 'a', status: 'streaming', attempt: 1 }, T0)).toEqual({
      isNew: true,
      ended: false,
    });
    expect(store.applyLive({ itemId: 'a', status: 'completed', attempt: 1, usage }, T0 + 1)).toEqual({
      isNew: false,
      ended: true,
    });
    expect(store.applyLive({ itemId: 'a', status: 'completed', attempt: 1, usage }, T0 + 2)).toEqual({
      isNew: false,
      ended: false,
    });
  });

  it('lists latest first, filters by status, counts and limits', () => {
    const store = new ItemsStore();
    store.applySummary(summary('old', { createdAt: iso(T0), status: 'completed' }), T0);
    store.applySummary(summary('new', { createdAt: iso(T0 + 5_000) }), T0);
    store.applySummary(summary('mid', { createdAt: iso(T0 + 1_000), status: 'queued' }), T0);
    // Heard of live only: ordered by when the page saw it
    store.applyLive({ itemId: 'live', status: 'streaming', attempt: 1 }, T0 + 3_000);

    expect(store.list('all', 10).map((r) => r.itemId)).toEqual(['new', 'live', 'mid', 'old']);
    expect(store.list('streaming', 10).map((r) => r.itemId)).toEqual(['new', 'live']);
    expect(store.list('all', 2).map((r) => r.itemId)).toEqual(['new', 'live']);
    expect(store.counts()).toEqual({ queued: 1, streaming: 2, completed: 1, failed: 0 });
    expect(store.inFlight()).toBe(3);
  });
});

describe('durations', () => {
  it('runs while streaming, is fixed once completed, and falls back to the model’s latency', () => {
    const store = new ItemsStore();
    store.applySummary(summary('running'), T0);
    store.applySummary(summary('done', { status: 'completed', completedAt: iso(T0 + 1_500), usage }), T0);
    store.applyLive({ itemId: 'live-only', status: 'completed', attempt: 1, usage }, T0);
    expect(durationMs(store.get('running')!, T0 + 4_000)).toBe(4_000);
    expect(durationMs(store.get('done')!, T0 + 9_000)).toBe(1_500);
    expect(durationMs(store.get('live-only')!, T0 + 9_000)).toBe(1_800);
    expect(timeToFirstTokenMs(store.get('live-only')!)).toBe(250);
  });
});
