import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../shared/auth.js';
import type { BatchMessage } from '../../shared/contracts/websocket.js';
import type { Scope } from '../../shared/tenancy.js';
import {
  type DeliveryWorld,
  SECRET,
  startDeliveryWorld,
  type Viewer,
  waitUntil,
} from './websocket-helpers.js';

const USAGE = { inputTokens: 1, outputTokens: 2 };

/** Every item id a viewer has received anything about, `batch` frames unpacked. */
function itemIdsSeen(viewer: Viewer): Set<string> {
  const ids = new Set<string>();
  for (const m of viewer.messages) if ('itemId' in m && m.itemId) ids.add(m.itemId);
  for (const raw of viewer.other) {
    const batch = raw as Partial<BatchMessage>;
    for (const m of batch.messages ?? []) if ('itemId' in m && m.itemId) ids.add(m.itemId);
  }
  return ids;
}

describe('tenancy on the WebSocket: scoped subscriptions, fan-out and cancel', () => {
  let world: DeliveryWorld;
  let sequence = 0;
  const token = (tenant: string, scopes: Scope[]) =>
    issueToken(SECRET, { subject: `s-${tenant}`, tenant, scopes, ttlSeconds: 600 });
  const newItem = async (tenant: string) => {
    const itemId = `ten-${tenant}-${++sequence}`;
    await world.items.create(itemId, tenant);
    return itemId;
  };
  /** A viewer of `tenant` subscribed to every item (stored before it returns). */
  const dashboard = async (tenant: string, scopes: Scope[], batch: boolean) => {
    const viewer = await world.connect(await token(tenant, scopes));
    viewer.send({ action: 'subscribe', all: true, batch });
    await waitUntil('the every-item subscription is stored', async () =>
      (await world.rows('subs#*')).some((r) => r.sk === viewer.connectionId),
    );
    return viewer;
  };

  beforeAll(async () => {
    world = await startDeliveryWorld();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it("another tenant's item is answered exactly like one that does not exist, and never delivered", async () => {
    // Prepare: an item of tenant b with text; a viewer of tenant a.
    const theirs = await newItem('b');
    await world.fanout.publish([await world.items.apply(theirs, { texts: ['secret of b'] })]);
    const viewer = await world.connect(await token('a', ['read', 'cancel']));
    // Act: subscribe (plain and resuming) to b's item and to an unknown one; cancel both.
    viewer.send({ action: 'subscribe', itemId: theirs });
    viewer.send({ action: 'subscribe', itemId: 'ten-unknown', attempt: 1, seq: 1, offset: 3 });
    const [mine, unknown] = await Promise.all([
      viewer.next('error', (m) => m.itemId === theirs),
      viewer.next('error', (m) => m.itemId === 'ten-unknown'),
    ]);
    viewer.send({ action: 'cancel', itemId: theirs });
    viewer.send({ action: 'cancel', itemId: 'ten-unknown' });
    const refusals = await Promise.all([
      viewer.next('error', (m) => m.itemId === theirs && m.message.startsWith('cannot cancel')),
      viewer.next('error', (m) => m.itemId === 'ten-unknown' && m.message.startsWith('cannot cancel')),
    ]);
    await world.fanout.publish([
      await world.items.apply(theirs, { texts: [' more'], end: { usage: USAGE } }),
    ]);
    // Assess: the same answers with only the id differing, no text, no flag set, no row, nothing delivered.
    const notFound = (itemId: string) => ({
      type: 'error',
      code: 'not_found',
      itemId,
      message: `cannot subscribe to ${itemId}: no such item (yet)`,
    });
    expect(mine).toEqual(notFound(theirs));
    expect(unknown).toEqual(notFound('ten-unknown'));
    expect([...(await world.rows(`subs#${theirs}`)), ...(await world.rows('subs#ten-unknown'))]).toEqual([]);
    expect(refusals).toEqual([
      { type: 'error', code: 'not_found', itemId: theirs, message: `cannot cancel ${theirs}: no such item` },
      {
        type: 'error',
        code: 'not_found',
        itemId: 'ten-unknown',
        message: 'cannot cancel ten-unknown: no such item',
      },
    ]);
    expect((await world.items.head(theirs))?.cancelRequested).toBe(false);
    // The publish above resolved after posting: anything for this viewer has been posted by now.
    expect(viewer.messages.filter((m) => m.type !== 'error')).toEqual([]);
    await viewer.close();
  });

  it('an item subscribed to before it exists is served, once it exists, to a viewer of its tenant only', async () => {
    const itemId = `ten-later-${++sequence}`;
    const own = await world.connect(await token('a', ['read']));
    const other = await world.connect(await token('b', ['read']));
    // Before the item exists: both get not_found.
    for (const viewer of [own, other]) {
      viewer.send({ action: 'subscribe', itemId });
      await viewer.next('error', (m) => m.itemId === itemId && m.code === 'not_found');
    }
    // Once it exists (the producer's claim): its tenant's viewer gets the snapshot, the other not_found again.
    await world.items.create(itemId, 'a');
    for (const viewer of [own, other]) viewer.send({ action: 'subscribe', itemId });
    await own.next('snapshot', (m) => m.itemId === itemId);
    await waitUntil(
      'the other tenant is refused again',
      () => other.messages.filter((m) => m.type === 'error' && m.itemId === itemId).length === 2,
    );
    await world.fanout.publish([
      await world.items.apply(itemId, { texts: ['hello'], end: { usage: USAGE } }),
    ]);
    await own.next('done', (m) => m.itemId === itemId);
    expect(other.messages.map((m) => m.type)).toEqual(['error', 'error']);
    await Promise.all([own.close(), other.close()]);
  });

  it('every-item subscribers (plain and batch) get their tenant only; * with admin gets all', async () => {
    // Prepare
    const viewers = {
      plainA: await dashboard('a', ['read'], false),
      batchA: await dashboard('a', ['read'], true),
      batchB: await dashboard('b', ['read'], true),
      admin: await dashboard('*', ['admin'], true),
    };
    const a = await newItem('a');
    const b = await newItem('b');
    // Act: one consumer batch with both tenants' items.
    await world.fanout.publish([
      await world.items.apply(a, { texts: ['for a'], end: { usage: USAGE } }),
      await world.items.apply(b, { texts: ['for b'], end: { usage: USAGE } }),
    ]);
    // Assess
    await waitUntil('the admin dashboard has both items', () => {
      const seen = itemIdsSeen(viewers.admin);
      return seen.has(a) && seen.has(b);
    });
    expect(itemIdsSeen(viewers.plainA)).toEqual(new Set([a]));
    expect(itemIdsSeen(viewers.batchA)).toEqual(new Set([a]));
    expect(itemIdsSeen(viewers.batchB)).toEqual(new Set([b]));
    for (const viewer of Object.values(viewers)) await viewer.close();
  });

  it('cancel needs the cancel scope and is scoped by tenant; admin cancels any', async () => {
    const item = await newItem('a');
    await world.items.apply(item, { texts: ['running'] });
    const reader = await world.connect(await token('a', ['read']));
    reader.send({ action: 'cancel', itemId: item });
    expect(await reader.next('error', (m) => m.itemId === item)).toEqual({
      type: 'error',
      code: 'forbidden',
      itemId: item,
      message: 'the token does not grant cancel (scope cancel or admin)',
    });
    const otherTenant = await world.connect(await token('b', ['cancel']));
    otherTenant.send({ action: 'cancel', itemId: item });
    expect(await otherTenant.next('error', (m) => m.itemId === item)).toMatchObject({ code: 'not_found' });
    expect((await world.items.head(item))?.cancelRequested).toBe(false);
    const admin = await world.connect(await token('*', ['admin']));
    admin.send({ action: 'cancel', itemId: item });
    await waitUntil(
      'the admin cancel is recorded',
      async () => (await world.items.head(item))?.cancelRequested === true,
    );
    await Promise.all([reader.close(), otherTenant.close(), admin.close()]);
  });

  it('a token without read may not subscribe', async () => {
    const canceller = await world.connect(await token('a', ['cancel']));
    canceller.send({ action: 'subscribe', itemId: 'ten-x' });
    canceller.send({ action: 'subscribe', all: true });
    await waitUntil(
      'both are refused',
      () => canceller.messages.filter((m) => m.type === 'error').length === 2,
    );
    const types = canceller.messages.map((m) => (m.type === 'error' ? m.code : m.type));
    expect(types).toEqual(['forbidden', 'forbidden']);
    expect(await world.rows(`conn#${canceller.connectionId}`)).toHaveLength(1);
    await canceller.close();
  });
});
