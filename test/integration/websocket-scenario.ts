/**
 * Many viewers on many items through the real gateway, handlers and fan-out, with the client
 * library: viewers subscribed before an item starts, viewers joining mid-stream, viewers whose
 * connections drop (client side, and server side without `$disconnect`) and resume, and
 * dashboards watching every item. Items are written as the consumer writes them (one head update
 * per batch) and each round of batches is published the way the consumer publishes a Kinesis
 * batch: one `publish` with one update per item.
 */
import { filter, firstValueFrom, timeout } from 'rxjs';
import { WebSocket } from 'ws';
import { createStreamsClient, type StreamsClient } from '../../shared/client/index.js';
import { readItem } from '../../shared/items.js';
import { type DeliveryWorld, waitUntil } from './websocket-helpers.js';
import { seeded } from '../support/random.js';

export interface ScenarioOptions {
  readonly items: number;
  readonly viewersPerItem: number;
  /** Every-item viewers. */
  readonly dashboards: number;
  readonly batchesPerItem: number;
  /** Records per batch; each record carries `tokensPerRecord` tokens. */
  readonly recordsPerBatch: number;
  readonly tokensPerRecord: number;
  /** Rounds between the starts of consecutive items. */
  readonly stagger: number;
  /** Connections dropped per round (half client side, half server side without `$disconnect`). */
  readonly dropsPerRound: number;
  readonly seed: number;
}

export interface ScenarioResult {
  readonly viewers: number;
  readonly rounds: number;
  /** `publish` calls (one per round with at least one update). */
  readonly publishes: number;
  readonly tokensPerItem: number;
  /** WebSocket messages received by per-item viewers, per viewer per item. */
  readonly messagesPerViewerItem: number;
  readonly messagesPerViewerPer1kTokens: number;
  readonly postsPerPublish: number;
  readonly posts: number;
  readonly goneConnections: number;
  readonly reconnects: number;
  /** Viewers whose final text or status differs from the stored item (must be empty). */
  readonly mismatches: string[];
  readonly elapsedMs: number;
}

const WORDS = ['alpha', 'beta', 'gamma', 'δέλτα', 'échelle', '数据', '😀', 'line\n', '"quoted"', 'tab\t'];

/** Runs the scenario in `world`; resolves when every viewer has the final text of its items. */
export async function runDeliveryScenario(
  world: DeliveryWorld,
  options: ScenarioOptions,
): Promise<ScenarioResult> {
  const started = Date.now();
  const random = seeded(options.seed);
  const sockets: WebSocket[] = [];
  let itemMessages = 0;
  let opens = 0;
  /** `ws` that counts what it receives and lets the scenario drop it. */
  const socketClass = (counted: boolean) =>
    class ScenarioSocket extends WebSocket {
      constructor(url: string) {
        super(url);
        sockets.push(this);
        this.on('open', () => opens++);
        if (counted) this.on('message', () => itemMessages++);
      }
    };
  const newClient = (counted: boolean) =>
    createStreamsClient({
      url: world.gateway.url,
      token: world.token,
      WebSocket: socketClass(counted),
      reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
      random,
    });

  const itemIds = Array.from({ length: options.items }, (_, i) => `scenario-${options.seed}-${i}`);
  const startRound = (i: number) => Math.floor(i * options.stagger);
  const rounds = startRound(options.items - 1) + options.batchesPerItem;
  interface Watcher {
    readonly client: StreamsClient;
    readonly itemId: string;
    readonly joinRound: number;
  }
  const watchers: Watcher[] = [];
  itemIds.forEach((itemId, i) => {
    for (let v = 0; v < options.viewersPerItem; v++) {
      // A third join before the item starts, a third in its first half, a third in its second half.
      const kind = v % 3;
      const joinRound =
        kind === 0
          ? 0
          : startRound(i) + Math.floor(((kind === 1 ? 0.1 : 0.5) + random() * 0.4) * options.batchesPerItem);
      watchers.push({ client: newClient(true), itemId, joinRound });
    }
  });
  const dashboards = Array.from({ length: options.dashboards }, () => newClient(false));
  for (const dashboard of dashboards) dashboard.subscribeAll();
  await Promise.all(
    [...watchers.map((w) => w.client), ...dashboards].map((client) =>
      firstValueFrom(
        client.state$.pipe(
          filter((s) => s === 'open'),
          timeout(20_000),
        ),
      ),
    ),
  );
  const openedAtStart = opens;

  for (const itemId of itemIds) await world.items.create(itemId);
  const postsBefore = world.fanout.stats().posts;
  const goneBefore = world.fanout.stats().goneConnections;
  let publishes = 0;
  let token = 0;
  const nextToken = () => {
    const word = WORDS[Math.floor(random() * WORDS.length)] ?? 'x';
    return `${word}${token++} `;
  };

  for (let round = 0; round < rounds; round++) {
    for (const watcher of watchers) if (watcher.joinRound === round) watcher.client.subscribe(watcher.itemId);
    const updates = [];
    for (const [i, itemId] of itemIds.entries()) {
      const b = round - startRound(i);
      if (b < 0 || b >= options.batchesPerItem) continue;
      const texts = Array.from({ length: options.recordsPerBatch }, () =>
        Array.from({ length: options.tokensPerRecord }, nextToken).join(''),
      );
      const last = b === options.batchesPerItem - 1;
      updates.push(
        await world.items.apply(itemId, {
          texts,
          ...(last ? { end: { usage: { inputTokens: 10, outputTokens: options.batchesPerItem } } } : {}),
        }),
      );
    }
    if (updates.length > 0) {
      await world.fanout.publish(updates);
      publishes++;
    }
    for (let d = 0; d < options.dropsPerRound; d++) {
      if (d % 2 === 0) {
        const open = sockets.filter((s) => s.readyState === WebSocket.OPEN);
        open[Math.floor(random() * open.length)]?.terminate();
      } else {
        const ids = world.gateway.connectionIds();
        const id = ids[Math.floor(random() * ids.length)];
        if (id) await world.gateway.dropConnection(id, { notify: false }).catch(() => {});
      }
    }
  }

  const stored = new Map<string, { text: string; status: string }>();
  for (const itemId of itemIds) {
    const item = await readItem(world.dynamo, world.config.tables, itemId);
    stored.set(itemId, { text: item?.text ?? '', status: item?.status ?? 'missing' });
  }
  const mismatches: string[] = [];
  const check = (who: string, itemId: string, view: { text: string; status: string } | undefined) => {
    const expected = stored.get(itemId);
    if (!view || view.text !== expected?.text || view.status !== expected.status) {
      mismatches.push(
        `${who} ${itemId}: ${view ? `${view.status}, ${view.text.length} chars` : 'nothing'}; stored ${expected?.status}, ${expected?.text.length} chars`,
      );
    }
  };
  await Promise.all(
    watchers.map(async (watcher, n) => {
      const final = await firstValueFrom(
        watcher.client.item$(watcher.itemId).pipe(
          filter((v) => v.status === 'completed' || v.status === 'failed'),
          timeout(30_000),
        ),
      ).catch(() => watcher.client.view(watcher.itemId));
      check(`viewer ${n}`, watcher.itemId, final);
    }),
  );
  for (const [n, dashboard] of dashboards.entries()) {
    await waitUntil(
      `dashboard ${n} has every item completed`,
      () => itemIds.every((itemId) => dashboard.view(itemId)?.status === 'completed'),
      30_000,
    ).catch(() => {});
    for (const itemId of itemIds) check(`dashboard ${n}`, itemId, dashboard.view(itemId));
  }
  const stats = world.fanout.stats();
  for (const client of [...watchers.map((w) => w.client), ...dashboards]) client.close();

  const tokensPerItem = options.batchesPerItem * options.recordsPerBatch * options.tokensPerRecord;
  const messagesPerViewerItem = itemMessages / watchers.length;
  return {
    viewers: watchers.length + dashboards.length,
    rounds,
    publishes,
    tokensPerItem,
    messagesPerViewerItem,
    messagesPerViewerPer1kTokens: (messagesPerViewerItem / tokensPerItem) * 1000,
    postsPerPublish: (stats.posts - postsBefore) / Math.max(1, publishes),
    posts: stats.posts - postsBefore,
    goneConnections: stats.goneConnections - goneBefore,
    reconnects: opens - openedAtStart,
    mismatches,
    elapsedMs: Date.now() - started,
  };
}
