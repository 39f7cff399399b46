import type { DeltaPut } from './meter.js';
import type { TappedStream } from './tap.js';
import type { Receipt } from './viewers.js';

/** Added latency of the timed tokens, split where the chunk stream sees them (ms per token). */
export interface StageSamples {
  /** Token left the model → the producer built the delta record holding it. */
  readonly toRecord: number[];
  /** Record built (`emittedAt`) → Kinesis accepted it. */
  readonly toKinesis: number[];
  /** Kinesis accepted it → the viewer held text reaching the token. */
  readonly toViewer: number[];
}

export const emptyStages = (): StageSamples => ({ toRecord: [], toKinesis: [], toViewer: [] });

/**
 * Adds one timed stream's tokens that left the model in [from, to] to `into`. A token's record is
 * the first of the last attempt's delta records (in seq order) whose text reaches the token's end;
 * its receipt the first whose text does. Tokens without either (not yet put or received) are left
 * out. Record ends, receipts and token ends only grow, so one pass pairs them.
 */
export function addStages(
  stream: Pick<TappedStream, 'ends' | 'times'>,
  records: readonly DeltaPut[],
  receipts: readonly Receipt[],
  from: number,
  to: number,
  into: StageSamples,
): void {
  const last = Math.max(0, ...records.map((r) => r.attempt));
  const ordered = records.filter((r) => r.attempt === last).sort((a, b) => a.seq - b.seq);
  let reached = 0;
  const reach = ordered.map((r) => {
    reached += r.length;
    return { ...r, reached };
  });
  let p = 0;
  let v = 0;
  stream.ends.forEach((end, i) => {
    const left = stream.times[i] as number;
    while (p < reach.length && (reach[p]?.reached ?? 0) < end) p++;
    while (v < receipts.length && (receipts[v]?.length ?? 0) < end) v++;
    const record = reach[p];
    const receipt = receipts[v];
    if (left < from || left > to || !record || !receipt) return;
    into.toRecord.push(record.emittedAt - left);
    into.toKinesis.push(record.putAt - record.emittedAt);
    into.toViewer.push(receipt.at - record.putAt);
  });
}
