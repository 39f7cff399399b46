/**
 * What viewers are promised whatever the consumer and the viewers do: the real reassembler on
 * dynalite, publishing through the real fan-out and the local WebSocket gateway to `ws` viewers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReassemblerHandler } from '../../consumers/reassembler/reassembler.js';
import { BatchMessage, type ServerMessage } from '../../shared/contracts/websocket.js';
import type { ItemUpdate } from '../../shared/delivery.js';
import { createLogger, createMetrics } from '../../shared/telemetry.js';
import { attemptRecords } from '../factories/chunk-records.js';
import { kinesisEvent, TestShard } from '../factories/kinesis-events.js';
import {
  type DeliveryWorld,
  startDeliveryWorld,
  type Viewer,
  waitUntil,
  within,
} from './websocket-helpers.js';

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

const deadLetters = { send: async () => {} };

describe('delivery guarantees', () => {
  let world: DeliveryWorld;
  let sequence = 0;
  const newItem = async () => {
    const itemId = `guarantee-${++sequence}`;
    await world.items.create(itemId);
    return itemId;
  };
  const subscribed = async (itemId: string) => {
    const viewer = await world.connect();
    viewer.send({ action: 'subscribe', itemId });
    await viewer.next('snapshot', (m) => m.itemId === itemId);
    return viewer;
  };
  const consumer = (afterCommit?: (updates: readonly ItemUpdate[]) => void) =>
    createReassemblerHandler({
      config: world.config,
      clients: world.clients,
      deadLetters,
      publisher: world.fanout,
      logger: createLogger('consumer'),
      metrics: createMetrics('consumer'),
      ...(afterCommit ? { afterCommit } : {}),
    });
  const textOf = (viewer: Viewer, itemId: string) =>
    viewer.messages
      .filter(
        (m): m is Extract<ServerMessage, { type: 'delta' }> => m.type === 'delta' && m.itemId === itemId,
      )
      .map((m) => m.text)
      .join('');

  beforeAll(async () => {
    world = await startDeliveryWorld({
      // A delivery's own deadline (60 s) is far beyond the batch budget (2 s), and both are far
      // beyond what a healthy local post takes even on a loaded machine: only the budget can end
      // the stuck viewer's post before the test's 10 s bound.
      env: { FANOUT_BUDGET_MS: '2000' },
      postPolicy: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 20, deadlineMs: 60_000 },
    });
  });
  afterAll(async () => {
    await world?.stop();
  }, 60_000);

  it('a viewer gets done without reconnecting when the consumer crashed between commit and publish', async () => {
    // Prepare
    const itemId = await newItem();
    const viewer = await subscribed(itemId);
    const shard = new TestShard();
    const records = shard.records(attemptRecords(itemId, 1, ['Hello, ', 'world']));
    let crashes = 0;
    const handler = consumer(() => {
      if (crashes++ === 0) throw new Error('injected crash between commit and publish');
    });
    // Act: the first invocation commits and dies; Lambda delivers the same batch again.
    await expect(handler(kinesisEvent(records))).rejects.toThrow(/injected crash/);
    expect((await world.items.head(itemId))?.status).toBe('completed');
    const retry = await handler(kinesisEvent(records));
    // Assess
    expect(retry.batchItemFailures).toEqual([]);
    const done = await viewer.next('done', (m) => m.itemId === itemId);
    expect(done.attempt).toBe(1);
    expect(textOf(viewer, itemId)).toBe('Hello, world');
    expect(viewer.open).toBe(true);
  });

  it('a viewer that never reads does not hold up the batch: it is dropped from it and closed', async () => {
    // Prepare: every post to the stuck viewer hangs far longer than the batches may take.
    const itemId = await newItem();
    const stuck = await subscribed(itemId);
    const healthy = await subscribed(itemId);
    world.gateway.injectFault(stuck.connectionId, { delayMs: 25_000 });
    const shard = new TestShard();
    const [first, second] = [
      shard.records(attemptRecords(itemId, 1, ['one ', 'two '], { type: 'none' })),
      shard.records(attemptRecords(itemId, 1, ['one ', 'two ', 'three'])).slice(2),
    ];
    const handler = consumer();
    // Act: both batches return while the stuck viewer's post is still pending.
    const one = await within('the first batch returns', handler(kinesisEvent(first ?? [])), 10_000);
    const two = await within('the second batch returns', handler(kinesisEvent(second ?? [])), 10_000);
    // Assess
    expect(one.batchItemFailures).toEqual([]);
    expect(two.batchItemFailures).toEqual([]);
    const head = await world.items.head(itemId);
    expect(head?.status).toBe('completed');
    expect(head?.text).toBe('one two three');
    await healthy.next('done', (m) => m.itemId === itemId);
    expect(textOf(healthy, itemId)).toBe('one two three');
    expect(world.fanout.stats().droppedConnections).toBeGreaterThanOrEqual(1);
    await within('the stuck viewer is closed', stuck.closed, 10_000);
  });

  it('a dashboard subscribed with batch gets one packed frame per consumer batch, holding every item', async () => {
    // Prepare: a budget no loaded machine spends, so only packing decides what the dashboard gets.
    const packing = await startDeliveryWorld({ env: { FANOUT_BUDGET_MS: '30000' } });
    try {
      await packedFrames(packing);
    } finally {
      await packing.stop();
    }
  }, 60_000);

  const packedFrames = async (world: DeliveryWorld) => {
    const newItem = async () => {
      const itemId = `packed-${++sequence}`;
      await world.items.create(itemId);
      return itemId;
    };
    const consumer = () =>
      createReassemblerHandler({
        config: world.config,
        clients: world.clients,
        deadLetters,
        publisher: world.fanout,
        logger: createLogger('consumer'),
        metrics: createMetrics('consumer'),
      });
    const items = [await newItem(), await newItem(), await newItem()];
    const dashboard = await world.connect();
    dashboard.send({ action: 'subscribe', all: true, batch: true });
    const plain = await world.connect();
    plain.send({ action: 'subscribe', all: true });
    await waitUntil('both every-item subscriptions are stored', async () => {
      const rows = await world.rows('subs#*');
      return [dashboard, plain].every((v) => rows.some((r) => r.sk === v.connectionId));
    });
    const shard = new TestShard();
    const records = items.flatMap((itemId) => shard.records(attemptRecords(itemId, 1, [`${itemId} text`])));
    // Act: one consumer batch for the three items
    await consumer()(kinesisEvent(records));
    // Assess
    await waitUntil('the plain dashboard has every done', () =>
      items.every((id) => plain.messages.some((m) => m.type === 'done' && m.itemId === id)),
    );
    await waitUntil('the batch dashboard has a frame', () => dashboard.other.length > 0);
    expect(dashboard.messages).toEqual([]);
    expect(dashboard.other).toHaveLength(1);
    const frame = BatchMessage.parse(dashboard.other[0]);
    const ofItems = (m: ServerMessage) => 'itemId' in m && items.includes(m.itemId ?? '');
    const sorted = (ms: ServerMessage[]) => ms.map((m) => JSON.stringify(m)).sort();
    // The same messages, each item's in order; across items the plain connection's order is free.
    expect(sorted(frame.messages)).toEqual(sorted(plain.messages.filter(ofItems)));
    for (const itemId of items)
      expect(frame.messages.filter((m) => 'itemId' in m && m.itemId === itemId).map((m) => m.type)).toEqual([
        'delta',
        'done',
      ]);
    expect(plain.messages.length).toBeGreaterThanOrEqual(items.length * 2);
  };
});
