import type { DeliveryBench, SlowViewersRun } from './run-delivery.js';

const ms = (value: number) =>
  Number.isFinite(value) ? `${Math.round(value).toLocaleString('en-US')} ms` : '–';

/** The delivery bench as Markdown: both tables, with the ratios the figures are read by. */
export function renderDeliveryReport(bench: DeliveryBench): string {
  const d = bench.dashboards;
  const ratio = d.batch.messages > 0 ? d.plain.messages / d.batch.messages : Number.NaN;
  const [budget, unbounded] = [
    bench.slowViewers.find((r) => r.mode === 'budget'),
    bench.slowViewers.find((r) => r.mode === 'unbounded'),
  ];
  const row = (r: SlowViewersRun | undefined, label: string) =>
    r
      ? `| ${label} | ${r.fanoutBudgetMs.toLocaleString('en-US')} ms | ${r.packedFrames ? 'yes' : 'no'} | ${r.batchMs.count} | ${ms(r.batchMs.p50)} | ${ms(r.batchMs.p99)} | ${ms(r.batchMs.max)} | ${r.inFlight.count} (${ms(r.inFlight.longestMs)}) | ${r.completed}/${r.generations} in ${(r.elapsedMs / 1000).toFixed(0)} s | ${r.droppedConnections} |`
      : `| ${label} | not run |||||||||`;
  const p99Ratio = budget && unbounded ? unbounded.batchMs.p99 / budget.batchMs.p99 : Number.NaN;
  return [
    `# Delivery to viewers (${bench.quick ? 'quick' : 'full'} run, ${bench.startedAt})`,
    '',
    `## WebSocket messages per dashboard, ${d.generations} concurrent generations`,
    '',
    `${d.tokens.toLocaleString('en-US')} output tokens; two dashboards subscribed to every item in the same run.`,
    '',
    '| dashboard | messages | per 1,000 tokens | items seen done |',
    '|---|---|---|---|',
    `| \`all\` + \`batch\` | ${d.batch.messages} | ${d.batch.perThousandTokens} | ${d.batch.itemsDone}/${d.generations} |`,
    `| \`all\` only | ${d.plain.messages} | ${d.plain.perThousandTokens} | ${d.plain.itemsDone}/${d.generations} |`,
    '',
    `Without \`batch\` a dashboard receives ${ratio.toFixed(1)}× the messages.`,
    '',
    `## Consumer batch duration with ${budget?.slowViewers ?? unbounded?.slowViewers ?? 0} slow viewers`,
    '',
    'Each slow viewer subscribes to every item and reads nothing: every post to it hangs until',
    "the post deadline (3 s); when the fan-out closes it, it reconnects and is slow again. A batch's",
    'duration is the consumer invocation: storage, then fan-out.',
    '',
    '| fan-out | `FANOUT_BUDGET_MS` | `batch` frames | batches | p50 | p99 | max | in flight at the end (longest) | items completed | connections dropped |',
    '|---|---|---|---|---|---|---|---|---|---|',
    row(budget, 'budget per batch (now)'),
    row(unbounded, 'waits for every viewer (before)'),
    '',
    Number.isFinite(p99Ratio) ? `p99 without the budget: ${p99Ratio.toFixed(1)}× the p99 with it.` : '',
    '',
  ].join('\n');
}
