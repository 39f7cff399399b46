import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ChunkRecord } from '../../../../shared/contracts/chunk-record.js';
import {
  emptyState,
  type FoldOptions,
  foldRecords,
  type ItemState,
  planItem,
  type SealedPart,
} from '../../../../consumers/reassembler/core.js';
import { attemptRecords, longText, splitText, TEST_USAGE } from '../../../factories/chunk-records.js';

const NOW = '2030-01-01T00:00:00.000Z';
const options = (sealBytes = 1 << 30): FoldOptions => ({ now: NOW, sealBytes });

/** The whole text of a state's attempt: sealed parts (collected by the caller) and tail. */
const textOf = (parts: ReadonlyMap<string, string>, state: ItemState) => {
  let text = '';
  for (let i = 0; i < state.parts; i++) {
    const part = parts.get(`${state.attempt}:${i}`);
    if (part === undefined) throw new Error(`part ${i} of attempt ${state.attempt} was never sealed`);
    text += part;
  }
  return text + state.tail;
};

/** Folds batches in order, as consecutive Lambda invocations would, collecting sealed parts. */
function foldBatches(batches: readonly (readonly ChunkRecord[])[], sealBytes: number) {
  let state = emptyState();
  const parts = new Map<string, string>();
  const prefixes: { attempt: number; text: string }[] = [];
  for (const batch of batches) {
    const result = foldRecords(state, batch, options(sealBytes));
    for (const part of result.sealed) recordPart(parts, part);
    state = result.state;
    prefixes.push({ attempt: state.attempt, text: textOf(parts, state) });
  }
  return { state, parts, prefixes };
}

function recordPart(parts: Map<string, string>, part: SealedPart) {
  const key = `${part.attempt}:${part.index}`;
  const before = parts.get(key);
  if (before !== undefined && before !== part.text) {
    throw new Error(`part ${key} sealed twice with different content`);
  }
  parts.set(key, part.text);
}

describe('folding chunk records into an item', () => {
  const item = 'item-1';

  it('appends deltas in seq order and completes on end with usage and cost', () => {
    const records = attemptRecords(item, 1, ['Hello', ', ', 'world'], { type: 'end', costUsd: 0.25 });

    const { state, appended, fromSeq, appliedInAttempt } = foldRecords(emptyState(), records, options());

    expect(state).toMatchObject({
      attempt: 1,
      nextSeq: 4,
      status: 'completed',
      tail: 'Hello, world',
      usage: TEST_USAGE,
      costUsd: 0.25,
      firstTokenAt: NOW,
      completedAt: NOW,
      error: null,
    });
    expect({ appended, fromSeq, appliedInAttempt }).toEqual({
      appended: 'Hello, world',
      fromSeq: 0,
      appliedInAttempt: 4,
    });
  });

  it('ignores a record whose seq was already applied', () => {
    const [a, b] = attemptRecords(item, 1, ['a', 'b'], { type: 'none' }) as [ChunkRecord, ChunkRecord];

    const result = foldRecords(emptyState(), [a, b, a, b, a], options());

    expect(result.state.tail).toBe('ab');
    expect(result.counts).toMatchObject({ applied: 2, duplicate: 3 });
  });

  it('holds a record that arrives ahead of a gap and applies it when the gap fills', () => {
    const [a, b, c] = attemptRecords(item, 1, ['a', 'b', 'c'], { type: 'none' }) as ChunkRecord[];

    const first = foldRecords(emptyState(), [c!, b!], options());
    expect(first.state).toMatchObject({ nextSeq: 0, tail: '' });
    expect([...first.state.held.keys()].sort()).toEqual([1, 2]);

    const second = foldRecords(first.state, [a!], options());
    expect(second.state).toMatchObject({ nextSeq: 3, tail: 'abc' });
    expect(second.state.held.size).toBe(0);
  });

  it('starts over when a newer attempt arrives, and ignores the older attempt from then on', () => {
    const old = attemptRecords(item, 1, ['old ', 'text '], { type: 'error', final: false });
    const fresh = attemptRecords(item, 2, ['new'], { type: 'end' });

    const result = foldRecords(emptyState(), [old[0]!, fresh[0]!, old[1]!, old[2]!, fresh[1]!], options());

    expect(result.state).toMatchObject({ attempt: 2, nextSeq: 2, status: 'completed', tail: 'new' });
    expect(result.counts.stale).toBe(2);
  });

  it('clears text, usage, error and first-token time on a new attempt', () => {
    const failed = foldRecords(
      emptyState(),
      attemptRecords(item, 1, ['partial'], { type: 'error', final: true }),
      options(),
    ).state;
    const later = '2030-01-01T00:01:00.000Z';

    const result = foldRecords(failed, attemptRecords(item, 2, ['x'], { type: 'none' }), {
      now: later,
      sealBytes: 1e9,
    });

    expect(result.state).toMatchObject({
      attempt: 2,
      status: 'streaming',
      tail: 'x',
      error: null,
      usage: null,
      completedAt: null,
      firstTokenAt: later,
    });
    expect(result.fromSeq).toBe(0);
  });

  it('fails on a final error, keeping the text produced so far', () => {
    const error = { code: 'cancelled', message: 'cancelled by a viewer', retryable: false };
    const records = attemptRecords(item, 1, ['kept'], { type: 'error', final: true, error });

    const { state } = foldRecords(emptyState(), records, options());

    expect(state).toMatchObject({ status: 'failed', error, tail: 'kept', completedAt: NOW });
  });

  it('stays streaming after a non-final error, waiting for the next attempt', () => {
    const records = attemptRecords(item, 1, ['so far'], { type: 'error', final: false });

    const { state } = foldRecords(emptyState(), records, options());

    expect(state).toMatchObject({ status: 'streaming', error: null, tail: 'so far', nextSeq: 2 });
  });

  it('sets the first-token time once per attempt', () => {
    const [a, b] = attemptRecords(item, 1, ['a', 'b'], { type: 'none' }) as ChunkRecord[];
    const first = foldRecords(emptyState(), [a!], options()).state;

    const second = foldRecords(first, [b!], { now: '2030-01-01T00:00:09.000Z', sealBytes: 1e9 }).state;

    expect(second.firstTokenAt).toBe(NOW);
  });

  it('ignores records after the last record of an attempt', () => {
    const records = attemptRecords(item, 1, ['a'], { type: 'end' });
    const bogus: ChunkRecord = { v: 1, itemId: item, attempt: 1, seq: 5, type: 'delta', text: 'late' };

    const { state, counts } = foldRecords(emptyState(), [bogus, ...records, bogus], options());

    expect(state).toMatchObject({ status: 'completed', tail: 'a', nextSeq: 2 });
    expect(state.held.size).toBe(0);
    expect(counts.afterFinal).toBe(1);
  });

  it('seals the tail into a part at a record boundary once it reaches the threshold', () => {
    const records = attemptRecords(item, 1, ['ab', 'cd', 'é', 'f'], { type: 'none' });

    const { state, sealed } = foldRecords(emptyState(), records, options(5));

    // 'ab'+'cd' is 4 bytes; 'é' is 2 bytes and takes the tail to 6: sealed after it, never inside it.
    expect(sealed).toEqual([{ attempt: 1, index: 0, text: 'abcdé' }]);
    expect(state).toMatchObject({ parts: 1, tail: 'f' });
  });
});

describe('planning the writes of one item', () => {
  const item = 'item-2';
  const records = attemptRecords(item, 1, ['a', 'b', 'c', 'd'], { type: 'none' });
  const [r0, r1, r2, r3] = records as [ChunkRecord, ChunkRecord, ChunkRecord, ChunkRecord];

  it('writes nothing when every record is a duplicate, and publishes what they applied again', () => {
    const current = foldRecords(emptyState(), records, options()).state;

    const plan = planItem(item, current, [], [r1, r2], options());

    expect(plan.changed).toBe(false);
    // Not at the head (seq 3 is): the run is published as streaming.
    expect(plan.update).toEqual({
      itemId: item,
      attempt: 1,
      reset: false,
      fromSeq: 1,
      toSeq: 2,
      text: 'bc',
      status: 'streaming',
    });
  });

  it('publishes the final status again when the duplicates reach the head of a completed item', () => {
    const all = attemptRecords(item, 1, ['a', 'b'], { type: 'end' });
    const current = foldRecords(emptyState(), all, options()).state;

    const plan = planItem(item, current, [], all.slice(1), options());

    expect(plan.changed).toBe(false);
    expect(plan.update).toMatchObject({ fromSeq: 1, toSeq: 2, text: 'b', status: 'completed' });
    expect(plan.update?.usage).toEqual(current.usage);
  });

  it('publishes nothing for records of a superseded attempt', () => {
    const current = foldRecords(
      emptyState(),
      attemptRecords(item, 2, ['x'], { type: 'none' }),
      options(),
    ).state;

    const plan = planItem(item, current, [], [r0, r1], options());

    expect(plan.update).toBeUndefined();
  });

  it('holds records ahead of a gap durably, and releases their rows once applied', () => {
    const held = planItem(item, emptyState(), [], [r2, r3], options());
    expect(held.changed).toBe(true);
    expect(held.holdsToWrite.map((r) => r.seq)).toEqual([2, 3]);
    expect(held.update).toBeUndefined();

    const filled = planItem(
      item,
      { ...held.state, held: new Map() },
      [...held.holdsToWrite],
      [r0, r1],
      options(),
    );

    expect(filled.state.tail).toBe('abcd');
    expect(filled.holdsToWrite).toEqual([]);
    expect(filled.holdsToDelete).toEqual([
      { attempt: 1, seq: 2 },
      { attempt: 1, seq: 3 },
    ]);
    expect(filled.update).toEqual({
      itemId: item,
      attempt: 1,
      reset: false,
      fromSeq: 0,
      toSeq: 3,
      text: 'abcd',
      status: 'streaming',
    });
  });

  it('describes a new attempt to viewers as a reset with the new attempt’s text', () => {
    const current = foldRecords(emptyState(), [r0, r1], options()).state;
    const next = attemptRecords(item, 2, ['x', 'y'], { type: 'end', costUsd: 0.5 });

    const plan = planItem(item, current, [], next, options());

    expect(plan.update).toEqual({
      itemId: item,
      attempt: 2,
      reset: true,
      fromSeq: 0,
      toSeq: 2,
      text: 'xy',
      status: 'completed',
      usage: TEST_USAGE,
      costUsd: 0.5,
    });
  });

  it('reports a reset even when the new attempt’s first records are still held', () => {
    const current = foldRecords(emptyState(), [r0], options()).state;
    const next = attemptRecords(item, 2, ['x', 'y'], { type: 'none' });

    const plan = planItem(item, current, [], [next[1]!], options());

    expect(plan.update).toMatchObject({ attempt: 2, reset: true, fromSeq: 0, toSeq: -1, text: '' });
    expect(plan.holdsToWrite.map((r) => [r.attempt, r.seq])).toEqual([[2, 1]]);
  });

  it('drops leftover held rows that are duplicates without rewriting the head', () => {
    const current = foldRecords(emptyState(), records, options()).state;

    const plan = planItem(item, current, [r3], [], options());

    expect(plan.changed).toBe(false);
    expect(plan.holdsToDelete).toEqual([{ attempt: 1, seq: 3 }]);
  });
});

// ---- properties ----

/** A generation: attempt 1 abandoned after a prefix of its records (non-final error), attempt 2 complete. */
const scenario = fc
  .record({
    first: fc.array(fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }), {
      minLength: 1,
      maxLength: 12,
    }),
    second: fc.array(fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }), {
      minLength: 1,
      maxLength: 20,
    }),
    firstDelivered: fc.nat(),
  })
  .chain(({ first, second, firstDelivered }) => {
    const attempt1 = attemptRecords('p', 1, first, { type: 'error', final: false });
    const attempt2 = attemptRecords('p', 2, second, { type: 'end' });
    // Part of attempt 1 may never arrive: it is superseded anyway.
    const delivered1 = attempt1.slice(0, firstDelivered % (attempt1.length + 1));
    const pool = [...delivered1, ...attempt2];
    return fc
      .record({
        // Every record at least once, some again (duplicates and replays), in any order.
        extra: fc.array(fc.nat({ max: pool.length - 1 }), { maxLength: pool.length * 2 }),
        order: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), {
          minLength: pool.length * 3,
          maxLength: pool.length * 3,
        }),
        cuts: fc.array(fc.nat({ max: pool.length * 3 }), { maxLength: 8 }),
        sealBytes: fc.integer({ min: 1, max: 24 }),
      })
      .map(({ extra, order, cuts, sealBytes }) => {
        const deliveries = [...pool, ...extra.map((i) => pool[i]!)];
        const keyed = deliveries.map((record, i) => ({ record, key: order[i] ?? 0 }));
        keyed.sort((a, b) => a.key - b.key);
        const sequence = keyed.map((k) => k.record);
        const bounds = [...new Set([0, ...cuts.filter((c) => c <= sequence.length), sequence.length])].sort(
          (a, b) => a - b,
        );
        const batches = bounds.slice(1).map((end, i) => sequence.slice(bounds[i], end));
        return { expected: second.join(''), attempts: { 1: first, 2: second }, sequence, batches, sealBytes };
      });
  });

describe('reassembly properties', () => {
  it('any interleaving of duplicated, reordered and replayed records, in any batches, gives exactly the last attempt’s text', () => {
    fc.assert(
      fc.property(scenario, ({ expected, batches, sealBytes }) => {
        const { state, parts } = foldBatches(batches, sealBytes);
        expect(state.status).toBe('completed');
        expect(state.attempt).toBe(2);
        expect(textOf(parts, state)).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });

  it('the stored text is always a prefix of its attempt’s text: never a duplicated or reordered piece', () => {
    fc.assert(
      fc.property(scenario, ({ attempts, batches, sealBytes }) => {
        const { prefixes } = foldBatches(batches, sealBytes);
        for (const { attempt, text } of prefixes) {
          if (attempt === 0) continue;
          const full = (attempts[attempt as 1 | 2] ?? []).join('');
          expect(full.startsWith(text)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('how records are split into batches does not change the result', () => {
    fc.assert(
      fc.property(scenario, ({ sequence, batches, sealBytes }) => {
        const whole = foldRecords(emptyState(), sequence, options(sealBytes)).state;
        const split = foldBatches(batches, sealBytes).state;
        expect({ ...split, held: [...split.held.keys()] }).toEqual({
          ...whole,
          held: [...whole.held.keys()],
        });
      }),
      { numRuns: 300 },
    );
  });

  it('a sealed part has the same content whatever the delivery, so racing writers write identical rows', () => {
    fc.assert(
      fc.property(scenario, ({ attempts, batches, sealBytes }) => {
        const inOrder = foldBatches([attemptRecords('p', 2, attempts[2])], sealBytes).parts;
        const { parts } = foldBatches(batches, sealBytes);
        for (const [key, text] of parts) if (key.startsWith('2:')) expect(text).toBe(inOrder.get(key));
      }),
      { numRuns: 300 },
    );
  });

  it('reassembles a 1 MB output with multi-byte characters, sealed into parts', () => {
    const text = longText(1024 * 1024);
    const records = attemptRecords('big', 1, splitText(text, 400), { type: 'end' });
    const shuffled = [...records].reverse();

    const { state, parts } = foldBatches([shuffled.slice(0, 200), shuffled.slice(200)], 8 * 1024);

    expect(state.status).toBe('completed');
    // At most 8 KB plus one delta per part.
    expect(state.parts).toBeGreaterThan(64);
    expect(Buffer.byteLength(state.tail)).toBeLessThan(8 * 1024);
    expect(textOf(parts, state)).toBe(text);
  });
});
