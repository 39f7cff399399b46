/**
 * `npm run chaos`: N work items through the local stack with a fault at every layer at once.
 *
 *   npm run chaos                     1,000 items
 *   npm run chaos -- --quick          60 items
 *   npm run chaos -- --items 300 --seed 3
 *
 * Exits 1 when any item is lost, duplicated or corrupted, a viewer ends with other text than the
 * stored item, the DynamoDB brownout failed no handler call, or a scheduled producer crash never
 * fired.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { orExitWithUsage, parseCommandLine, wholeNumber } from '../cli/args.js';

const USAGE = `usage: npm run chaos -- [--quick] [--items N] [--seed S]

  --quick      60 items instead of 1,000
  --items N    how many work items (a whole number >= 1)
  --seed S     what is submitted and which faults hit (a whole number >= 0); replays a run
`;
const { values, items, seed } = orExitWithUsage(USAGE, () => {
  const { values } = parseCommandLine(process.argv.slice(2), {
    quick: { type: 'boolean', default: false },
    items: { type: 'string' },
    seed: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  });
  return {
    values,
    items:
      values.items === undefined
        ? values.quick
          ? 60
          : 1_000
        : wholeNumber('--items', values.items, { min: 1 }),
    seed: values.seed === undefined ? undefined : wholeNumber('--seed', values.seed, { max: 2 ** 32 - 1 }),
  };
});
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
// Loaded once the command line is known good, so help and usage errors answer at once.
const { useLocalProcessEnvironment } = await import('../local/process-env.js');
// Injected faults make the handlers log every retry; the report says what happened.
useLocalProcessEnvironment('CRITICAL');
const { chaosDefaults, runChaos } = await import('./chaos/run-chaos.js');
const options = { ...chaosDefaults(items), ...(seed !== undefined ? { seed } : {}) };

const started = Date.now();
const report = await runChaos(options, (line) =>
  process.stdout.write(`${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s  ${line}\n`),
);

const f = report.faults;
const lines = [
  '',
  `chaos run: ${report.submitted} items, seed ${options.seed}, ${(report.elapsedMs / 1000).toFixed(0)} s`,
  `  submitted                       ${report.submitted} (+${report.resent} resent)`,
  `  completed with the exact text   ${report.completed}`,
  `  failed with a recorded reason   ${report.failed} ${JSON.stringify(report.failedByCode)}`,
  `  failed by a model outage        ${report.failedByOutage} (must be 0: items wait out throttling and unavailability)`,
  `  viewers matching stored text    ${report.viewers.matched} of ${report.viewers.pairs} (viewer, item) pairs`,
  `  lost                            ${report.lost}`,
  `  duplicated                      ${report.duplicated}`,
  `  corrupted                       ${report.corrupted}`,
  `  model outages: ${options.modelOutages.map((o) => `${o.durationMs / 1000} s ${o.kind === 'throttle' ? 'throttling storm' : 'of ServiceUnavailableException'}`).join(', ')}; ${f.modelUnavailable} requests answered 503`,
  `  faults fired: ${f.modelThrottles} model throttles, ${f.midStreamFailures} mid-stream failures, ${f.truncatedStreams} truncated streams,`,
  `    ${f.putRecordFailures} PutRecords record failures, ${f.putThrottles} put throttles, ${f.consumerCrashes} consumer crashes,`,
  `    ${f.producerCrashes} producer crashes, ${f.duplicateSubmissions} duplicate submissions, ${f.viewerDisconnects} viewer disconnects`,
  `    (${f.viewerReconnects} reconnects), ${f.restarts} stack restart`,
  `  dashboards (all + batch)        ${report.dashboardFrames.batchFrames} batch frames holding ${report.dashboardFrames.messagesInBatches} messages, ` +
    `${report.dashboardFrames.otherFrames} other frames`,
  `  fan-out                         ${report.fanout.deliveries} deliveries, ${report.fanout.failedDeliveries} given up, ` +
    `${report.fanout.droppedConnections} connections closed after missing frames, ${report.fanout.goneConnections} gone`,
  ...brownoutLines(report.brownout, options.dynamoBrownout?.outlast),
  `  producer crashes while ending   ${Object.entries(report.endingCrashes.byPoint)
    .map(([point, n]) => `${point} ${n}`)
    .join(', ')} (${report.endingCrashes.unfired} scheduled never fired)`,
  ...report.problems.map((p) => `  ${p.kind.toUpperCase()} ${p.itemId}: ${p.detail}`),
  ...report.viewers.examples.map((e) => `  VIEWER MISMATCH ${e}`),
  '',
];
process.stdout.write(lines.join('\n'));
const dir = join('bench', 'results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `chaos-${new Date(started).toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`report: ${file}\n`);
const bad =
  report.lost +
  report.duplicated +
  report.corrupted +
  report.viewers.mismatched +
  report.failedByOutage +
  report.endingCrashes.unfired +
  (options.dynamoBrownout && !(report.brownout && report.brownout.failedCalls > 0) ? 1 : 0);
process.exit(bad > 0 ? 1 : 0);

/** What the brownout did, against the retry counts it had to outlast. */
function brownoutLines(
  brownout: (typeof report)['brownout'],
  outlast: { readonly input: number; readonly chunks: number } | undefined,
): string[] {
  if (!brownout || !outlast) return [];
  if (brownout.startedAtMs === undefined)
    return ['  DynamoDB brownout              NEVER BEGAN (the run ended first)'];
  const { failedInvocations: failed, longestRetryRun: run } = brownout;
  return [
    `  DynamoDB brownout               ${(brownout.durationMs / 1000).toFixed(1)} s from ${(brownout.startedAtMs / 1000).toFixed(0)} s: ` +
      `${brownout.failedCalls} handler calls failed; ${failed.input} input and ${failed.chunks} chunk invocations failed`,
    `    most retries of one batch in it: input ${run.input} (old budget ${outlast.input}), chunks ${run.chunks} ` +
      `(old budget ${outlast.chunks}): ${brownout.outlasted ? 'the old budget would have skipped batches' : 'NOT outlasted'}`,
  ];
}
