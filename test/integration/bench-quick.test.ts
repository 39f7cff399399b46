import { describe, expect, it } from 'vitest';
import { renderChart } from '../../bench/report/chart.js';
import { renderReport } from '../../bench/report/markdown.js';
import { runBench } from '../../bench/run-bench.js';
import type { Flow, ScenarioResult } from '../../bench/scenario/run-scenario.js';

describe('npm run bench -- --quick (its shortest scenario, correctness only)', () => {
  it('runs the pipeline and the naive baseline side by side on the local stack and reports both', async () => {
    // Act: the capacity probes and the short-output cost scenario of both flows, each in its own process
    const bench = await runBench({ quick: true, only: ({ spec }) => spec.name === 'cost-64' }, () => {});

    // Assess: both flows ran to the end, and every viewer holds exactly the model's text
    expect(bench.failures).toEqual([]);
    const of = (flow: Flow): ScenarioResult => {
      const found = bench.scenarios.find(({ result }) => result.spec.flow === flow)?.result;
      if (!found) throw new Error(`no ${flow} result`);
      return found;
    };
    const pipeline = of('pipeline');
    const naive = of('naive');
    for (const result of [pipeline, naive]) {
      expect(result.drained, result.spec.flow).toBe(true);
      expect(result.items, result.spec.flow).toMatchObject({
        completed: result.items.submitted,
        failed: 0,
        unfinished: 0,
        textMismatches: 0,
        viewerDuplicates: 0,
        viewerGaps: 0,
      });
      expect(result.items.submitted).toBeGreaterThan(0);
      expect(result.tokens.model).toBeGreaterThan(0);
      expect(result.latencyMs.count).toBeGreaterThan(0);
      expect(result.latencyCensored).toBe(0);
    }
    // The baseline's shape: one record, one write and one message per viewer per token, plus each end;
    // its writes per item besides: the registration the shared WebSocket routes need, the start, the end.
    expect(naive.kinesis.records).toBe(naive.tokens.model + naive.items.submitted);
    expect(naive.dynamo.items.writes).toBe(naive.tokens.model + 3 * naive.items.submitted);
    expect(naive.per1kTokens.wsMessagesPerViewer).toBeGreaterThan(1000);
    // The pipeline's records carry `emittedAt`, so its latency splits into stages that each took time.
    for (const stage of Object.values(pipeline.latencyStagesMs)) {
      expect(stage.count).toBeGreaterThan(0);
      expect(stage.p50).toBeGreaterThanOrEqual(0);
    }
    // The pipeline coalesces: fewer records, writes and messages for the same tokens.
    expect(pipeline.per1kTokens.kinesisRecords).toBeLessThan(naive.per1kTokens.kinesisRecords);
    expect(pipeline.per1kTokens.dynamoWrites).toBeLessThan(naive.per1kTokens.dynamoWrites);
    expect(pipeline.per1kTokens.wsMessagesPerViewer).toBeLessThan(naive.per1kTokens.wsMessagesPerViewer);
    expect(bench.capacity?.putRecords.perSecond).toBeGreaterThan(0);
    expect(bench.capacity?.putRecord.perSecond).toBeGreaterThan(0);
    expect(bench.capacity?.updateItem.perSecond).toBeGreaterThan(0);

    // The report and the chart render from the figures.
    const report = renderReport(bench, 'chart.svg');
    expect(report).toContain('## Summary');
    expect(report).toContain('## Emulator capacity');
    expect(renderChart(bench)).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/);
  }, 150_000);
});
