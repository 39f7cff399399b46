/**
 * `npm run bench:delivery`: what viewers cost the consumer, on the local stack.
 *
 *   npm run bench:delivery              full run (about 6 minutes)
 *   npm run bench:delivery -- --quick   shorter windows (about 4 minutes)
 *   npm run bench:delivery -- --publish also write docs/bench/delivery.md
 *
 * 1. WebSocket messages per dashboard per 1,000 tokens at 100 concurrent generations, for a
 *    dashboard subscribed with `batch` and one without, side by side in the same run.
 * 2. The consumer's batch duration with 200 slow viewers connected (they never read; every post
 *    to them hangs until the post deadline): fan-out with its time budget and `batch` frames,
 *    against fan-out waiting for every viewer with one message per item.
 *
 * Writes bench/results/delivery-<time>.{json,md}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { orExitWithUsage, parseCommandLine } from '../cli/args.js';

const USAGE = 'usage: npm run bench:delivery -- [--quick] [--publish]\n';
const { values } = orExitWithUsage(USAGE, () =>
  parseCommandLine(process.argv.slice(2), {
    quick: { type: 'boolean', default: false },
    publish: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  }),
);
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const { useLocalProcessEnvironment } = await import('../local/process-env.js');
// Slow viewers make the fan-out log every dropped connection; the report says what happened.
useLocalProcessEnvironment('CRITICAL');
const { runDeliveryBench } = await import('./delivery/run-delivery.js');
const { renderDeliveryReport } = await import('./delivery/report.js');

const started = Date.now();
const bench = await runDeliveryBench(values.quick, (line) =>
  process.stdout.write(`${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s  ${line}\n`),
);
const report = renderDeliveryReport(bench);
const dir = join('bench', 'results');
mkdirSync(dir, { recursive: true });
const stamp = bench.startedAt.replace(/[:.]/g, '-');
writeFileSync(join(dir, `delivery-${stamp}.json`), `${JSON.stringify(bench, null, 2)}\n`);
writeFileSync(join(dir, `delivery-${stamp}.md`), report);
if (values.publish) {
  mkdirSync(join('docs', 'bench'), { recursive: true });
  writeFileSync(join('docs', 'bench', 'delivery.md'), report);
}
process.stdout.write(`\n${report}\nreport: ${join(dir, `delivery-${stamp}.md`)}\n`);
