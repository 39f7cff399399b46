import { describe, expect, it } from 'vitest';
import type { DeltaPut } from '../../../bench/scenario/meter.js';
import { addStages, emptyStages } from '../../../bench/scenario/stages.js';

const put = (attempt: number, seq: number, length: number, emittedAt: number, putAt: number): DeltaPut => ({
  attempt,
  seq,
  length,
  emittedAt,
  putAt,
});

describe('latency stages', () => {
  it('times each token through the first record and the first receipt reaching its end', () => {
    // Three tokens ending at 2, 5 and 9 characters, leaving the model at 100, 110 and 120.
    const stream = { ends: [2, 5, 9], times: [100, 110, 120] };
    // Records arrive out of seq order: seq 0 holds 5 characters, seq 1 the next 4.
    const records = [put(1, 1, 4, 160, 190), put(1, 0, 5, 130, 150)];
    const receipts = [
      { at: 170, length: 5 },
      { at: 260, length: 9 },
    ];
    const stages = emptyStages();
    addStages(stream, records, receipts, 0, 1_000, stages);
    expect(stages).toEqual({
      toRecord: [130 - 100, 130 - 110, 160 - 120],
      toKinesis: [20, 20, 30],
      toViewer: [170 - 150, 170 - 150, 260 - 190],
    });
  });

  it("uses the last attempt's records only and leaves out tokens outside the window or not yet received", () => {
    const stream = { ends: [3, 6], times: [100, 500] };
    const records = [put(1, 0, 6, 110, 120), put(2, 0, 3, 300, 310), put(2, 1, 3, 520, 530)];
    const stages = emptyStages();
    addStages(stream, records, [{ at: 400, length: 3 }], 0, 450, stages);
    expect(stages).toEqual({ toRecord: [200], toKinesis: [10], toViewer: [90] });
    const late = emptyStages();
    addStages(stream, records, [{ at: 400, length: 3 }], 450, 1_000, late);
    expect(late).toEqual(emptyStages());
  });
});
