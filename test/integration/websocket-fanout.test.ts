import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FRAME_BYTES, type ServerMessage } from '../../shared/contracts/websocket.js';
import { type DeliveryWorld, startDeliveryWorld, type Viewer, waitUntil } from './websocket-helpers.js';

const USAGE = { inputTokens: 12, outputTokens: 34 };

/** The text of a viewer's deltas for an item, joining split frames. */
const deltaText = (viewer: Viewer, itemId: string) =>
  viewer.messages
    .filter((m): m is Extract<ServerMessage, { type: 'delta' }> => m.type === 'delta' && m.itemId === itemId)
    .map((m) => m.text)
    .join('');

describe('fan-out of consumer batches to viewers', () => {
  let world: DeliveryWorld;
  let sequence = 0;
  const newItem = async () => {
    const itemId = `fan-${++sequence}`;
    await world.items.create(itemId);
    return itemId;
  };
  /** A viewer subscribed to `itemId` (or every item), past its snapshot. */
  const subscriber = async (itemId: string | 'all') => {
    const viewer = await world.connect();
    if (itemId === 'all') {
      viewer.send({ action: 'subscribe', all: true });
      await waitUntil('the every-item subscription is stored', async () =>
        (await world.rows('subs#*')).some((r) => r.sk === viewer.connectionId),
      );
    } else {
      viewer.send({ action: 'subscribe', itemId });
      await viewer.next('snapshot', (m) => m.itemId === itemId);
    }
    return viewer;
  };

  beforeAll(async () => {
    world = await startDeliveryWorld({
      env: { FANOUT_CONCURRENCY: '4' },
      postPolicy: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, deadlineMs: 500 },
    });
  });
  afterAll(async () => {
    await world?.stop();
  });

  it('sends every subscriber reset, one coalesced delta and done, in order', async () => {
    // Prepare
    const itemId = await newItem();
    const viewers = await Promise.all([subscriber(itemId), subscriber(itemId), subscriber('all')]);
    const before = world.fanout.stats();
    // Act
    const first = await world.items.apply(itemId, { texts: ['Hel', 'lo, '] });
    await world.fanout.publish([first]);
    const last = await world.items.apply(itemId, { texts: ['world'], end: { usage: USAGE, costUsd: 0.5 } });
    await world.fanout.publish([last]);
    // Assess
    for (const viewer of viewers) {
      const live = viewer.messages.filter((m) => m.type !== 'snapshot');
      expect(live).toEqual([
        { type: 'reset', itemId, attempt: 1 },
        { type: 'delta', itemId, attempt: 1, fromSeq: 0, toSeq: 1, text: 'Hello, ' },
        { type: 'delta', itemId, attempt: 1, fromSeq: 2, toSeq: 3, text: 'world' },
        { type: 'done', itemId, attempt: 1, usage: USAGE, costUsd: 0.5, seq: 3 },
      ]);
    }
    const after = world.fanout.stats();
    // Two batches × three viewers; the first batch has two frames (reset, delta), the second two (delta, done).
    expect(after.deliveries - before.deliveries).toBe(6);
    expect(after.posts - before.posts).toBe(12);
    for (const viewer of viewers) await world.disconnect(viewer);
  });

  it('a viewer subscribed to the item and to every item gets each frame once', async () => {
    const itemId = await newItem();
    const viewer = await subscriber(itemId);
    viewer.send({ action: 'subscribe', all: true });
    await waitUntil('the every-item subscription is stored', async () =>
      (await world.rows('subs#*')).some((r) => r.sk === viewer.connectionId),
    );
    await world.fanout.publish([await world.items.apply(itemId, { texts: ['once'] })]);
    await waitUntil('the delta arrives', () => deltaText(viewer, itemId) === 'once');
    expect(viewer.messages.filter((m) => m.type === 'delta')).toHaveLength(1);
    await world.disconnect(viewer);
  });

  it("delivers the updates of several items in one batch to each item's viewers only", async () => {
    const [a, b] = [await newItem(), await newItem()];
    const [viewerA, viewerB] = [await subscriber(a), await subscriber(b)];
    await world.fanout.publish([
      await world.items.apply(a, { texts: ['for a'] }),
      await world.items.apply(b, { texts: ['for b'] }),
    ]);
    await waitUntil(
      'both deltas arrive',
      () => deltaText(viewerA, a) === 'for a' && deltaText(viewerB, b) === 'for b',
    );
    expect(viewerA.messages.some((m) => 'itemId' in m && m.itemId === b)).toBe(false);
    expect(viewerB.messages.some((m) => 'itemId' in m && m.itemId === a)).toBe(false);
  });

  it('splits a delta over 32 KB into frames under the limit that join to the batch text', async () => {
    // Prepare: text heavy in JSON escapes and multi-byte code points, ~108 KB serialized.
    const itemId = await newItem();
    const viewer = await subscriber(itemId);
    const text = 'line "one"\n\t😀 ünïcödé \\ '.repeat(3_000);
    // Act
    await world.fanout.publish([await world.items.apply(itemId, { texts: [text] })]);
    // Assess
    await waitUntil('the whole delta arrives', () => deltaText(viewer, itemId).length === text.length);
    const frames = viewer.messages.filter((m) => m.type === 'delta');
    expect(frames.length).toBe(4);
    expect(deltaText(viewer, itemId)).toBe(text);
    expect(frames.slice(0, -1).every((m) => m.type === 'delta' && m.more === true)).toBe(true);
    expect(frames.at(-1)).not.toHaveProperty('more');
    expect(frames.every((m) => m.type === 'delta' && m.fromSeq === 0 && m.toSeq === 0)).toBe(true);
    expect(Math.max(...viewer.sizes)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    // Frames are filled: all but the last within a few bytes (one escaped code point) of the limit.
    const deltaSizes = viewer.sizes.slice(-frames.length, -1);
    expect(Math.min(...deltaSizes)).toBeGreaterThan(MAX_FRAME_BYTES - 8);
    expect(world.gateway.stats().oversizedPosts).toBe(0);
  });

  it('sends failed with the error when a batch fails the item', async () => {
    const itemId = await newItem();
    const viewer = await subscriber(itemId);
    const error = { code: 'cancelled', message: 'cancelled by a viewer', retryable: false };
    await world.fanout.publish([
      await world.items.apply(itemId, { texts: ['partial'], error: { error, final: true } }),
    ]);
    // The error record follows the one delta: seq 1.
    expect(await viewer.next('failed')).toEqual({ type: 'failed', itemId, attempt: 1, error, seq: 1 });
  });

  it('cleans up a connection closed without $disconnect on its first 410, and never posts to it again', async () => {
    // Prepare: a viewer whose socket vanishes without $disconnect, and one that stays.
    const itemId = await newItem();
    const [gone, staying] = [await subscriber(itemId), await subscriber(itemId)];
    const goneConnection = gone.connectionId;
    await world.gateway.dropConnection(goneConnection, { notify: false });
    expect((await world.rows(`conn#${goneConnection}`)).length).toBe(2);
    const before = world.fanout.stats();
    // Act
    await world.fanout.publish([await world.items.apply(itemId, { texts: ['one'] })]);
    const middle = world.fanout.stats();
    await world.fanout.publish([await world.items.apply(itemId, { texts: ['two'] })]);
    const after = world.fanout.stats();
    // Assess
    expect(middle.goneConnections - before.goneConnections).toBe(1);
    expect(await world.rows(`conn#${goneConnection}`)).toEqual([]);
    expect((await world.rows(`subs#${itemId}`)).map((r) => r.sk)).not.toContain(goneConnection);
    // Second batch: one delivery, to the staying viewer only (reset + delta in the first, delta now).
    expect(after.deliveries - middle.deliveries).toBe(1);
    expect(after.posts - middle.posts).toBe(1);
    await waitUntil('the staying viewer has both deltas', () => deltaText(staying, itemId) === 'onetwo');
  });

  it('retries a throttled post with backoff and delivers', async () => {
    const itemId = await newItem();
    const viewer = await subscriber(itemId);
    world.gateway.injectFault(viewer.connectionId, { throttle: 2 });
    const before = world.fanout.stats();
    await world.fanout.publish([await world.items.apply(itemId, { texts: ['after throttling'] })]);
    const after = world.fanout.stats();
    await waitUntil('the delta arrives', () => deltaText(viewer, itemId) === 'after throttling');
    expect(after.retries - before.retries).toBe(2);
    expect(after.failedDeliveries - before.failedDeliveries).toBe(0);
  });

  it('gives up on a connection throttled past the bound or too slow, closing it, delivering to the others, without throwing', async () => {
    // Prepare
    const itemId = await newItem();
    const throttled = await subscriber(itemId);
    const throttledId = throttled.connectionId;
    const slow = await subscriber(itemId);
    const slowId = slow.connectionId;
    const healthy = await Promise.all([1, 2, 3, 4, 5, 6].map(() => subscriber(itemId)));
    world.gateway.injectFault(throttledId, { throttle: 100 });
    world.gateway.injectFault(slowId, { delayMs: 1_500 });
    const before = world.fanout.stats();
    // Act
    await expect(
      world.fanout.publish([await world.items.apply(itemId, { texts: ['for the healthy'] })]),
    ).resolves.toBeUndefined();
    // Assess
    const after = world.fanout.stats();
    expect(after.failedDeliveries - before.failedDeliveries).toBe(2);
    for (const viewer of healthy) expect(deltaText(viewer, itemId)).toBe('for the healthy');
    expect(deltaText(throttled, itemId)).toBe('');
    expect(deltaText(slow, itemId)).toBe('');
    // Closed, so their clients resume from a snapshot: the missed frames could have been the last.
    expect(after.droppedConnections - before.droppedConnections).toBe(2);
    await waitUntil('both given-up viewers are closed', () =>
      [throttled, slow].every((viewer) => viewer.closeCode !== undefined),
    );
    for (const viewer of healthy) expect(viewer.closeCode).toBeUndefined();
  });

  it('publishes nothing and throws nothing for an empty batch or an item nobody watches', async () => {
    const before = world.fanout.stats();
    await world.fanout.publish([]);
    const itemId = await newItem();
    await world.fanout.publish([await world.items.apply(itemId, { texts: ['unwatched'] })]);
    expect(world.fanout.stats().posts).toBe(before.posts);
  });
});
