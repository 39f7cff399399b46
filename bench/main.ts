/**
 * `npm run bench`: the pipeline against the naive baseline on the local stack.
 *
 *   npm run bench                     full run (about 15 minutes)
 *   npm run bench -- --quick          short run (about 2 minutes)
 *   npm run bench -- --only load-100  only the named scenarios (comma-separated), both flows
 *   npm run bench -- --publish        also copy the report and chart to docs/bench/
 *   npm run bench -- --skip-quota     leave out the quota scenario (`npm run bench:quota`), which
 *                                     otherwise runs last (a whole run only, not with --only)
 *
 * Writes bench/results/<timestamp>.{md,svg,json} and bench/results/latest.{md,svg}.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { orExitWithUsage, parseCommandLine, UsageError } from '../cli/args.js';

const USAGE =
  'usage: npm run bench -- [--quick] [--only name,name] [--skip-capacity] [--skip-quota] [--publish]\n';
const { values } = orExitWithUsage(USAGE, () =>
  parseCommandLine(process.argv.slice(2), {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    publish: { type: 'boolean', default: false },
    'skip-capacity': { type: 'boolean', default: false },
    'skip-quota': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  }),
);
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
// Loaded once the flags are known good, so help and usage errors answer at once.
const { num, renderReport } = await import('./report/markdown.js');
const { renderChart } = await import('./report/chart.js');
const { plan, runBench } = await import('./run-bench.js');
const { runningChildren } = await import('./scenario/in-child.js');
const only = orExitWithUsage(USAGE, () => {
  const only = values.only?.split(',').map((name) => name.trim());
  const known = new Set(plan(values.quick).scenarios.map(({ spec }) => spec.name));
  const unknown = only?.filter((name) => !known.has(name)) ?? [];
  if (unknown.length > 0) {
    throw new UsageError(
      `--only: no scenario ${unknown.join(', ')}; the scenarios are ${[...known].join(', ')}`,
    );
  }
  return only;
});

process.on('SIGINT', () => {
  for (const child of runningChildren) child.kill('SIGKILL');
  process.exit(130);
});

const started = Date.now();
const bench = await runBench(
  {
    quick: values.quick,
    ...(only ? { only: ({ spec }) => only.includes(spec.name) } : {}),
    skipCapacity: values['skip-capacity'],
  },
  (line) => process.stdout.write(`${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s  ${line}\n`),
);

const dir = join('bench', 'results');
mkdirSync(dir, { recursive: true });
const stamp = bench.startedAt.replace(/[:.]/g, '-');
const chartName = `${stamp}.svg`;
writeFileSync(join(dir, `${stamp}.json`), `${JSON.stringify(bench, null, 2)}\n`);
writeFileSync(join(dir, chartName), renderChart(bench));
writeFileSync(join(dir, `${stamp}.md`), renderReport(bench, chartName));
writeFileSync(join(dir, 'latest.svg'), renderChart(bench));
writeFileSync(join(dir, 'latest.md'), renderReport(bench, 'latest.svg'));
if (values.publish) {
  mkdirSync(join('docs', 'bench'), { recursive: true });
  writeFileSync(join('docs', 'bench', 'report.md'), renderReport(bench, 'chart.svg'));
  copyFileSync(join(dir, 'latest.svg'), join('docs', 'bench', 'chart.svg'));
}

process.stdout.write(`\nSummary (${bench.mode} run, ${bench.machine.cores} × ${bench.machine.cpu}):\n`);
for (const { group, result: r } of bench.scenarios) {
  process.stdout.write(
    `  ${`${r.spec.flow} ${r.spec.name}`.padEnd(30)} ` +
      (group === 'cost'
        ? `per 1k tokens: ${num(r.per1kTokens.kinesisRecords)} records, ${num(r.per1kTokens.dynamoWriteUnits)} write units, ` +
          `${num(r.per1kTokens.wsMessagesPerViewer)} messages/viewer; `
        : `${num(r.throughput.deliveredPerSecond)} of ${num(r.throughput.offeredPerSecond)} tokens/s delivered; `) +
      `latency p50 ${num(r.latencyMs.p50, 0)} p95 ${num(r.latencyMs.p95, 0)} p99 ${num(r.latencyMs.p99, 0)} ms; ` +
      `RSS ${num(r.memory.rssPeakMb, 0)} MB\n`,
  );
}
const { overloadFigures, overloadLine } = await import('./report/overload.js');
const overload = overloadFigures(bench);
if (overload) process.stdout.write(`  ${overloadLine(overload)}\n`);
for (const failure of bench.failures)
  process.stdout.write(`  FAILED ${failure.flow} ${failure.name}: ${failure.error}\n`);
process.stdout.write(`\nReport: ${join(dir, `${stamp}.md`)}\nChart:  ${join(dir, chartName)}\n`);
const quota = only || values['skip-quota'] ? 0 : await runQuotaScenario(values.quick);
process.exit(bench.failures.length > 0 || quota !== 0 ? 1 : 0);

/** The quota scenario (`bench/quota.ts`) in its own process, as `npm run bench:quota` runs it. */
async function runQuotaScenario(quick: boolean): Promise<number> {
  const { spawn } = await import('node:child_process');
  process.stdout.write(`\nQuota scenario (npm run bench:quota${quick ? ' -- --quick' : ''}):\n`);
  const child = spawn(
    process.execPath,
    [...process.execArgv, 'bench/quota.ts', ...(quick ? ['--quick'] : [])],
    {
      stdio: 'inherit',
    },
  );
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}
