import type { BenchResult, ScenarioGroup } from '../run-bench.js';
import type { Flow, ScenarioResult } from '../scenario/run-scenario.js';
import type { Percentiles } from '../support/stats.js';
import { OVERLOAD_P99_TARGET_MS, OVERLOAD_THROUGHPUT_TARGET, overloadFigures } from './overload.js';

type Row = ReadonlyArray<string>;

/** A number for a table: thousands separated, one decimal under 100, `–` when unknown. */
export function num(value: number | undefined, digits = 1): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  return value.toFixed(digits);
}

function table(header: Row, rows: Row[]): string {
  const line = (cells: Row) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** `a ÷ b`, as "12.3×". */
function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !(b > 0) || !Number.isFinite(a)) return '–';
  return `${num(a / b)}×`;
}

/** Where the added latency went, stage by stage, as p50 / p99. */
export function stages(result: ScenarioResult): string {
  const { toRecord, toKinesis, toViewer } = result.latencyStagesMs;
  const pair = (p: Percentiles) => `${num(p.p50, 0)} / ${num(p.p99, 0)}`;
  return (
    `Added latency by stage, p50 / p99 ms: model → delta record ${pair(toRecord)}, ` +
    `record → Kinesis ${pair(toKinesis)}, Kinesis → viewer ${pair(toViewer)}.`
  );
}

/** Latency percentiles as "p50 / p95 / p99 ms", marked ≥ when some tokens never arrived. */
export function latency(result: ScenarioResult): string {
  const { p50, p95, p99 } = result.latencyMs;
  const bound = result.latencyCensored > 0 ? '≥ ' : '';
  return `${bound}${num(p50, 0)} / ${num(p95, 0)} / ${num(p99, 0)}`;
}

/** The scenarios of one group, paired by name: pipeline and naive side by side. */
export function pairs(
  bench: BenchResult,
  group: ScenarioGroup,
): Array<{ name: string; pipeline?: ScenarioResult; naive?: ScenarioResult }> {
  const byName = new Map<string, { name: string; pipeline?: ScenarioResult; naive?: ScenarioResult }>();
  for (const { group: g, result } of bench.scenarios) {
    if (g !== group) continue;
    const entry = byName.get(result.spec.name) ?? { name: result.spec.name };
    entry[result.spec.flow as Flow] = result;
    byName.set(result.spec.name, entry);
  }
  return [...byName.values()];
}

/** The cost scenario the headline figures come from: the middle output length. */
function headlineCost(bench: BenchResult) {
  const costs = pairs(bench, 'cost');
  return costs[Math.floor((costs.length - 1) / 2)];
}

/** The report of a bench run, in Markdown. `chartFile` is linked when given. */
export function renderReport(bench: BenchResult, chartFile?: string): string {
  const { machine } = bench;
  const out: string[] = [];
  const date = bench.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  out.push(`# Benchmark: the pipeline against the naive baseline (${bench.mode} run)`);
  out.push('');
  out.push(
    `${date} · ${machine.cores} × ${machine.cpu}, ${num(machine.memoryGb)} GB · ${machine.os} · Node ${machine.node} · ` +
      `load average ${num(machine.loadAverage.start, 2)} at the start, ${num(machine.loadAverage.end, 2)} at the end · ` +
      `${num(bench.elapsedMs / 60_000)} min`,
  );
  out.push('');
  out.push(
    'Each scenario ran in a fresh process with a fresh local stack (kinesalite, dynalite, the real handlers behind ' +
      'local event source mappings, the WebSocket gateway), the emulators and the model stand-in each on a thread of their own, the model at 80 tokens/s ' +
      '(300 ms to the first token). The naive baseline (`bench/naive/`) runs on the same emulators, model, gateway, ' +
      'subscriptions and mapping settings. See `bench/README.md` for what each figure means.',
  );
  if (chartFile) out.push('', `![pipeline against naive baseline](${chartFile})`);

  const head = headlineCost(bench);
  const loads = pairs(bench, 'load');
  if (head?.pipeline && head.naive) {
    const p = head.pipeline;
    const n = head.naive;
    out.push('', '## Summary', '');
    const rows: Row[] = [
      [
        `Kinesis records per 1,000 output tokens (${head.name})`,
        num(p.per1kTokens.kinesisRecords),
        num(n.per1kTokens.kinesisRecords),
        ratio(n.per1kTokens.kinesisRecords, p.per1kTokens.kinesisRecords),
      ],
      [
        `DynamoDB write units per 1,000 output tokens (${head.name})`,
        num(p.per1kTokens.dynamoWriteUnits),
        num(n.per1kTokens.dynamoWriteUnits),
        ratio(n.per1kTokens.dynamoWriteUnits, p.per1kTokens.dynamoWriteUnits),
      ],
      [
        `WebSocket messages per viewer per 1,000 tokens (${head.name})`,
        num(p.per1kTokens.wsMessagesPerViewer),
        num(n.per1kTokens.wsMessagesPerViewer),
        ratio(n.per1kTokens.wsMessagesPerViewer, p.per1kTokens.wsMessagesPerViewer),
      ],
      [
        `Added latency p50 / p95 / p99, ms (${head.name})`,
        latency(p),
        latency(n),
        ratio(n.latencyMs.p50, p.latencyMs.p50),
      ],
    ];
    for (const load of loads) {
      if (!load.pipeline || !load.naive) continue;
      rows.push([
        `Delivered tokens/s at ${load.pipeline.spec.concurrency} concurrent generations`,
        num(load.pipeline.throughput.deliveredPerSecond),
        num(load.naive.throughput.deliveredPerSecond),
        ratio(load.pipeline.throughput.deliveredPerSecond, load.naive.throughput.deliveredPerSecond),
      ]);
      rows.push([
        `Added latency p50 / p95 / p99 at ${load.pipeline.spec.concurrency} concurrent generations, ms`,
        latency(load.pipeline),
        latency(load.naive),
        ratio(load.naive.latencyMs.p50, load.pipeline.latencyMs.p50),
      ]);
      rows.push([
        `Peak RSS at ${load.pipeline.spec.concurrency} concurrent generations, MB`,
        num(load.pipeline.memory.rssPeakMb, 0),
        num(load.naive.memory.rssPeakMb, 0),
        ratio(load.naive.memory.rssPeakMb, load.pipeline.memory.rssPeakMb),
      ]);
    }
    out.push(
      'The last column is how many times better the pipeline does: naive ÷ pipeline for costs, latency and ' +
        'memory, pipeline ÷ naive for throughput. Latencies marked ≥ are lower bounds (some timed tokens never ' +
        'reached a viewer before the run ended).',
      '',
    );
    out.push(table(['figure', 'pipeline', 'naive', 'pipeline better by'], rows));
  }

  out.push(...overloadSection(bench));

  out.push('', '## Cost per 1,000 output tokens, by output length', '');
  out.push(
    `Fixed item counts at ${pairs(bench, 'cost')[0]?.pipeline?.spec.concurrency ?? '–'} concurrent items, two viewers ` +
      'subscribed to each item before it starts, every item run to its end. Writes count the item tables only ' +
      '(subscriptions are the same for both flows and listed in the JSON); a write unit is 1 KB of the larger of ' +
      'the item before and after the write.',
  );
  out.push('');
  out.push(
    table(
      [
        'output',
        'flow',
        'items',
        'tokens',
        'Kinesis records',
        'Kinesis KB',
        'DynamoDB writes',
        'write units',
        'WS messages / viewer',
        'latency p50 / p95 / p99 ms',
      ],
      pairs(bench, 'cost').flatMap(({ name, pipeline, naive }) =>
        [pipeline, naive].flatMap((r) =>
          r
            ? [
                [
                  `≤ ${r.spec.maxTokens} tokens (${name})`,
                  r.spec.flow,
                  `${r.items.completed}/${r.items.submitted}`,
                  num(r.tokens.model),
                  num(r.per1kTokens.kinesisRecords),
                  num(r.per1kTokens.kinesisBytes / 1024),
                  num(r.per1kTokens.dynamoWrites),
                  num(r.per1kTokens.dynamoWriteUnits),
                  num(r.per1kTokens.wsMessagesPerViewer),
                  latency(r),
                ],
              ]
            : [],
        ),
      ),
    ),
  );

  const underLoad = (title: string, intro: string, group: ScenarioGroup) => {
    const rows = pairs(bench, group).flatMap(({ pipeline, naive }) =>
      [pipeline, naive].flatMap((r) =>
        r
          ? [
              [
                `${r.spec.concurrency} × ≤ ${r.spec.maxTokens} tokens`,
                r.spec.flow,
                num(r.throughput.modelStreams),
                num(r.throughput.offeredPerSecond),
                num(r.throughput.deliveredPerSecond),
                latency(r),
                `${num(r.memory.rssBeforeMb, 0)} → ${num(r.memory.rssPeakMb, 0)}`,
                `${num(r.cpu.mainThread * 100, 0)} % / ${num(r.cpu.modelThread * 100, 0)} %`,
                num(r.kinesis.recordsPerSecondInWindow),
                `${r.items.completed}/${r.items.submitted}`,
              ],
            ]
          : [],
      ),
    );
    if (rows.length === 0) return;
    out.push('', `## ${title}`, '', intro, '');
    out.push(
      table(
        [
          'generations',
          'flow',
          'model streams (mean)',
          'model tokens/s',
          'delivered tokens/s',
          'latency p50 / p95 / p99 ms',
          'RSS MB (idle → peak)',
          'main / model thread busy',
          'chunk records/s',
          'items ended',
        ],
        rows,
      ),
    );
  };
  underLoad(
    'Throughput, latency and memory under load',
    "Closed loop: a new item is submitted the moment one of the flow's model streams ends, so the model " +
      'keeps up to N generations streaming; two dashboards watch every item. Figures are over the window after ' +
      'the warm-up. "Model streams" is the mean number actually open (items wait in the input mapping while a ' +
      "lane's batch is still generating). RSS is the whole process: emulators, stack, viewers and model thread.",
    'load',
  );
  underLoad(
    'Output length under load',
    'The same closed loop with short and long outputs (the 400-token row of the table above is the middle point).',
    'length',
  );

  const capacity = bench.capacity;
  if (capacity) {
    out.push('', "## Emulator capacity, and the flows' share of it", '');
    out.push(
      `Measured in the same run, alone in a fresh process, with the same SDK clients (${capacity.spec.probeMs / 1000} s ` +
        `per probe, ${capacity.spec.recordBytes}-byte records, ${capacity.spec.shards} shards):`,
    );
    out.push('');
    out.push(
      table(
        ['probe', 'per second'],
        [
          [
            'Kinesis PutRecords, 500 records per call, 4 calls in flight (records)',
            num(capacity.putRecords.perSecond),
          ],
          ['Kinesis PutRecord, 16 calls in flight (records)', num(capacity.putRecord.perSecond)],
          ['DynamoDB UpdateItem with list_append, 8 in flight (writes)', num(capacity.updateItem.perSecond)],
        ],
      ),
    );
    const rows: Row[] = [];
    for (const group of ['load', 'length'] as const)
      for (const { pipeline, naive } of pairs(bench, group))
        for (const r of [pipeline, naive]) {
          if (!r) continue;
          const ceiling =
            r.spec.flow === 'pipeline' ? capacity.putRecords.perSecond : capacity.putRecord.perSecond;
          // Tokens the emulator could carry at this flow's tokens per record, if Kinesis were the only limit.
          // A run stopped with items in flight has model tokens not yet put: take the flow's cost run then.
          const costRun = head?.[r.spec.flow];
          const source = r.drained || !costRun ? r : costRun;
          const tokensPerRecord =
            source.kinesis.records > 0 ? source.tokens.model / source.kinesis.records : Number.NaN;
          const carried = ceiling * tokensPerRecord;
          rows.push([
            `${r.spec.flow} ${r.spec.name}`,
            num(r.kinesis.recordsPerSecondInWindow),
            `${num((100 * r.kinesis.recordsPerSecondInWindow) / ceiling)} % of ${r.spec.flow === 'pipeline' ? 'PutRecords' : 'PutRecord'}`,
            num(tokensPerRecord),
            num(carried),
            num(r.throughput.deliveredPerSecond),
            `${num((100 * r.throughput.deliveredPerSecond) / carried)} %`,
          ]);
        }
    out.push('');
    out.push(
      table(
        [
          'run',
          'chunk records/s put',
          "share of the emulator's record rate",
          'tokens per record',
          'tokens/s Kinesis alone could carry',
          'delivered tokens/s',
          'delivered share of it',
        ],
        rows,
      ),
    );
  }

  out.push('', '## What limited throughput', '');
  out.push(
    'Main thread: the one Node thread that runs kinesalite, dynalite, every handler, the event source mappings, ' +
      'the WebSocket gateway and the viewers. Model thread: the model stand-in, the token tap and the meters.',
  );
  for (const { pipeline, naive } of loads)
    for (const r of [pipeline, naive]) {
      if (!r) continue;
      const calls = Object.entries(r.callsPerSecond)
        .sort((a, b) => b[1] - a[1])
        .map(([op, rate]) => `${op} ${num(rate, 0)}/s`)
        .join(', ');
      out.push(
        '',
        `- **${r.spec.flow}, ${r.spec.concurrency} generations**: main thread ${num(r.cpu.mainThread * 100, 0)} % busy, ` +
          `model thread ${num(r.cpu.modelThread * 100, 0)} %, process ${num(r.cpu.processCores, 2)} cores; ` +
          `handler calls: ${calls || 'none'}.`,
        `  ${stages(r)}`,
      );
      if (r.profile) {
        const parts = r.profile.parts
          .slice(0, 8)
          .map((p) => `${p.part} ${num(p.share * 100, 0)} %`)
          .join(', ');
        out.push(
          `  CPU profile of the main thread (busy samples, ${num((1 - r.profile.idle) * 100, 0)} % of all): ${parts}.`,
        );
      }
    }

  out.push('', '## Correctness while measuring', '');
  out.push(
    "Every viewer copy of an ended item is compared with the model's answer; duplicates and gaps are deltas an " +
      'exactly-once viewer would have to drop or resubscribe for.',
  );
  out.push('');
  out.push(
    table(
      ['scenario', 'flow', 'items ended / submitted', 'text mismatches', 'duplicate deltas', 'gaps', 'notes'],
      bench.scenarios.map(({ result: r }) => [
        r.spec.name,
        r.spec.flow,
        `${r.items.completed + r.items.failed}/${r.items.submitted}`,
        String(r.items.textMismatches),
        String(r.items.viewerDuplicates),
        String(r.items.viewerGaps),
        r.notes.join('; ') || '',
      ]),
    ),
  );
  if (bench.failures.length > 0) {
    out.push('', '## Scenarios that failed', '');
    for (const f of bench.failures) out.push(`- ${f.flow} ${f.name}: ${f.error.split('\n')[0]}`);
  }
  out.push('');
  return out.join('\n');
}

/** How the pipeline holds up when offered ten times what it carries (flow control at work). */
function overloadSection(bench: BenchResult): string[] {
  const o = overloadFigures(bench);
  if (!o) return [];
  const pct = (x: number) => `${num(x * 100, 0)} %`;
  const streams = (r: ScenarioResult) => num(r.throughput.modelStreams);
  return [
    '',
    '## Overload',
    '',
    `Offered ${o.heavy.spec.concurrency} generations at once, the producers admit only what the consumer keeps up with ` +
      '(admission on the consumer lag); the rest wait as `waiting: "capacity"`. Targets: delivered tokens/s at least ' +
      `${pct(OVERLOAD_THROUGHPUT_TARGET)} of the figure at ${o.light.spec.concurrency}, and p99 added latency of the ` +
      `admitted generations at most ${num(OVERLOAD_P99_TARGET_MS, 0)} ms.`,
    '',
    table(
      [
        'offered generations',
        'model streams (mean)',
        'delivered tokens/s',
        'latency p50 / p95 / p99 ms',
        'timed items',
      ],
      [o.light, o.heavy].map((r) => [
        String(r.spec.concurrency),
        streams(r),
        num(r.throughput.deliveredPerSecond),
        latency(r),
        String(r.latencyItems),
      ]),
    ),
    '',
    `Delivered at ${o.heavy.spec.concurrency} ÷ at ${o.light.spec.concurrency}: **${pct(o.throughputRatio)}** ` +
      `(target ≥ ${pct(OVERLOAD_THROUGHPUT_TARGET)}, ${o.meetsThroughput ? 'met' : 'missed'}); p99 added latency at ` +
      `${o.heavy.spec.concurrency}: **${o.censored ? '≥ ' : ''}${num(o.p99Ms, 0)} ms** ` +
      `(target ≤ ${num(OVERLOAD_P99_TARGET_MS, 0)} ms, ${o.meetsLatency ? 'met' : 'missed'}).`,
  ];
}
