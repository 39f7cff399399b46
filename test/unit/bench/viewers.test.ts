import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { BenchViewer } from '../../../bench/scenario/viewers.js';

/** A server that answers a subscribe with `replies`, in order, on one connection. */
async function serve(replies: readonly object[]): Promise<{ url: string; server: WebSocketServer }> {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  server.on('connection', (socket: WebSocket) => {
    socket.once('message', () => {
      for (const reply of replies) socket.send(JSON.stringify(reply));
    });
  });
  const { port } = server.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}`, server };
}

const delta = (fromSeq: number, toSeq: number, text: string) => ({
  type: 'delta',
  itemId: 'a',
  attempt: 1,
  fromSeq,
  toSeq,
  text,
});

async function view(replies: readonly object[]): Promise<BenchViewer> {
  const { url, server } = await serve(replies);
  servers.push(server);
  const viewer = await BenchViewer.connect(url, 'token');
  viewers.push(viewer);
  await viewer.subscribe('a');
  const deadline = Date.now() + 5_000;
  while (viewer.items.get('a')?.terminal === undefined && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 5));
  return viewer;
}

const servers: WebSocketServer[] = [];
const viewers: BenchViewer[] = [];
afterEach(() => {
  for (const viewer of viewers.splice(0)) viewer.close();
  for (const server of servers.splice(0)) server.close();
});

describe('bench viewer', () => {
  it('takes a delta that arrives after a snapshot already holding it as covered, not as a duplicate', async () => {
    const viewer = await view([
      { type: 'snapshot', itemId: 'a', attempt: 1, seq: 2, status: 'streaming', text: 'ab' },
      delta(0, 1, 'ab'),
      delta(2, 2, 'c'),
      { type: 'done', itemId: 'a' },
    ]);
    expect(viewer.items.get('a')).toMatchObject({ text: 'abc', terminal: 'completed' });
    expect(viewer.anomalies).toEqual({ duplicates: 0, gaps: 0 });
    expect(viewer.messages.covered).toBe(1);
  });

  it('counts a delta received twice as a duplicate and applies it once', async () => {
    const viewer = await view([
      { type: 'snapshot', itemId: 'a', attempt: 1, seq: 0, status: 'streaming', text: '' },
      delta(0, 1, 'ab'),
      delta(0, 1, 'ab'),
      delta(2, 2, 'c'),
      { type: 'done', itemId: 'a' },
    ]);
    expect(viewer.items.get('a')).toMatchObject({ text: 'abc', terminal: 'completed' });
    expect(viewer.anomalies).toEqual({ duplicates: 1, gaps: 0 });
  });

  it('counts a second copy of a delta the snapshot overtook as a duplicate', async () => {
    const viewer = await view([
      { type: 'snapshot', itemId: 'a', attempt: 1, seq: 2, status: 'streaming', text: 'ab' },
      delta(0, 1, 'ab'),
      delta(0, 1, 'ab'),
      { type: 'done', itemId: 'a' },
    ]);
    expect(viewer.items.get('a')).toMatchObject({ text: 'ab', terminal: 'completed' });
    expect(viewer.anomalies.duplicates).toBe(1);
  });
});

/** A server that answers the nth subscribe on a connection with `answers[n]`, counting messages by arrival. */
async function serveEach(answers: ReadonlyArray<readonly object[]>) {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  servers.push(server);
  const arrivals: number[] = [];
  server.on('connection', (socket: WebSocket) => {
    let n = 0;
    socket.on('message', () => {
      arrivals.push(Date.now());
      for (const reply of answers[n++] ?? []) socket.send(JSON.stringify(reply));
    });
  });
  const { port } = server.address() as AddressInfo;
  return { url: `ws://127.0.0.1:${port}`, arrivals };
}

async function until(what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('bench viewer, ends and pacing', () => {
  it('resubscribes on a done past the seq it holds, and ends the item with all of its text', async () => {
    const { url } = await serveEach([
      [
        { type: 'snapshot', itemId: 'a', attempt: 1, seq: 0, status: 'streaming', text: '' },
        delta(0, 0, 'a'),
        // The deltas for seqs 1 and 2 never came: the end's seq says so.
        { type: 'done', itemId: 'a', attempt: 1, seq: 3 },
      ],
      [{ type: 'snapshot', itemId: 'a', attempt: 1, seq: 3, status: 'completed', text: 'abc' }],
    ]);
    const viewer = await BenchViewer.connect(url, 'token');
    viewers.push(viewer);
    await viewer.subscribe('a');
    await until('the item ends', () => viewer.items.get('a')?.terminal !== undefined);
    expect(viewer.items.get('a')).toMatchObject({ text: 'abc', terminal: 'completed' });
    expect(viewer.anomalies.gaps).toBe(1);
  });

  it('sends a flood of subscribes within the server limit of 20 a second over 5 s, dropping none', async () => {
    const { url, arrivals } = await serveEach([]);
    const viewer = await BenchViewer.connect(url, 'token');
    viewers.push(viewer);
    for (let i = 0; i < 60; i++) void viewer.subscribe(`item-${i}`);
    await until('every subscribe arrived', () => arrivals.length === 60);
    const first = arrivals[0] as number;
    // The first 24 at once, then 12 a second: never 100 in 5 s.
    expect(arrivals.filter((t) => t - first < 1_000).length).toBeLessThanOrEqual(37);
    expect((arrivals.at(-1) as number) - first).toBeGreaterThan(2_500);
  });
});
