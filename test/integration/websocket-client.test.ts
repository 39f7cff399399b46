import { filter, firstValueFrom, lastValueFrom, timeout, toArray } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { RATE_WINDOW_SECONDS } from '../../consumers/viewers/routes.js';
import {
  type ConnectionState,
  createStreamsClient,
  ItemFailedError,
  ItemNotFoundError,
  type ServerError,
  type StreamsClient,
  type WebSocketConstructor,
} from '../../shared/client/index.js';
import { readItem } from '../../shared/items.js';
import { type DeliveryWorld, startDeliveryWorld, waitUntil } from './websocket-helpers.js';
import { runDeliveryScenario } from './websocket-scenario.js';

/** `ws` that keeps every socket and every text message it received, for a test to inspect and cut. */
function recordingSocket() {
  const sockets: WebSocket[] = [];
  const received: Array<Record<string, unknown>> = [];
  class RecordingSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
      this.on('message', (data: Buffer) => received.push(JSON.parse(data.toString('utf8'))));
    }
  }
  return { RecordingSocket, sockets, received, last: () => sockets.at(-1)! };
}

const FAST_RECONNECT = { initialDelayMs: 10, maxDelayMs: 50 };

describe('client library against the local gateway', () => {
  let world: DeliveryWorld;
  const clients: StreamsClient[] = [];
  let sequence = 0;
  const newItem = async () => {
    const itemId = `client-${++sequence}`;
    await world.items.create(itemId);
    return itemId;
  };
  const client = (WebSocketClass: WebSocketConstructor = WebSocket, token: string = world.token) => {
    const c = createStreamsClient({
      url: world.gateway.url,
      token,
      WebSocket: WebSocketClass,
      reconnect: FAST_RECONNECT,
    });
    clients.push(c);
    return c;
  };
  const opened = (c: StreamsClient) =>
    firstValueFrom(
      c.state$.pipe(
        filter((s) => s === 'open'),
        timeout(10_000),
      ),
    );
  const publish = async (itemId: string, texts: string[], end = false) =>
    world.fanout.publish([
      await world.items.apply(itemId, {
        texts,
        ...(end ? { end: { usage: { inputTokens: 1, outputTokens: 2 } } } : {}),
      }),
    ]);
  const stored = async (itemId: string) => (await readItem(world.dynamo, world.config.tables, itemId))?.text;

  beforeAll(async () => {
    world = await startDeliveryWorld();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await world?.stop();
  });

  it('text$ streams an item to its end and completes with exactly the stored text', async () => {
    const itemId = await newItem();
    const viewer = client();
    const texts = lastValueFrom(viewer.text$(itemId).pipe(toArray(), timeout(10_000)));
    await opened(viewer);
    await waitUntil('the snapshot arrived', () => viewer.view(itemId) !== undefined);
    await publish(itemId, ['Hello', ', ']);
    await publish(itemId, ['wörld 😀'], true);
    const seen = await texts;
    expect(seen.at(-1)).toBe('Hello, wörld 😀');
    expect(seen.at(-1)).toBe(await stored(itemId));
    expect(viewer.view(itemId)).toMatchObject({
      status: 'completed',
      usage: { inputTokens: 1, outputTokens: 2 },
    });
  });

  it('resumes after a dropped connection with only the missing text, and ends exact', async () => {
    // Prepare
    const itemId = await newItem();
    const socket = recordingSocket();
    const viewer = client(socket.RecordingSocket);
    viewer.subscribe(itemId);
    await opened(viewer);
    await publish(itemId, ['one ', 'two ']);
    await waitUntil('two deltas are in', () => viewer.view(itemId)?.text === 'one two ');
    // Act: the connection drops; batches are applied meanwhile; the client reconnects and resumes.
    socket.last().terminate();
    await firstValueFrom(viewer.state$.pipe(filter((s) => s === 'reconnecting')));
    await publish(itemId, ['three ']);
    await publish(itemId, ['four'], true);
    await firstValueFrom(
      viewer.item$(itemId).pipe(
        filter((v) => v.status === 'completed'),
        timeout(10_000),
      ),
    );
    // Assess
    expect(viewer.view(itemId)?.text).toBe(await stored(itemId));
    const resumed = socket.received.filter((m) => m.type === 'snapshot' && m.offset !== undefined);
    expect(resumed).toEqual([
      {
        type: 'snapshot',
        itemId,
        attempt: 1,
        seq: 5,
        status: 'completed',
        offset: 8,
        text: 'three four',
        usage: { inputTokens: 1, outputTokens: 2 },
      },
    ]);
  });

  it('recovers a connection the gateway dropped without $disconnect', async () => {
    const itemId = await newItem();
    const viewer = client();
    viewer.subscribe(itemId);
    await opened(viewer);
    await waitUntil('subscribed', () => viewer.view(itemId) !== undefined);
    const connectionId = world.gateway.connectionIds().at(-1)!;
    await world.gateway.dropConnection(connectionId, { notify: false });
    await publish(itemId, ['during the outage ']);
    await publish(itemId, ['and after'], true);
    const final = await firstValueFrom(
      viewer.item$(itemId).pipe(
        filter((v) => v.status === 'completed'),
        timeout(10_000),
      ),
    );
    expect(final.text).toBe('during the outage and after');
    expect(await world.rows(`conn#${connectionId}`)).toEqual([]);
  });

  it('fills a missed delta by resubscribing when the next one shows a gap', async () => {
    const itemId = await newItem();
    const viewer = client();
    viewer.subscribe(itemId);
    await opened(viewer);
    await waitUntil('subscribed', () => viewer.view(itemId) !== undefined);
    // A batch applied but never published (as when every retry of a post failed).
    await world.items.apply(itemId, { texts: ['lost '] });
    await publish(itemId, ['found'], true);
    const final = await firstValueFrom(
      viewer.item$(itemId).pipe(
        filter((v) => v.status === 'completed'),
        timeout(10_000),
      ),
    );
    expect(final.text).toBe('lost found');
  });

  it('subscribe-all receives every item, from its start or by its snapshot when joined mid-stream', async () => {
    const [early, late] = [await newItem(), await newItem()];
    await publish(late, ['before the dashboard ']);
    const dashboard = client();
    dashboard.subscribeAll();
    await opened(dashboard);
    await waitUntil(
      'the every-item subscription is stored',
      async () => (await world.rows('subs#*')).length > 0,
    );
    await publish(early, ['from the start'], true);
    await publish(late, ['after it'], true);
    await waitUntil('both items completed on the dashboard', () =>
      [early, late].every((id) => dashboard.view(id)?.status === 'completed'),
    );
    expect(dashboard.view(early)?.text).toBe('from the start');
    expect(dashboard.view(late)?.text).toBe('before the dashboard after it');
  });

  it('cancel marks the item; the failed that follows errors text$ with the code', async () => {
    const itemId = await newItem();
    await publish(itemId, ['partial ']);
    const viewer = client();
    // Settled at once, so the failure is observed where it happens.
    const failure = lastValueFrom(viewer.text$(itemId).pipe(timeout(10_000))).then(
      () => undefined,
      (err: unknown) => err,
    );
    await opened(viewer);
    viewer.cancel(itemId);
    await waitUntil(
      'the flag is set',
      async () => (await world.items.head(itemId))?.cancelRequested === true,
    );
    // The producer sees the flag and ends the attempt with an error record `cancelled`.
    const error = { code: 'cancelled', message: 'cancelled by a viewer', retryable: false };
    await world.fanout.publish([
      await world.items.apply(itemId, { texts: ['last words'], error: { error, final: true } }),
    ]);
    expect(await failure).toBeInstanceOf(ItemFailedError);
    expect(await failure).toMatchObject({ itemId, error, text: 'partial last words' });
  });

  it('retries, backing off, a subscribe that failed on the server', async () => {
    // Prepare: a head row the server cannot read.
    const itemId = `client-${++sequence}`;
    const { PutCommand } = await import('@aws-sdk/lib-dynamodb');
    const put = (status: string) =>
      world.dynamo.send(
        new PutCommand({
          TableName: world.config.tables.items,
          Item: {
            itemId,
            status,
            version: 1,
            attempt: 1,
            nextSeq: 1,
            text: 'recovered',
            modelId: 'm',
            createdAt: 'x',
          },
        }),
      );
    await put('bogus');
    const viewer = client();
    const failure = firstValueFrom(
      viewer.errors$.pipe(
        filter((e) => e.itemId === itemId),
        timeout(10_000),
      ),
    );
    // Act
    viewer.subscribe(itemId);
    expect(await failure).toEqual({ code: 'unavailable', itemId, message: 'subscribe failed; try again' });
    await put('streaming');
    // Assess
    await waitUntil(
      'the retried subscribe got its snapshot',
      () => viewer.view(itemId)?.text === 'recovered',
    );
  });

  /**
   * A dashboard on a world whose WebSocket handlers reach DynamoDB through a fault proxy: every
   * `operation` fails while it subscribes to every item; the test sees `unavailable`, the faults clear,
   * and the client's retry must store the subscription on the same connection. Then `after` runs.
   */
  async function subscribeAllThroughFaults(
    operation: string,
    after: (faulty: DeliveryWorld, dashboard: StreamsClient) => Promise<void> = async () => {},
  ): Promise<void> {
    const faulty = await startDeliveryWorld({ dynamodbFaults: true });
    const dashboard = createStreamsClient({
      url: faulty.gateway.url,
      token: faulty.token,
      WebSocket,
      reconnect: FAST_RECONNECT,
    });
    try {
      await opened(dashboard);
      faulty.dynamodbFaults!.setFaults({ errorRate: 1, operations: [operation] });
      const failure = firstValueFrom(dashboard.errors$.pipe(timeout(10_000)));
      dashboard.subscribeAll();
      expect(await failure).toEqual({ code: 'unavailable', message: 'subscribe failed; try again' });
      faulty.dynamodbFaults!.setFaults({ errorRate: 0 });
      await waitUntil(
        'the every-item subscription is stored',
        async () => (await faulty.rows('subs#*')).length > 0,
      );
      await after(faulty, dashboard);
      expect(faulty.gateway.connectionIds()).toHaveLength(1);
    } finally {
      dashboard.close();
      await faulty.stop();
    }
  }

  it('retries, backing off, a subscribe to every item that failed on the server, and then receives every item', async () => {
    // Every write of a subscription row fails; once stored, an item arrives whole.
    await subscribeAllThroughFaults('PutItem', async (faulty, dashboard) => {
      const itemId = 'after-a-failed-subscribe-all';
      await faulty.items.create(itemId);
      await faulty.fanout.publish([
        await faulty.items.apply(itemId, {
          texts: ['seen ', 'whole'],
          end: { usage: { inputTokens: 1, outputTokens: 2 } },
        }),
      ]);
      await waitUntil('the dashboard holds the item', () => dashboard.view(itemId)?.status === 'completed');
      expect(dashboard.view(itemId)?.text).toBe('seen whole');
    });
  });

  it('hears unavailable when its message cannot even be counted, and its retry then subscribes', async () => {
    // Every update fails, so the route cannot count the message in the connection's rate window.
    await subscribeAllThroughFaults('UpdateItem');
  });

  it('subscribed before the item exists: asks again, backing off, until its claim writes it, then streams exact', async () => {
    // Prepare: a viewer whose sockets are recorded, subscribed to an item not written yet.
    const itemId = `client-${++sequence}`;
    const socket = recordingSocket();
    const viewer = client(socket.RecordingSocket);
    const reported: unknown[] = [];
    viewer.errors$.subscribe((e) => reported.push(e));
    const texts = lastValueFrom(viewer.text$(itemId).pipe(toArray(), timeout(20_000)));
    const notFound = () => socket.received.filter((m) => m.code === 'not_found' && m.itemId === itemId);
    await waitUntil('the server answered not_found twice', () => notFound().length >= 2);
    // Act: the producer's claim writes the item; it streams.
    await world.items.create(itemId);
    await waitUntil('the retried subscribe got its snapshot', () => viewer.view(itemId) !== undefined);
    await publish(itemId, ['made ']);
    await publish(itemId, ['later'], true);
    // Assess: exact text, and the expected not_found answers were not reported as errors.
    expect((await texts).at(-1)).toBe(await stored(itemId));
    expect((await texts).at(-1)).toBe('made later');
    expect(reported).toEqual([]);
  });

  it('an item that stays unknown is reported after the deadline: errors$ and text$ say not found', async () => {
    const itemId = `client-never-${++sequence}`;
    const socket = recordingSocket();
    const viewer = createStreamsClient({
      url: world.gateway.url,
      token: world.token,
      WebSocket: socket.RecordingSocket,
      reconnect: FAST_RECONNECT,
      notFoundRetry: { initialDelayMs: 20, maxDelayMs: 100, deadlineMs: 600 },
    });
    clients.push(viewer);
    const reported = firstValueFrom(viewer.errors$.pipe(timeout(10_000)));
    const text = lastValueFrom(viewer.text$(itemId).pipe(timeout(10_000))).then(
      () => undefined,
      (err: unknown) => err,
    );
    const error = await text;
    expect(error).toBeInstanceOf(ItemNotFoundError);
    expect(error).toMatchObject({ itemId });
    expect(await reported).toMatchObject({ code: 'not_found', itemId });
    // It asked more than once before giving up, and asks no more.
    const asked = () => socket.received.filter((m) => m.code === 'not_found' && m.itemId === itemId).length;
    expect(asked()).toBeGreaterThan(1);
    const before = asked();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(asked()).toBe(before);
    expect(viewer.view(itemId)).toBeUndefined();
  });

  it('a cancel the server refuses comes back on errors$ with the item', async () => {
    const viewer = client();
    const reply = firstValueFrom(viewer.errors$.pipe(timeout(10_000)));
    viewer.cancel('no-such-item');
    expect(await reply).toEqual({
      code: 'not_found',
      itemId: 'no-such-item',
      message: 'cannot cancel no-such-item: no such item',
    });
  });

  it('reports connection states and gives up after maxAttempts when the token is refused', async () => {
    const refused = createStreamsClient({
      url: world.gateway.url,
      token: 'not-a-token',
      WebSocket,
      reconnect: { initialDelayMs: 5, maxDelayMs: 10, maxAttempts: 2 },
    });
    const states = await lastValueFrom(refused.state$.pipe(toArray(), timeout(10_000)));
    expect(states).toEqual<ConnectionState[]>(['connecting', 'reconnecting', 'reconnecting', 'closed']);
  });

  it('many viewers joining, dropping and resuming all end with exactly the stored text', async () => {
    const full = process.env.DELIVERY_SCENARIO === 'full';
    const result = await runDeliveryScenario(world, {
      items: full ? 50 : 8,
      viewersPerItem: full ? 20 : 5,
      dashboards: 2,
      batchesPerItem: full ? 25 : 10,
      recordsPerBatch: 4,
      tokensPerRecord: 10,
      stagger: full ? 0.5 : 1,
      dropsPerRound: full ? 6 : 2,
      seed: 7,
    });
    if (full || process.env.DELIVERY_SCENARIO_REPORT) console.log(JSON.stringify(result, null, 2));
    expect(result.mismatches).toEqual([]);
    expect(result.reconnects).toBeGreaterThan(0);
  });
});

/** The server's message limit in this world, a second; counted over `RATE_WINDOW_SECONDS` windows. */
const SERVER_MESSAGES_PER_SECOND = 4;
/** Messages a connection may send in one window: 20. */
const WINDOW_ALLOWS = SERVER_MESSAGES_PER_SECOND * RATE_WINDOW_SECONDS;
/** Burst (2 × 2.5) plus 5 s at 2.5 a second: at most 17.5 of the 20 in any window. */
const CLIENT_MESSAGES_PER_SECOND = 2.5;
/** More unfinished items than one window's messages can resubscribe. */
const ITEMS = WINDOW_ALLOWS + 4;
/** Time for the client to send one subscribe per item at its pace, and the snapshots to come back. */
const PACED_MS = (ITEMS / CLIENT_MESSAGES_PER_SECOND) * 1000 + 5_000;

describe('client library against a gateway with a low message limit', () => {
  let world: DeliveryWorld;
  const clients: StreamsClient[] = [];

  beforeAll(async () => {
    world = await startDeliveryWorld({
      env: { CLIENT_MESSAGES_PER_SECOND: String(SERVER_MESSAGES_PER_SECOND) },
    });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await world?.stop();
  });

  it('resumes every unfinished item after a reconnect, more than one rate window allows, without being rate limited', async () => {
    // Prepare: items with some text, and a viewer following all of them.
    const itemIds = Array.from({ length: ITEMS }, (_, i) => `paced-${i}`);
    const publish = async (itemId: string, texts: string[], end = false) =>
      world.fanout.publish([
        await world.items.apply(itemId, {
          texts,
          ...(end ? { end: { usage: { inputTokens: 1, outputTokens: 2 } } } : {}),
        }),
      ]);
    for (const itemId of itemIds) {
      await world.items.create(itemId);
      await publish(itemId, [`${itemId} begins `]);
    }
    // Every reconnect asks for a token: while `outage` is pending the client stays away.
    let outage: Promise<void> = Promise.resolve();
    const socket = recordingSocket();
    const viewer = createStreamsClient({
      url: world.gateway.url,
      token: () => outage.then(() => world.token),
      WebSocket: socket.RecordingSocket,
      reconnect: FAST_RECONNECT,
      maxMessagesPerSecond: CLIENT_MESSAGES_PER_SECOND,
    });
    clients.push(viewer);
    const reported: ServerError[] = [];
    viewer.errors$.subscribe((e) => reported.push(e));
    await firstValueFrom(
      viewer.state$.pipe(
        filter((s) => s === 'open'),
        timeout(10_000),
      ),
    );
    // An error reply (`rate_limited`: the messages past the limit are dropped) ends a wait early.
    const refused = () => socket.received.filter((m) => m.type === 'error');
    for (const itemId of itemIds) viewer.subscribe(itemId);
    await waitUntil(
      'every item has its snapshot',
      () => refused().length > 0 || itemIds.every((id) => viewer.view(id)?.text === `${id} begins `),
      PACED_MS,
    );
    expect(refused()).toEqual([]);
    // Act: the connection drops; every item gets more text and ends meanwhile; the client reconnects.
    let endOutage = () => {};
    outage = new Promise((resolve) => {
      endOutage = resolve;
    });
    socket.last().terminate();
    await firstValueFrom(viewer.state$.pipe(filter((s) => s === 'reconnecting')));
    for (const itemId of itemIds) await publish(itemId, ['and ends'], true);
    endOutage();
    await waitUntil(
      'every item is completed on the viewer',
      () => refused().length > 0 || itemIds.every((id) => viewer.view(id)?.status === 'completed'),
      PACED_MS,
    );
    // Assess: no message over the limit, every item exact, each resumed by one snapshot.
    expect(refused()).toEqual([]);
    for (const itemId of itemIds) {
      expect(viewer.view(itemId)?.text).toBe(
        (await readItem(world.dynamo, world.config.tables, itemId))?.text,
      );
    }
    const resumed = socket.received.filter((m) => m.type === 'snapshot' && m.status === 'completed');
    expect(resumed.map((m) => m.itemId).sort()).toEqual([...itemIds].sort());
    expect(socket.sockets).toHaveLength(2);
    expect(reported).toEqual([]);
  });
});
