import { describe, expect, it } from 'vitest';
import { overloadFigures, overloadLine } from '../../../bench/report/overload.js';
import type { BenchResult, ScenarioGroup } from '../../../bench/run-bench.js';
import type { Flow, ScenarioResult } from '../../../bench/scenario/run-scenario.js';

/** Only the fields the overload figures read. */
function result(
  flow: Flow,
  concurrency: number,
  delivered: number,
  p99: number,
  censored = 0,
): ScenarioResult {
  return {
    spec: { flow, name: `load-${concurrency}`, concurrency },
    throughput: { deliveredPerSecond: delivered, offeredPerSecond: delivered, modelStreams: concurrency },
    latencyMs: { count: 100, p50: p99 / 2, p95: p99 * 0.9, p99, max: p99 },
    latencyCensored: censored,
  } as unknown as ScenarioResult;
}

function bench(...scenarios: Array<[ScenarioGroup, ScenarioResult]>): BenchResult {
  return { scenarios: scenarios.map(([group, result]) => ({ group, result })) } as unknown as BenchResult;
}

describe('overload figures', () => {
  it('compares the heaviest pipeline load with the one nearest a tenth of it, never the baseline', () => {
    const figures = overloadFigures(
      bench(
        ['load', result('pipeline', 10, 650, 240)],
        ['load', result('pipeline', 100, 4_000, 1_500)],
        ['load', result('pipeline', 1_000, 3_800, 1_900)],
        ['load', result('naive', 1_000, 10, 35_000)],
        ['length', result('pipeline', 100, 9_000, 100)],
      ),
    );
    expect(figures?.light.spec.concurrency).toBe(100);
    expect(figures?.heavy.spec.concurrency).toBe(1_000);
    expect(figures?.throughputRatio).toBeCloseTo(0.95);
    expect(figures).toMatchObject({ p99Ms: 1_900, meetsThroughput: true, meetsLatency: true });
    expect(overloadLine(figures as NonNullable<typeof figures>)).toContain('95 % of 4000 at 100');
  });

  it('misses the targets on collapse, and never counts a censored latency as met', () => {
    const collapsed = overloadFigures(
      bench(
        ['load', result('pipeline', 100, 4_876, 2_528)],
        ['load', result('pipeline', 1_000, 1_678, 35_426)],
      ),
    );
    expect(collapsed).toMatchObject({ meetsThroughput: false, meetsLatency: false });
    const censored = overloadFigures(
      bench(['load', result('pipeline', 100, 100, 10)], ['load', result('pipeline', 1_000, 100, 10, 3)]),
    );
    expect(censored).toMatchObject({ meetsThroughput: true, meetsLatency: false, censored: true });
  });

  it('has nothing to say without two pipeline load runs', () => {
    expect(overloadFigures(bench(['load', result('pipeline', 100, 1, 1)]))).toBeUndefined();
  });
});
