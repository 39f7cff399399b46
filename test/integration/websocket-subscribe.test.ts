import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_FRAME_BYTES, type SnapshotMessage } from '../../shared/contracts/websocket.js';
import { readItem } from '../../shared/items.js';
import { type DeliveryWorld, startDeliveryWorld, type Viewer, waitUntil } from './websocket-helpers.js';

/** Waits for a whole (possibly split) snapshot of `itemId`; returns its frames. */
async function snapshotOf(viewer: Viewer, itemId: string, nth = 1): Promise<SnapshotMessage[]> {
  let frames: SnapshotMessage[] = [];
  await waitUntil(`snapshot ${nth} of ${itemId} arrives`, () => {
    const all = viewer.messages.filter(
      (m): m is SnapshotMessage => m.type === 'snapshot' && m.itemId === itemId,
    );
    const ends = all.flatMap((m, i) => (m.more ? [] : [i]));
    if (ends.length < nth) return false;
    const start = nth === 1 ? 0 : (ends[nth - 2] ?? -1) + 1;
    frames = all.slice(start, (ends[nth - 1] ?? 0) + 1);
    return true;
  });
  return frames;
}
const joined = (frames: SnapshotMessage[]) => frames.map((f) => f.text).join('');

describe('subscribe: snapshot, resume and cancel', () => {
  let world: DeliveryWorld;
  let viewer: Viewer;
  let sequence = 0;
  const newItem = async () => {
    const itemId = `sub-${++sequence}`;
    await world.items.create(itemId);
    return itemId;
  };

  beforeAll(async () => {
    world = await startDeliveryWorld();
    viewer = await world.connect();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it('an unknown item is answered not_found, keeps no row, and is served once its claim writes it', async () => {
    // Act: subscribe to an item nobody has written yet.
    viewer.send({ action: 'subscribe', itemId: 'not-yet' });
    const refusal = await viewer.next('error', (m) => m.itemId === 'not-yet');
    // Assess: not_found, and no subscription row left on either side.
    expect(refusal).toEqual({
      type: 'error',
      code: 'not_found',
      itemId: 'not-yet',
      message: 'cannot subscribe to not-yet: no such item (yet)',
    });
    expect(await world.rows('subs#not-yet')).toEqual([]);
    const own = await world.rows(`conn#${viewer.connectionId}`);
    expect(own.map((r) => r.sk).filter((sk) => String(sk).startsWith('sub#'))).toEqual([]);
    // Act: the producer's claim writes the item (queued); the same connection asks again.
    await world.items.create('not-yet');
    viewer.send({ action: 'subscribe', itemId: 'not-yet' });
    const [snapshot] = await snapshotOf(viewer, 'not-yet');
    // Assess: the connection stayed open, and the item is served from its first row on.
    expect(snapshot).toMatchObject({
      type: 'snapshot',
      itemId: 'not-yet',
      attempt: 0,
      seq: 0,
      status: 'queued',
    });
    expect((await world.rows('subs#not-yet')).map((r) => r.sk)).toEqual([viewer.connectionId]);
  });

  it('the snapshot holds the stored text (sealed parts and tail), status, attempt and next seq', async () => {
    // Prepare: 5,000 characters, so two sealed parts and a tail.
    const itemId = await newItem();
    const texts = Array.from({ length: 50 }, (_, i) => `${String(i).padStart(3, '0')}:${'x'.repeat(96)}`);
    await world.items.apply(itemId, { texts });
    // Act
    viewer.send({ action: 'subscribe', itemId });
    // Assess
    const frames = await snapshotOf(viewer, itemId);
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ attempt: 1, seq: 50, status: 'streaming' });
    expect(joined(frames)).toBe(texts.join(''));
    expect((await world.items.head(itemId))?.parts).toBe(2);
  });

  it('a snapshot over 32 KB arrives in frames under the limit, all but the last with more: true', async () => {
    const itemId = await newItem();
    const text = 'ünï "code" 😀\n'.repeat(8_000);
    await world.items.apply(itemId, { texts: [text], end: { usage: { inputTokens: 1, outputTokens: 2 } } });
    const fresh = await world.connect();
    fresh.send({ action: 'subscribe', itemId });
    const frames = await snapshotOf(fresh, itemId);
    expect(frames.length).toBeGreaterThan(1);
    expect(joined(frames)).toBe(text);
    expect(frames.slice(0, -1).every((f) => f.more === true)).toBe(true);
    expect(frames.every((f) => f.seq === 2 && f.attempt === 1 && f.status === 'completed')).toBe(true);
    expect(frames.at(-1)).toMatchObject({ usage: { inputTokens: 1, outputTokens: 2 } });
    expect(frames.slice(0, -1).some((f) => f.usage !== undefined)).toBe(false);
    expect(Math.max(...fresh.sizes)).toBeLessThanOrEqual(MAX_FRAME_BYTES);
  });

  it("a failed item's snapshot carries its error", async () => {
    const itemId = await newItem();
    const error = { code: 'cancelled', message: 'stopped', retryable: false };
    await world.items.apply(itemId, { texts: ['so far'], error: { error, final: true } });
    viewer.send({ action: 'subscribe', itemId });
    const [snapshot] = await snapshotOf(viewer, itemId);
    expect(snapshot).toMatchObject({ status: 'failed', text: 'so far', error });
  });

  describe('resume', () => {
    let itemId: string;
    let stored: string;
    beforeAll(async () => {
      itemId = await newItem();
      await world.items.apply(itemId, { texts: ['alpha ', 'beta '] });
      await world.items.apply(itemId, { texts: ['gamma ', 'delta'] });
      stored = (await readItem(world.dynamo, world.config.tables, itemId))!.text;
    });

    it('with attempt, seq and offset: only the text after the offset', async () => {
      const held = 'alpha beta ';
      const resumer = await world.connect();
      resumer.send({ action: 'subscribe', itemId, attempt: 1, seq: 2, offset: held.length });
      const [snapshot] = await snapshotOf(resumer, itemId);
      expect(snapshot).toMatchObject({ attempt: 1, seq: 4, offset: held.length, text: 'gamma delta' });
      expect(held + snapshot!.text).toBe(stored);
    });

    it("with attempt and the head's next seq but no offset: nothing but the offset of the end", async () => {
      const resumer = await world.connect();
      resumer.send({ action: 'subscribe', itemId, attempt: 1, seq: 4 });
      const [snapshot] = await snapshotOf(resumer, itemId);
      expect(snapshot).toMatchObject({ seq: 4, offset: stored.length, text: '' });
    });

    it('from another attempt, or ahead of the head: the whole text', async () => {
      const resumer = await world.connect();
      resumer.send({ action: 'subscribe', itemId, attempt: 0, seq: 0, offset: 0 });
      resumer.send({ action: 'subscribe', itemId, attempt: 1, seq: 9, offset: 3 });
      const first = await snapshotOf(resumer, itemId, 1);
      const second = await snapshotOf(resumer, itemId, 2);
      for (const frames of [first, second]) {
        expect(frames[0]).not.toHaveProperty('offset');
        expect(joined(frames)).toBe(stored);
      }
    });
  });

  describe('cancel', () => {
    it('sets cancelRequested on a streaming item and answers nothing', async () => {
      const itemId = await newItem();
      await world.items.apply(itemId, { texts: ['running'] });
      const canceller = await world.connect();
      canceller.send({ action: 'cancel', itemId });
      await waitUntil(
        'the flag is set',
        async () => (await world.items.head(itemId))?.cancelRequested === true,
      );
      const head = await world.items.head(itemId);
      // Nothing else about the item changed.
      expect(head).toMatchObject({ status: 'streaming', version: 1, text: 'running' });
      expect(canceller.messages).toEqual([]);
    });

    it('sets the flag on a queued item too', async () => {
      const itemId = await newItem();
      viewer.send({ action: 'cancel', itemId });
      await waitUntil(
        'the flag is set',
        async () => (await world.items.head(itemId))?.cancelRequested === true,
      );
    });

    it('refuses to cancel a completed item, with an error naming its status', async () => {
      const itemId = await newItem();
      await world.items.apply(itemId, {
        texts: ['done'],
        end: { usage: { inputTokens: 1, outputTokens: 1 } },
      });
      const canceller = await world.connect();
      canceller.send({ action: 'cancel', itemId });
      expect(await canceller.next('error')).toEqual({
        type: 'error',
        itemId,
        code: 'not_cancellable',
        message: `cannot cancel ${itemId}: it is completed; only a queued or streaming item can be cancelled`,
      });
      expect((await world.items.head(itemId))?.cancelRequested).toBe(false);
    });
  });
});
