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

        /** Whether `tenant` may see `itemId` now: it exists and is of a tenant it covers. */
        const visible = (tenant: string, itemId: string, created: boolean) =>
          created && covers(tenant, items.find((x) => x.itemId === itemId)!.tenant);
        /**
         * Waits for the n-th answer to `viewer`'s subscribes of `ids`: a snapshot exactly for those visible
         * (the late items are created between the first and the second answer).
         */
        const answered = async (viewer: Viewer, tenant: string, ids: string[], n: number) => {
          const answers = (id: string) =>
            viewer.messages.filter(
              (m) =>
                (m.type === 'snapshot' || (m.type === 'error' && m.code === 'not_found')) && m.itemId === id,
            );
          await waitUntil('every subscribe is answered', () => ids.every((id) => answers(id).length >= n));
          for (const id of ids)
            expect(answers(id)[n - 1]?.type, `subscribe to ${id}`).toBe(
              visible(tenant, id, !late.has(id) || n > 1) ? 'snapshot' : 'error',
            );
        };
        const viewers: Array<{ tenant: string; viewer: Viewer; cancels: string[]; watched: string[] }> = [];
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
          await answered(viewer, spec.tenant, watched, 1);
          // Rows only for items that exist and are the viewer's: none for one not created yet or another tenant's.
          const kept = watched.filter((id) => visible(spec.tenant, id, !late.has(id)));
          await waitUntil('the subscriptions are stored', async () => {
            const rows = await world.rows(`conn#${viewer.connectionId}`);
            return rows.length === 1 + kept.length + (spec.all === 'no' ? 0 : 1);
          });
          viewers.push({
            tenant: spec.tenant,
            viewer,
            cancels: spec.cancels.map((i) => itemOf(i).itemId),
            watched,
          });
        }
        for (const item of items)
          if (late.has(item.itemId)) await world.items.create(item.itemId, item.tenant);
        // Viewers ask again for the items answered not_found (as the client library does).
        for (const { tenant, viewer, watched } of viewers) {
          const again = watched.filter((id) => late.has(id));
          for (const itemId of again) viewer.send({ action: 'subscribe', itemId });
          await answered(viewer, tenant, again, 2);
        }

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
              // A cancel's refusal, not a subscribe's not_found about the same item.
              const refused = viewer.messages.some(
                (m) => m.type === 'error' && m.itemId === itemId && m.message.startsWith('cannot cancel'),
              );
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
            // Only an error, exactly as for an item that does not exist.
            expect(m.type).toBe('error');
          }
          await viewer.close();
        }
      }),
      { numRuns: 12 },
    );
  }, 240_000);
});
