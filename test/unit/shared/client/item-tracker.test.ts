import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SnapshotContent } from '../../../../consumers/viewers/framing.js';
import { planSnapshot } from '../../../../consumers/viewers/snapshot.js';
import { type ItemMessage, ItemTracker } from '../../../../shared/client/item-tracker.js';
import type { DeltaMessage, SnapshotMessage } from '../../../../shared/contracts/websocket.js';
import { ItemHead } from '../../../../shared/items.js';

const ID = 'item';
const USAGE = { inputTokens: 3, outputTokens: 5 };

const snapshot = (fields: Partial<SnapshotMessage>): SnapshotMessage => ({
  type: 'snapshot',
  itemId: ID,
  attempt: 1,
  seq: 0,
  status: 'streaming',
  text: '',
  ...fields,
});
const delta = (attempt: number, fromSeq: number, toSeq: number, text: string, more?: true): DeltaMessage => ({
  type: 'delta',
  itemId: ID,
  attempt,
  fromSeq,
  toSeq,
  text,
  ...(more ? { more } : {}),
});

/** A tracker that has sent its subscribe, fed `messages` in order. */
function feed(messages: ItemMessage[], tracker = new ItemTracker(ID)) {
  if (!tracker.awaitingSnapshot && !tracker.view) tracker.subscribeRequest();
  const results = messages.map((m) => tracker.receive(m));
  return {
    tracker,
    changes: results.flatMap((r) => r.changes),
    resubscribe: results.some((r) => r.resubscribe),
  };
}

describe('ItemTracker', () => {
  describe('a delta racing the snapshot', () => {
    it('arriving before the snapshot and already in it is dropped', () => {
      const { tracker } = feed([delta(1, 0, 1, 'ab'), snapshot({ seq: 2, text: 'ab' })]);
      expect(tracker.view?.text).toBe('ab');
    });

    it('arriving before the snapshot and not in it is applied after it', () => {
      const { tracker } = feed([delta(1, 2, 3, 'cd'), snapshot({ seq: 2, text: 'ab' })]);
      expect(tracker.view).toMatchObject({ text: 'abcd', seq: 4 });
    });

    it('arriving after the snapshot and already in it is dropped', () => {
      const { tracker } = feed([snapshot({ seq: 4, text: 'abcd' }), delta(1, 2, 3, 'cd')]);
      expect(tracker.view?.text).toBe('abcd');
    });

    it("a reset and the new attempt's delta held before an older snapshot are applied on top", () => {
      const { tracker, changes } = feed([
        { type: 'reset', itemId: ID, attempt: 2 },
        delta(2, 0, 0, 'new'),
        snapshot({ attempt: 1, seq: 5, text: 'old text' }),
      ]);
      expect(tracker.view).toMatchObject({ attempt: 2, text: 'new', seq: 1 });
      expect(changes.map((c) => c.kind)).toEqual(['text', 'reset', 'text']);
    });

    it('done held before a completed snapshot is reported once', () => {
      const { changes } = feed([
        { type: 'done', itemId: ID, attempt: 1, usage: USAGE },
        snapshot({ seq: 3, status: 'completed', text: 'all', usage: USAGE }),
      ]);
      expect(changes.filter((c) => c.kind === 'done')).toHaveLength(1);
    });
  });

  it('joins split frames and applies a split delta only when its last frame arrives', () => {
    const tracker = new ItemTracker(ID);
    tracker.subscribeRequest();
    tracker.receive(snapshot({ seq: 1, text: 'he', more: true }));
    expect(tracker.view).toBeUndefined();
    tracker.receive(snapshot({ seq: 1, text: 'llo' }));
    expect(tracker.view?.text).toBe('hello');
    expect(tracker.receive(delta(1, 1, 2, ' wor', true)).changes).toEqual([]);
    expect(tracker.view?.text).toBe('hello');
    tracker.receive(delta(1, 1, 2, 'ld'));
    expect(tracker.view).toMatchObject({ text: 'hello world', seq: 3 });
  });

  it('drops a split delta cut short by a lost connection', () => {
    const { tracker } = feed([snapshot({ seq: 1, text: 'a' }), delta(1, 1, 1, 'half', true)]);
    tracker.connectionLost();
    expect(tracker.subscribeRequest()).toEqual({
      action: 'subscribe',
      itemId: ID,
      attempt: 1,
      seq: 1,
      offset: 1,
    });
    tracker.receive(snapshot({ seq: 2, offset: 1, text: 'whole' }));
    expect(tracker.view?.text).toBe('awhole');
  });

  it('drops duplicates and deltas of older attempts', () => {
    const { tracker } = feed([
      snapshot({ attempt: 2, seq: 1, text: 'x' }),
      delta(2, 1, 1, 'y'),
      delta(2, 1, 1, 'y'),
      delta(1, 2, 2, 'stale'),
      { type: 'reset', itemId: ID, attempt: 2 },
    ]);
    expect(tracker.view).toMatchObject({ attempt: 2, text: 'xy', seq: 2 });
  });

  it('a delta of a new attempt from seq 0 starts it without a reset message', () => {
    const { tracker, changes } = feed([snapshot({ attempt: 0, status: 'queued' }), delta(1, 0, 0, 'go')]);
    expect(tracker.view).toMatchObject({ attempt: 1, text: 'go', status: 'streaming' });
    expect(changes.map((c) => c.kind)).toEqual(['text', 'reset', 'text']);
  });

  describe('asks to resubscribe, holding messages until the new snapshot', () => {
    it('on a gap in seqs (a missed delta)', () => {
      const { tracker, resubscribe } = feed([snapshot({ seq: 1, text: 'a' }), delta(1, 3, 3, 'd')]);
      expect(resubscribe).toBe(true);
      expect(tracker.subscribeRequest()).toEqual({
        action: 'subscribe',
        itemId: ID,
        attempt: 1,
        seq: 1,
        offset: 1,
      });
      tracker.receive(snapshot({ seq: 3, offset: 1, text: 'bc' }));
      expect(tracker.view).toMatchObject({ text: 'abcd', seq: 4 });
    });

    it('on a mid-attempt delta of an attempt never seen begun', () => {
      expect(feed([snapshot({ seq: 1, text: 'a' }), delta(2, 4, 4, 'x')]).resubscribe).toBe(true);
    });

    it('on done or failed of a newer attempt', () => {
      expect(
        feed([snapshot({ seq: 1 }), { type: 'done', itemId: ID, attempt: 2, usage: USAGE }]).resubscribe,
      ).toBe(true);
    });

    it.each([
      { type: 'done', itemId: ID, attempt: 1, usage: USAGE, seq: 3 },
      {
        type: 'failed',
        itemId: ID,
        attempt: 1,
        error: { code: 'x', message: 'y', retryable: false },
        seq: 3,
      },
    ] as const)(
      'on $type past the next seq (the last deltas missed), ending only with all the text',
      (end) => {
        // Prepare: the delta of seqs 1–2 never arrived.
        const { tracker, resubscribe, changes } = feed([snapshot({ seq: 1, text: 'a' }), end]);
        // Assess: not ended with a prefix; the resumed snapshot ends it once, with all the text.
        expect(resubscribe).toBe(true);
        expect(tracker.terminal).toBe(false);
        expect(changes).toEqual([expect.objectContaining({ kind: 'text' })]);
        expect(tracker.subscribeRequest()).toMatchObject({ attempt: 1, seq: 1, offset: 1 });
        const status = end.type === 'done' ? 'completed' : 'failed';
        const after = tracker.receive(snapshot({ seq: 4, offset: 1, text: 'bc', status }));
        expect(tracker.view).toMatchObject({ text: 'abc', status });
        expect(after.changes.map((c) => c.kind)).toEqual(['text', end.type]);
      },
    );

    it('on a resumed snapshot that does not fit the text held, then asks in full', () => {
      const { tracker } = feed([snapshot({ seq: 1, text: 'a' })]);
      tracker.subscribeRequest();
      expect(tracker.receive(snapshot({ seq: 5, offset: 9, text: 'zz' })).resubscribe).toBe(true);
      expect(tracker.subscribeRequest()).toEqual({ action: 'subscribe', itemId: ID });
      tracker.receive(snapshot({ seq: 5, text: 'abcde' }));
      expect(tracker.view?.text).toBe('abcde');
    });
  });

  it('ignores everything after the item ended', () => {
    const { tracker } = feed([
      snapshot({ seq: 1, text: 'a' }),
      {
        type: 'failed',
        itemId: ID,
        attempt: 1,
        error: { code: 'cancelled', message: 'c', retryable: false },
      },
      delta(1, 1, 1, 'late'),
    ]);
    expect(tracker.view).toMatchObject({ status: 'failed', text: 'a', error: { code: 'cancelled' } });
    expect(tracker.terminal).toBe(true);
  });

  it('adopts an item seen first through every-item subscription only from its beginning', () => {
    const fromStart = new ItemTracker(ID);
    expect(fromStart.adopt(delta(1, 0, 0, 'a'))).toBe(true);
    fromStart.receive(delta(1, 0, 0, 'a'));
    expect(fromStart.view?.text).toBe('a');
    expect(new ItemTracker(ID).adopt(delta(1, 7, 7, 'mid'))).toBe(false);
  });

  it('reports what a resumed snapshot appended, and a changed attempt as replaced', () => {
    const { tracker } = feed([snapshot({ seq: 1, text: 'ab' })]);
    tracker.subscribeRequest();
    expect(tracker.receive(snapshot({ seq: 2, offset: 2, text: 'c' })).changes[0]).toMatchObject({
      kind: 'text',
      appended: 'c',
      replaced: false,
    });
    tracker.subscribeRequest();
    expect(tracker.receive(snapshot({ attempt: 2, seq: 1, text: 'new' })).changes[0]).toMatchObject({
      kind: 'text',
      appended: 'new',
      replaced: true,
    });
  });
});

/** An item's history: attempts of batches of delta records; the last attempt ends the item. */
interface Batch {
  readonly message: DeltaMessage;
  readonly reset: boolean;
  /** The head after the batch. */
  readonly head: ItemHead;
}

const historyArb = fc.record({
  attempts: fc.array(
    fc.array(
      fc.array(fc.string({ minLength: 1, maxLength: 6, unit: 'binary' }), { minLength: 1, maxLength: 3 }),
      {
        minLength: 1,
        maxLength: 5,
      },
    ),
    { minLength: 1, maxLength: 3 },
  ),
  failed: fc.boolean(),
});

interface History {
  readonly attempts: string[][][];
  readonly failed: boolean;
}

function replay(history: History) {
  const batches: Batch[] = [];
  let version = 0;
  history.attempts.forEach((attemptBatches, index) => {
    const attempt = index + 1;
    let seq = 0;
    let text = '';
    attemptBatches.forEach((records, b) => {
      const added = records.join('');
      const message = delta(attempt, seq, seq + records.length - 1, added);
      seq += records.length;
      text += added;
      version++;
      batches.push({
        message,
        reset: b === 0,
        head: ItemHead.parse({
          itemId: ID,
          status: 'streaming',
          version,
          attempt,
          nextSeq: seq,
          text,
          modelId: 'm',
          createdAt: 'now',
        }),
      });
    });
  });
  const last = batches.at(-1)!;
  // The end record takes the seq after the last delta.
  const seq = last.head.nextSeq;
  const end: ItemMessage = history.failed
    ? {
        type: 'failed',
        itemId: ID,
        attempt: last.head.attempt,
        error: { code: 'x', message: 'y', retryable: false },
        seq,
      }
    : { type: 'done', itemId: ID, attempt: last.head.attempt, usage: USAGE, seq };
  const finalHead = ItemHead.parse({
    ...last.head,
    status: history.failed ? 'failed' : 'completed',
    nextSeq: last.head.nextSeq + 1,
    version: version + 1,
  });
  return { batches, end, finalHead };
}

/** The messages a batch fans out, its delta split into frames at `cuts`. */
function batchMessages(batch: Batch, cuts: number[]): ItemMessage[] {
  const { text } = batch.message;
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].filter((p) => p > 0 && p < text.length);
  points.sort((a, b) => a - b);
  const pieces = [0, ...points].map((start, i) => text.slice(start, [...points, text.length][i]));
  const frames = pieces.map((piece, i) => ({
    ...batch.message,
    text: piece,
    ...(i < pieces.length - 1 ? { more: true } : {}),
  }));
  return [
    ...(batch.reset ? [{ type: 'reset' as const, itemId: ID, attempt: batch.message.attempt }] : []),
    ...frames,
  ];
}

function snapshotMessages(content: SnapshotContent, cuts: number[]): SnapshotMessage[] {
  const { text } = content;
  const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].filter((p) => p > 0 && p < text.length);
  points.sort((a, b) => a - b);
  const pieces = [0, ...points].map((start, i) => text.slice(start, [...points, text.length][i]));
  return pieces.map((piece, i) => ({
    type: 'snapshot',
    ...content,
    text: piece,
    ...(i < pieces.length - 1 ? { more: true } : {}),
  }));
}

/** Interleaves two sequences, keeping the order within each, by `choices`. */
function interleave<T>(a: T[], b: T[], choices: boolean[]): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < a.length || j < b.length) {
    const takeA = j >= b.length || (i < a.length && (choices[k++ % Math.max(1, choices.length)] ?? true));
    out.push(takeA ? a[i++]! : b[j++]!);
  }
  return out;
}

describe('ItemTracker against the server protocol (properties)', () => {
  it('ends with exactly the stored text wherever the subscription and the snapshot fall among the batches', () => {
    fc.assert(
      fc.property(
        historyArb,
        fc.nat(),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        (history, w0, r0, cuts, choices) => {
          const { batches, end, finalHead } = replay(history);
          const heads = [...batches.map((b) => b.head), finalHead];
          // The subscription is written before batch `w`; the snapshot reads the head after batch `r` ≥ w - 1.
          const w = w0 % (batches.length + 1);
          const r = w - 1 + (r0 % (heads.length - w + 1));
          const head = r < 0 ? undefined : heads[r];
          const live = [...batches.slice(w).flatMap((b) => batchMessages(b, cuts)), end];
          const snap = snapshotMessages(planSnapshot(ID, head, head?.text ?? ''), cuts);
          const { tracker, resubscribe } = feed(interleave(live, snap, choices));
          expect(resubscribe).toBe(false);
          expect(tracker.view?.text).toBe(finalHead.text);
          expect(tracker.view?.status).toBe(finalHead.status);
          expect(tracker.view?.attempt).toBe(finalHead.attempt);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('resuming after a lost connection ends with exactly the stored text and asks only for what is missing', () => {
    fc.assert(
      fc.property(
        historyArb,
        fc.nat(),
        fc.nat(),
        fc.nat(),
        fc.array(fc.boolean(), { maxLength: 40 }),
        (history, a, b, c, choices) => {
          const { batches, end, finalHead } = replay(history);
          const heads = [...batches.map((x) => x.head), finalHead];
          // First connection: subscribed before any batch, connection lost after `cut` messages.
          const first = [...batches.flatMap((x) => batchMessages(x, [])), end];
          const firstSnapshot = snapshotMessages(planSnapshot(ID, undefined, ''), []);
          const received = interleave(first, firstSnapshot, choices).slice(0, a % (first.length + 2));
          const { tracker } = feed(received);
          tracker.connectionLost();
          if (tracker.terminal) return;
          // Second connection: subscription before batch `w`, snapshot after `r`, resumed from what is held.
          const request = tracker.subscribeRequest();
          const w = b % (batches.length + 1);
          const r = w - 1 + (c % (heads.length - w + 1));
          const head = r < 0 ? undefined : heads[r];
          const resumed = planSnapshot(ID, head, head?.text ?? '', request);
          if (resumed.offset !== undefined && tracker.view) {
            expect(tracker.view.text.slice(0, resumed.offset) + resumed.text).toBe(head?.text);
          }
          const live = [...batches.slice(w).flatMap((x) => batchMessages(x, [])), end];
          const { resubscribe } = feed(interleave(live, snapshotMessages(resumed, []), choices), tracker);
          expect(resubscribe).toBe(false);
          expect(tracker.view?.text).toBe(finalHead.text);
          expect(tracker.view?.status).toBe(finalHead.status);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('ItemTracker when deliveries are given up (properties)', () => {
  it('never ends an item with part of its text, and a resubscribe then ends it exactly', () => {
    fc.assert(
      fc.property(
        historyArb,
        fc.boolean(),
        fc.array(fc.option(fc.nat(), { freq: 3 }), { maxLength: 16 }),
        (history, endApart, cutoffs) => {
          const { batches, end, finalHead } = replay(history);
          // One delivery per consumer batch; the end comes with the last batch or in a batch of its own.
          const deliveries = batches.map((b) => batchMessages(b, []));
          if (endApart) deliveries.push([end]);
          else deliveries.at(-1)?.push(end);
          // A given-up delivery sent its frames in order up to the one that failed.
          const received = deliveries.flatMap((frames, i) => {
            const cutoff = cutoffs[i];
            return cutoff === null || cutoff === undefined ? frames : frames.slice(0, cutoff % frames.length);
          });
          const { tracker, resubscribe } = feed([
            ...snapshotMessages(planSnapshot(ID, undefined, ''), []),
            ...received,
          ]);
          if (tracker.terminal) expect(tracker.view?.text).toBe(finalHead.text);
          if (!resubscribe) return;
          const request = tracker.subscribeRequest();
          const last = planSnapshot(ID, finalHead, finalHead.text ?? '', request);
          for (const frame of snapshotMessages(last, [])) tracker.receive(frame);
          expect(tracker.view?.text).toBe(finalHead.text);
          expect(tracker.view?.status).toBe(finalHead.status);
        },
      ),
      { numRuns: 1_000 },
    );
  });
});
