import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { run, watch } from '../../cli/commands/watch.js';
import { readItem } from '../../shared/items.js';
import { type DeliveryWorld, startDeliveryWorld, waitUntil } from './websocket-helpers.js';

/** Output streams that keep what was written. */
function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: { write: (s: string) => out.push(s) }, err: { write: (s: string) => err.push(s) } },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

describe('watch command', () => {
  let world: DeliveryWorld;
  let sequence = 0;
  const newItem = async () => {
    const itemId = `watch-${++sequence}`;
    await world.items.create(itemId);
    return itemId;
  };
  const publish = async (itemId: string, texts: string[], end?: 'done' | 'failed') =>
    world.fanout.publish([
      await world.items.apply(itemId, {
        texts,
        ...(end === 'done' ? { end: { usage: { inputTokens: 1, outputTokens: 9 } } } : {}),
        ...(end === 'failed'
          ? { error: { error: { code: 'cancelled', message: 'stopped', retryable: false }, final: true } }
          : {}),
      }),
    ]);
  const subscribed = (itemId: string) =>
    waitUntil(
      `a viewer subscribed to ${itemId}`,
      async () => (await world.rows(`subs#${itemId}`)).length > 0,
    );

  beforeAll(async () => {
    world = await startDeliveryWorld();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it('prints the text as it streams, survives a dropped connection, and exits 0 on completion', async () => {
    // Prepare
    const itemId = await newItem();
    await publish(itemId, ['already ', 'there\n']);
    const output = capture();
    const exit = watch({ url: world.gateway.url, token: world.token, itemId }, output.io);
    await subscribed(itemId);
    // Act
    await publish(itemId, ['streamed ']);
    await waitUntil('the delta is printed', () => output.out().endsWith('streamed '));
    await world.gateway.dropConnection(world.gateway.connectionIds().at(-1)!, { notify: false });
    await publish(itemId, ['while away ']);
    await publish(itemId, ['the end'], 'done');
    // Assess
    expect(await exit).toBe(0);
    const stored = (await readItem(world.dynamo, world.config.tables, itemId))?.text;
    expect(output.out()).toBe(`${stored}\n`);
    expect(output.err()).toContain('[connection lost; reconnecting]');
    expect(output.err()).toContain('[completed (attempt 1, 9 output tokens)]');
  });

  it('waits for an item submitted after it began watching, then prints it and exits 0', async () => {
    const itemId = `watch-${++sequence}`;
    const output = capture();
    const refusals: string[] = [];
    class Recording extends WebSocket {
      constructor(url: string) {
        super(url);
        this.on('message', (data: Buffer) => refusals.push(String(JSON.parse(String(data)).code)));
      }
    }
    const exit = watch(
      { url: world.gateway.url, token: world.token, itemId, WebSocket: Recording },
      output.io,
    );
    // The item exists only once its producer claims it; watch asks until then.
    await waitUntil('watch was answered not_found', () => refusals.includes('not_found'));
    await world.items.create(itemId);
    await subscribed(itemId);
    await publish(itemId, ['late but whole'], 'done');
    expect(await exit).toBe(0);
    expect(output.out()).toBe('late but whole\n');
    expect(output.err()).not.toContain('server:');
  });

  it('exits 1 when the item is still unknown at the deadline, saying so', async () => {
    const output = capture();
    const exit = watch(
      {
        url: world.gateway.url,
        token: world.token,
        itemId: 'watch-never',
        notFoundRetry: { initialDelayMs: 20, maxDelayMs: 100, deadlineMs: 500 },
      },
      output.io,
    );
    expect(await exit).toBe(1);
    expect(output.err()).toContain('item watch-never not found');
  });

  it('exits 1 when the item fails, naming the error', async () => {
    const itemId = await newItem();
    const output = capture();
    const exit = watch({ url: world.gateway.url, token: world.token, itemId }, output.io);
    await subscribed(itemId);
    await publish(itemId, ['partial'], 'failed');
    expect(await exit).toBe(1);
    expect(output.out()).toBe('partial\n');
    expect(output.err()).toContain('[failed: cancelled: stopped]');
  });

  it("--all prints whole lines prefixed with their item, and each item's end", async () => {
    const [a, b] = [await newItem(), await newItem()];
    const output = capture();
    const stop = new AbortController();
    const exit = watch({ url: world.gateway.url, token: world.token, signal: stop.signal }, output.io);
    await waitUntil('the dashboard subscribed', async () => (await world.rows('subs#*')).length > 0);
    await publish(a, ['first line\nsecond ']);
    await publish(b, ['other\n']);
    await publish(a, ['line\n'], 'done');
    await waitUntil('a completes', () => output.out().includes(`${a} ✓`));
    stop.abort();
    expect(await exit).toBe(0);
    const lines = output.out().trimEnd().split('\n');
    expect(lines.filter((l) => l.startsWith(`${a} │`))).toEqual([`${a} │ first line`, `${a} │ second line`]);
    expect(lines.filter((l) => l.startsWith(`${b} │`))).toEqual([`${b} │ other`]);
  });

  describe('run', () => {
    it('exits 2 with the usage for bad arguments', async () => {
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        expect(await run([])).toBe(2);
        expect(await run(['a', '--all'])).toBe(2);
        expect(await run(['bad id'])).toBe(2);
        expect(stderr.mock.calls.map((c) => String(c[0])).join('')).toContain(
          'itemId must be 1–128 characters',
        );
      } finally {
        stderr.mockRestore();
      }
    });

    it('watches through the target in a stack file', async () => {
      const itemId = await newItem();
      const dir = mkdtempSync(join(tmpdir(), 'watch-'));
      const file = join(dir, 'stack.json');
      writeFileSync(
        file,
        JSON.stringify({
          region: 'us-east-1',
          kinesis: { inputStream: 'work-items' },
          http: { url: 'http://127.0.0.1:1' },
          websocket: { url: world.gateway.url },
          token: world.token,
        }),
      );
      const written: string[] = [];
      const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((s) => written.push(String(s)) > 0);
      const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        const exit = run([itemId, '--stack', file]);
        await subscribed(itemId);
        await publish(itemId, ['via the stack file'], 'done');
        expect(await exit).toBe(0);
        expect(written.join('')).toBe('via the stack file\n');
      } finally {
        stdout.mockRestore();
        stderr.mockRestore();
      }
    });
  });
});
