import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deltaFrames,
  frameBytes,
  packBatchFrames,
  snapshotFrames,
  splitIntoFrames,
  updateFrames,
} from '../../../../consumers/viewers/framing.js';
import {
  DeltaMessage,
  MAX_FRAME_BYTES,
  ServerMessage,
  SnapshotMessage,
} from '../../../../shared/contracts/websocket.js';

const render = (text: string, more: boolean) =>
  JSON.stringify({ type: 'delta', text, ...(more ? { more } : {}) });

/** Text rich in what makes JSON sizes differ from string lengths. */
const awkwardText = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'grapheme' }),
      fc.constantFrom('"', '\\', '\n', '\u0001', '\u2028', '😀', 'é', '\ud800', '\udc00', 'ab'),
    ),
  )
  .map((parts) => parts.join(''));

describe('splitIntoFrames', () => {
  it('keeps a message that fits in one frame whole', () => {
    expect(splitIntoFrames('hello', render, 100)).toEqual([render('hello', false)]);
  });

  it('splits into frames that fit, join to the text, and mark all but the last', () => {
    fc.assert(
      fc.property(awkwardText, fc.integer({ min: 44, max: 200 }), (text, maxBytes) => {
        const frames = splitIntoFrames(text, render, maxBytes);
        const parsed = frames.map((f) => JSON.parse(f) as { text: string; more?: boolean });
        for (const frame of frames) expect(frameBytes(frame)).toBeLessThanOrEqual(maxBytes);
        expect(parsed.map((p) => p.text).join('')).toBe(text);
        expect(parsed.slice(0, -1).every((p) => p.more === true)).toBe(true);
        expect(parsed.at(-1)?.more).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('never separates the halves of a surrogate pair', () => {
    const text = '😀'.repeat(100);
    const frames = splitIntoFrames(text, render, 50);
    for (const frame of frames) {
      const piece = (JSON.parse(frame) as { text: string }).text;
      expect(piece).toMatch(/^(?:\ud83d\ude00)*$/);
    }
  });

  it('refuses an envelope that leaves no room for text', () => {
    expect(() => splitIntoFrames('x'.repeat(100), render, 20)).toThrow(/leaves no room/);
  });
});

describe('delta and snapshot frames', () => {
  it('a split delta repeats its seq range on every frame', () => {
    const text = 'x'.repeat(3 * MAX_FRAME_BYTES);
    const frames = deltaFrames({ itemId: 'i', attempt: 2, fromSeq: 5, toSeq: 9, text }).map((f) =>
      DeltaMessage.parse(JSON.parse(f)),
    );
    expect(frames).toHaveLength(4);
    expect(frames.every((f) => f.attempt === 2 && f.fromSeq === 5 && f.toSeq === 9)).toBe(true);
    expect(frames.map((f) => f.text).join('')).toBe(text);
  });

  it('a split snapshot carries usage on its last frame only and offset on every frame', () => {
    const text = 'y'.repeat(2 * MAX_FRAME_BYTES);
    const frames = snapshotFrames({
      itemId: 'i',
      attempt: 1,
      seq: 7,
      status: 'completed',
      text,
      offset: 3,
      usage: { inputTokens: 1, outputTokens: 2 },
    }).map((f) => SnapshotMessage.parse(JSON.parse(f)));
    expect(frames).toHaveLength(3);
    expect(frames.map((f) => [f.more, f.offset, f.usage])).toEqual([
      [true, 3, undefined],
      [true, 3, undefined],
      [undefined, 3, { inputTokens: 1, outputTokens: 2 }],
    ]);
  });
});

describe('updateFrames', () => {
  const base = { itemId: 'i', tenant: 't', attempt: 2, fromSeq: 0, toSeq: 3, text: 'abc' } as const;
  const types = (frames: string[]) => frames.map((f) => ServerMessage.parse(JSON.parse(f)).type);

  it('reset, delta, done for a batch that started and ended an attempt', () => {
    const frames = updateFrames({
      ...base,
      reset: true,
      status: 'completed',
      usage: { inputTokens: 1, outputTokens: 3 },
    });
    expect(types(frames)).toEqual(['reset', 'delta', 'done']);
  });

  it('only a delta for a batch mid-stream', () => {
    expect(types(updateFrames({ ...base, fromSeq: 4, toSeq: 6, reset: false, status: 'streaming' }))).toEqual(
      ['delta'],
    );
  });

  it('no delta when the batch added no text (an end record alone)', () => {
    const frames = updateFrames({ ...base, text: '', reset: false, status: 'failed' });
    expect(types(frames)).toEqual(['failed']);
    expect(JSON.parse(frames[0]!)).toMatchObject({ error: { code: 'unknown' } });
  });

  it("ends carry the end record's seq, or the item's next seq when no record came", () => {
    const end = (frames: string[]) => ServerMessage.parse(JSON.parse(frames.at(-1)!));
    const done = updateFrames({ ...base, fromSeq: 4, toSeq: 6, reset: false, status: 'completed' });
    expect(end(done)).toMatchObject({ type: 'done', seq: 6 });
    // A stalled item marked failed: no record applied, its next seq is 7.
    const stalled = updateFrames({ ...base, fromSeq: 7, toSeq: 6, text: '', reset: false, status: 'failed' });
    expect(end(stalled)).toMatchObject({ type: 'failed', seq: 7 });
  });
});

describe('packBatchFrames', () => {
  const message = (i: number, size = 10) =>
    JSON.stringify({
      type: 'delta',
      itemId: `item-${i}`,
      attempt: 1,
      fromSeq: 0,
      toSeq: 0,
      text: 'x'.repeat(size),
    });

  it('packs messages in order into as few batch frames as fit the limit', () => {
    const frames = Array.from({ length: 50 }, (_, i) => message(i, 100));
    const packed = packBatchFrames(frames, 1_000);
    expect(packed.length).toBeGreaterThan(1);
    for (const frame of packed) expect(frameBytes(frame)).toBeLessThanOrEqual(1_000);
    const unpacked = packed.flatMap((f) => (JSON.parse(f) as { messages: unknown[] }).messages);
    expect(unpacked).toEqual(frames.map((f) => JSON.parse(f)));
  });

  it('passes a message too large to share a frame on unpacked, between packed neighbours', () => {
    const big = message(1, 990);
    const packed = packBatchFrames([message(0), big, message(2)], 1_000);
    expect(packed).toHaveLength(3);
    expect(packed[1]).toBe(big);
    expect(JSON.parse(packed[0] ?? '')).toEqual({ type: 'batch', messages: [JSON.parse(message(0))] });
  });

  it('gives nothing for nothing', () => {
    expect(packBatchFrames([])).toEqual([]);
  });
});
