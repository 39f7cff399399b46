/**
 * Random tenants, items, viewers, subscriptions and cancels on the real WebSocket routes and
 * fan-out: no viewer ever receives a byte of another tenant's item, and no cancel crosses tenants.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../shared/auth.js';
import {
  type DeliveryWorld,
  SECRET,
  startDeliveryWorld,
  type Viewer,
  waitUntil,
} from './websocket-helpers.js';

const TENANTS = ['t1', 't2', 't3'] as const;
const USAGE = { inputTokens: 1, outputTokens: 1 };

const viewerArb = fc.record({
  tenant: fc.constantFrom(...TENANTS, '*'),
  /** Indexes into the run's items (some not created yet when subscribed). */
  watches: fc.uniqueArray(fc.nat({ max: 5 }), { maxLength: 4 }),
  all: fc.constantFrom('no', 'plain', 'batch'),
  cancels: fc.uniqueArray(fc.nat({ max: 5 }), { maxLength: 2 }),
});
const scenarioArb = fc.record({
  items: fc.array(fc.constantFrom(...TENANTS), { minLength: 2, maxLength: 6 }),
  viewers: fc.array(viewerArb, { minLength: 1, maxLength: 4 }),
  /** Items created only after the viewers subscribed. */
  createdLate: fc.uniqueArray(fc.nat({ max: 5 }), { maxLength: 3 }),
  /** How the items' batches are grouped into consumer batches. */
  batches: fc.array(fc.array(fc.nat({ max: 5 }), { minLength: 1, maxLength: 4 }), {
    minLength: 1,
    maxLength: 3,
  }),
});

const covers = (viewerTenant: string, itemTenant: string) =>
  viewerTenant === '*' || viewerTenant === itemTenant;

describe('tenancy property: nothing crosses tenants', () => {
  let world: DeliveryWorld;
  let run = 0;

  beforeAll(async () => {
    world = await startDeliveryWorld();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it('no viewer receives a byte of another tenant’s item; no cancel crosses tenants', async () => {
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        run++;
        const items = scenario.items.map((tenant, i) => ({
          itemId: `p${run}-${i}`,
          tenant,
          // A marker no other item's text contains: found in a frame, it is a leaked byte.
          secret: `<secret-${run}-${i}-${tenant}>`,
        }));
        const itemOf = (index: number) => items[index % items.length]!;
        const late = new Set(scenario.createdLate.map((i) => itemOf(i).itemId));
        for (const item of items)
          if (!late.has(item.itemId)) await world.items.create(item.itemId, item.tenant);

        const viewers: Array<{ tenant: string; viewer: Viewer; cancels: string[] }> = [];
        for (const spec of scenario.viewers) {
          const scopes = spec.tenant === '*' ? (['admin'] as const) : (['read', 'cancel'] as const);
          const token = await issueToken(SECRET, {
            subject: `v${run}`,
            tenant: spec.tenant,
            scopes: [...scopes],
            ttlSeconds: 600,
          });
          const viewer = await world.connect(token);
          const watched = [...new Set(spec.watches.map((i) => itemOf(i).itemId))];
          for (const itemId of watched) viewer.send({ action: 'subscribe', itemId });
          if (spec.all !== 'no') viewer.send({ action: 'subscribe', all: true, batch: spec.all === 'batch' });
          await waitUntil('the subscriptions are stored', async () => {
            const rows = await world.rows(`conn#${viewer.connectionId}`);
            return rows.length === 1 + watched.length + (spec.all === 'no' ? 0 : 1);
          });
          await waitUntil('the snapshots arrived', () =>
            watched.every((id) => viewer.messages.some((m) => m.type === 'snapshot' && m.itemId === id)),
          );
          viewers.push({ tenant: spec.tenant, viewer, cancels: spec.cancels.map((i) => itemOf(i).itemId) });
        }
        for (const item of items)
          if (late.has(item.itemId)) await world.items.create(item.itemId, item.tenant);

        // Cancels, each answered (an error) or recorded, then the consumer batches.
        for (const { viewer, cancels } of viewers) {
          for (const itemId of cancels) viewer.send({ action: 'cancel', itemId });
        }
        const cancelled = new Map<string, string[]>();
        for (const { tenant, cancels } of viewers)
          for (const itemId of cancels) cancelled.set(itemId, [...(cancelled.get(itemId) ?? []), tenant]);
        await waitUntil('every cancel is answered or recorded', async () => {
          for (const { viewer, cancels } of viewers) {
            for (const itemId of cancels) {
              const refused = viewer.messages.some((m) => m.type === 'error' && m.itemId === itemId);
              if (!refused && !(await world.items.head(itemId))?.cancelRequested) return false;
            }
          }
          return true;
        });
        for (const item of items) {
          const allowed = (cancelled.get(item.itemId) ?? []).some((t) => covers(t, item.tenant));
          expect((await world.items.head(item.itemId))?.cancelRequested, `cancel of ${item.itemId}`).toBe(
            allowed,
          );
        }
        const updated = new Set<string>();
        for (const group of scenario.batches) {
          const ids = [...new Set(group.map((i) => itemOf(i).itemId))];
          const updates = [];
          for (const itemId of ids) {
            const item = items.find((x) => x.itemId === itemId)!;
            const ended = (await world.items.head(itemId))?.status === 'completed';
            if (ended) continue;
            updates.push(await world.items.apply(itemId, { texts: [item.secret], end: { usage: USAGE } }));
            updated.add(itemId);
          }
          await world.fanout.publish(updates);
        }

        // Every frame was posted before publish resolved: check each viewer's bytes.
        for (const [index, { tenant, viewer }] of viewers.entries()) {
          const bytes = JSON.stringify([viewer.messages, viewer.other]);
          // Not vacuous: a dashboard gets every item of its tenant that a batch carried.
          if (scenario.viewers[index]?.all !== 'no') {
            for (const item of items) {
              if (updated.has(item.itemId) && covers(tenant, item.tenant))
                expect(bytes).toContain(item.secret);
            }
          }
          for (const item of items) {
            if (!covers(tenant, item.tenant))
              expect(bytes, `${tenant} viewer got ${item.itemId}`).not.toContain(item.secret);
          }
          for (const m of viewer.messages) {
            const item = items.find((x) => 'itemId' in m && x.itemId === m.itemId);
            if (!item || covers(tenant, item.tenant)) continue;
            // Only the not-started snapshot or an error, exactly as for an item that does not exist.
            expect(m.type === 'error' || (m.type === 'snapshot' && m.attempt === 0 && m.text === '')).toBe(
              true,
            );
          }
          await viewer.close();
        }
      }),
      { numRuns: 12 },
    );
  }, 240_000);
});
