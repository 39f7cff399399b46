/**
 * The stall rule, pure: an item `queued` or `streaming` whose producer holds no live lease and that
 * has made no progress for longer than the limit will not finish by itself (a skipped batch, a lost
 * record, a producer that died after its lease and left no retry).
 */
import type { ItemHead } from '../../shared/items.js';

/** Why an item counts as stalled, or undefined when it may still finish by itself. */
export function stallReason(head: ItemHead, nowMs: number, limitMs: number): string | undefined {
  if (head.status !== 'queued' && head.status !== 'streaming') return undefined;
  // A producer renewing its lease is alive: generating, or waiting for quota, which never fails an item.
  if (head.leaseUntil !== undefined && head.leaseUntil > nowMs - limitMs) return undefined;
  const times = [head.createdAt, head.firstTokenAt, head.progressAt]
    .filter((t): t is string => t !== null)
    .map((t) => Date.parse(t))
    .filter((t) => Number.isFinite(t));
  if (head.leaseUntil !== undefined) times.push(head.leaseUntil);
  const lastProgress = Math.max(...times);
  if (nowMs - lastProgress <= limitMs) return undefined;
  const idleSeconds = Math.round((nowMs - lastProgress) / 1000);
  const where =
    head.status === 'queued'
      ? 'queued, no generation running'
      : `streaming at attempt ${head.attempt}, next seq ${head.nextSeq}${head.held > 0 ? `, ${head.held} records held behind a gap` : ''}`;
  return `no progress for ${idleSeconds} s (limit ${Math.round(limitMs / 1000)} s): ${where}`;
}
