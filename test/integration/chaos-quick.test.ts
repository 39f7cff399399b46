import { describe, expect, it } from 'vitest';
import { chaosDefaults, runChaos } from '../../bench/chaos/run-chaos.js';

describe('npm run chaos -- --quick', () => {
  it('loses, duplicates and corrupts nothing with a fault at every layer, a DynamoDB brownout, crashes while ending and a restart half-way', async () => {
    // Act (the run's progress lines, timed, explain a failure)
    const log: string[] = [];
    const started = Date.now();
    const report = await runChaos({ ...chaosDefaults(40), deadlineMs: 120_000 }, (line) => {
      log.push(`${((Date.now() - started) / 1000).toFixed(1)} s ${line}`);
    });

    // Assess: every item ended, well
    expect(report.problems, log.join('\n')).toEqual([]);
    expect({ lost: report.lost, duplicated: report.duplicated, corrupted: report.corrupted }).toEqual({
      lost: 0,
      duplicated: 0,
      corrupted: 0,
    });
    expect(report.completed + report.failed).toBe(report.submitted);
    // A throttling storm and a run of 503s delay items; none fails for them. (A quick run may end
    // before the 503s begin: that they fire is shown by `npm run chaos` and the producer spec.)
    expect(report.failedByOutage).toBe(0);
    expect(report.submitted).toBe(40);
    // Every viewer ends with exactly the stored text.
    expect(report.viewers.examples).toEqual([]);
    expect(report.viewers.mismatched).toBe(0);
    expect(report.viewers.pairs).toBeGreaterThanOrEqual(report.submitted);
    // And the faults did fire, at every layer.
    expect(report.faults).toMatchObject({ restarts: 1 });
    for (const fault of [
      'modelThrottles',
      'midStreamFailures',
      'truncatedStreams',
      'putRecordFailures',
      'consumerCrashes',
      'duplicateSubmissions',
      'viewerDisconnects',
      'viewerReconnects',
    ] as const)
      expect(report.faults[fault], fault).toBeGreaterThan(0);
    // The DynamoDB brownout failed the handlers' calls, and both crashes while ending fired; the
    // crashed items completed with the attempt that was ending (else a `duplicated` problem above).
    expect(report.brownout?.failedCalls, log.join('\n')).toBeGreaterThan(0);
    expect(report.endingCrashes).toMatchObject({
      byPoint: { 'ending-recorded': 1, 'end-put': 1 },
      unfired: 0,
    });
    // The dashboards, checked exact above like every viewer, received packed `batch` frames.
    expect(report.dashboardFrames.batchFrames).toBeGreaterThan(0);
  }, 240_000);
});
