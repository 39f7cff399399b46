/** Percentiles of a sample, nearest-rank; NaN for an empty sample. */
export interface Percentiles {
  readonly count: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly max: number;
}

/** p50, p95, p99 and max of `values` (nearest rank on a sorted copy). */
export function percentiles(values: readonly number[]): Percentiles {
  if (values.length === 0)
    return { count: 0, p50: Number.NaN, p95: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number;
  return {
    count: sorted.length,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    max: sorted[sorted.length - 1] as number,
  };
}

/** Per 1,000 of `per`; NaN when `per` is 0. */
export function per1k(count: number, per: number): number {
  return per > 0 ? (count * 1000) / per : Number.NaN;
}
