import type { BenchResult } from '../run-bench.js';
import type { ScenarioResult } from '../scenario/run-scenario.js';

/** Delivered tokens/s at the heaviest load must stay at least this share of the figure at a tenth of it. */
export const OVERLOAD_THROUGHPUT_TARGET = 0.9;
/** And admitted generations' p99 added latency at the heaviest load at most this. */
export const OVERLOAD_P99_TARGET_MS = 2_000;

/** How the pipeline holds up when offered far more generations than it can carry. */
export interface OverloadFigures {
  readonly light: ScenarioResult;
  readonly heavy: ScenarioResult;
  /** Delivered tokens/s at the heavy load ÷ at the light one. */
  readonly throughputRatio: number;
  /** p99 added latency at the heavy load, ms (a lower bound when some tokens never arrived). */
  readonly p99Ms: number;
  readonly censored: boolean;
  readonly meetsThroughput: boolean;
  readonly meetsLatency: boolean;
}

/**
 * The pipeline's overload figures: its heaviest load run against the load run nearest a tenth of
 * it (1,000 against 100 generations in a full run); undefined without two pipeline load runs.
 */
export function overloadFigures(bench: BenchResult): OverloadFigures | undefined {
  const loads = bench.scenarios
    .filter(({ group, result }) => group === 'load' && result.spec.flow === 'pipeline')
    .map(({ result }) => result)
    .sort((a, b) => a.spec.concurrency - b.spec.concurrency);
  const heavy = loads.at(-1);
  if (!heavy || loads.length < 2) return undefined;
  const tenth = heavy.spec.concurrency / 10;
  const light = loads
    .slice(0, -1)
    .reduce((best, r) =>
      Math.abs(r.spec.concurrency - tenth) < Math.abs(best.spec.concurrency - tenth) ? r : best,
    );
  const throughputRatio = heavy.throughput.deliveredPerSecond / light.throughput.deliveredPerSecond;
  const p99Ms = heavy.latencyMs.p99;
  return {
    light,
    heavy,
    throughputRatio,
    p99Ms,
    censored: heavy.latencyCensored > 0,
    meetsThroughput: throughputRatio >= OVERLOAD_THROUGHPUT_TARGET,
    meetsLatency: heavy.latencyCensored === 0 && p99Ms <= OVERLOAD_P99_TARGET_MS,
  };
}

/** One line for the console summary. */
export function overloadLine(o: OverloadFigures): string {
  const pct = (x: number) => `${Math.round(x * 100)} %`;
  return (
    `overload: ${Math.round(o.heavy.throughput.deliveredPerSecond)} tokens/s delivered at ${o.heavy.spec.concurrency} offered ` +
    `generations = ${pct(o.throughputRatio)} of ${Math.round(o.light.throughput.deliveredPerSecond)} at ${o.light.spec.concurrency} ` +
    `(target ≥ ${pct(OVERLOAD_THROUGHPUT_TARGET)}: ${o.meetsThroughput ? 'met' : 'MISSED'}); p99 added latency ` +
    `${o.censored ? '≥ ' : ''}${Math.round(o.p99Ms)} ms (target ≤ ${OVERLOAD_P99_TARGET_MS} ms: ${o.meetsLatency ? 'met' : 'MISSED'})`
  );
}
