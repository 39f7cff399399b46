import type { BenchResult } from '../run-bench.js';
import type { ScenarioResult } from '../scenario/run-scenario.js';
import { num, pairs } from './markdown.js';

const COLORS = { pipeline: '#1f77b4', naive: '#d62728', offered: '#7f7f7f' } as const;
const PANEL = { width: 380, height: 300, left: 62, right: 14, top: 44, bottom: 58 } as const;
const FONT = 'font-family="Helvetica, Arial, sans-serif"';

const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A log-10 axis over [min, max], widened to whole decades. */
function logScale(values: number[], from: number, to: number) {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...finite, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...finite, 10)));
  const at = (v: number) =>
    from + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (to - from);
  const ticks: number[] = [];
  for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  return { at, ticks };
}

const tickLabel = (v: number) => (v >= 1000 ? `${v / 1000}k` : String(v));

function frame(
  x: number,
  title: string,
  yLabel: string,
  yTicks: number[],
  yAt: (v: number) => number,
): string[] {
  const { width, height, left, right, top, bottom } = PANEL;
  const out = [
    `<text x="${x + width / 2}" y="22" ${FONT} font-size="14" font-weight="bold" text-anchor="middle">${esc(title)}</text>`,
    `<line x1="${x + left}" y1="${top}" x2="${x + left}" y2="${height - bottom}" stroke="#333"/>`,
    `<line x1="${x + left}" y1="${height - bottom}" x2="${x + width - right}" y2="${height - bottom}" stroke="#333"/>`,
    `<text transform="translate(${x + 14} ${(top + height - bottom) / 2}) rotate(-90)" ${FONT} font-size="11" text-anchor="middle">${esc(yLabel)}</text>`,
  ];
  for (const t of yTicks) {
    const y = yAt(t);
    out.push(
      `<line x1="${x + left}" y1="${y}" x2="${x + width - right}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${x + left - 6}" y="${y + 4}" ${FONT} font-size="10" text-anchor="end">${tickLabel(t)}</text>`,
    );
  }
  return out;
}

function costPanel(x: number, pipeline: ScenarioResult, naive: ScenarioResult): string[] {
  const { width, height, left, right, top, bottom } = PANEL;
  const groups = [
    ['Kinesis records', pipeline.per1kTokens.kinesisRecords, naive.per1kTokens.kinesisRecords],
    ['write units', pipeline.per1kTokens.dynamoWriteUnits, naive.per1kTokens.dynamoWriteUnits],
    ['WS msgs / viewer', pipeline.per1kTokens.wsMessagesPerViewer, naive.per1kTokens.wsMessagesPerViewer],
  ] as const;
  const y = logScale(
    groups.flatMap(([, p, n]) => [p, n]),
    height - bottom,
    top,
  );
  const out = frame(x, `Per 1,000 output tokens (${pipeline.spec.name})`, 'count (log scale)', y.ticks, y.at);
  const slot = (width - left - right) / groups.length;
  groups.forEach(([label, p, n], i) => {
    const cx = x + left + slot * i + slot / 2;
    for (const [value, dx, color] of [
      [p, -22, COLORS.pipeline],
      [n, 2, COLORS.naive],
    ] as const) {
      const top = y.at(value);
      out.push(
        `<rect x="${cx + dx}" y="${top}" width="20" height="${Math.max(0, height - bottom - top)}" fill="${color}"/>`,
        `<text x="${cx + dx + 10}" y="${top - 4}" ${FONT} font-size="9" text-anchor="middle">${num(value, 0)}</text>`,
      );
    }
    out.push(
      `<text x="${cx}" y="${height - bottom + 16}" ${FONT} font-size="10" text-anchor="middle">${esc(label)}</text>`,
    );
  });
  return out;
}

function linePanel(
  x: number,
  title: string,
  yLabel: string,
  series: ReadonlyArray<{ name: string; color: string; points: Array<[number, number]>; dashed?: boolean }>,
): string[] {
  const { width, height, left, right, top, bottom } = PANEL;
  const xs = series.flatMap((s) => s.points.map(([c]) => c));
  const xScale = logScale(xs, x + left + 16, x + width - right - 16);
  const y = logScale(
    series.flatMap((s) => s.points.map(([, v]) => v)),
    height - bottom,
    top,
  );
  const out = frame(x, title, yLabel, y.ticks, y.at);
  for (const c of [...new Set(xs)].sort((a, b) => a - b))
    out.push(
      `<text x="${xScale.at(c)}" y="${height - bottom + 16}" ${FONT} font-size="10" text-anchor="middle">${c}</text>`,
    );
  out.push(
    `<text x="${x + (left + width - right) / 2}" y="${height - bottom + 32}" ${FONT} font-size="11" text-anchor="middle">concurrent generations (log scale)</text>`,
  );
  for (const s of series) {
    const points = s.points.filter(([, v]) => Number.isFinite(v) && v > 0);
    if (points.length === 0) continue;
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''} points="${points
        .map(([c, v]) => `${xScale.at(c).toFixed(1)},${y.at(v).toFixed(1)}`)
        .join(' ')}"/>`,
      ...points.map(
        ([c, v]) =>
          `<circle cx="${xScale.at(c).toFixed(1)}" cy="${y.at(v).toFixed(1)}" r="3" fill="${s.color}"/>`,
      ),
    );
  }
  return out;
}

/**
 * The figures of a run as one SVG: per-1,000-token costs of both flows, delivered tokens/s and
 * added latency against concurrent generations.
 */
export function renderChart(bench: BenchResult): string {
  const panels: string[][] = [];
  const costs = pairs(bench, 'cost');
  const head = costs[Math.floor((costs.length - 1) / 2)];
  if (head?.pipeline && head.naive) panels.push(costPanel(0, head.pipeline, head.naive));
  const loads = pairs(bench, 'load');
  const points = (
    flow: 'pipeline' | 'naive',
    value: (r: ScenarioResult) => number,
  ): Array<[number, number]> =>
    loads.flatMap((l) => {
      const r = l[flow];
      return r ? [[r.spec.concurrency, value(r)] as [number, number]] : [];
    });
  if (loads.length > 0) {
    panels.push(
      linePanel(PANEL.width * panels.length, 'Delivered tokens/s', 'tokens/s (log scale)', [
        {
          name: 'model output (pipeline run)',
          color: COLORS.offered,
          points: points('pipeline', (r) => r.throughput.offeredPerSecond),
          dashed: true,
        },
        {
          name: 'pipeline',
          color: COLORS.pipeline,
          points: points('pipeline', (r) => r.throughput.deliveredPerSecond),
        },
        {
          name: 'naive',
          color: COLORS.naive,
          points: points('naive', (r) => r.throughput.deliveredPerSecond),
        },
      ]),
    );
    panels.push(
      linePanel(
        PANEL.width * panels.length,
        'Added latency, p50 (solid) and p95 (dashed)',
        'ms (log scale)',
        [
          {
            name: 'pipeline p50',
            color: COLORS.pipeline,
            points: points('pipeline', (r) => r.latencyMs.p50),
          },
          {
            name: 'pipeline p95',
            color: COLORS.pipeline,
            points: points('pipeline', (r) => r.latencyMs.p95),
            dashed: true,
          },
          { name: 'naive p50', color: COLORS.naive, points: points('naive', (r) => r.latencyMs.p50) },
          {
            name: 'naive p95',
            color: COLORS.naive,
            points: points('naive', (r) => r.latencyMs.p95),
            dashed: true,
          },
        ],
      ),
    );
  }
  const width = Math.max(1, panels.length) * PANEL.width;
  const legendY = PANEL.height + 8;
  const legend = (
    [
      ['pipeline', COLORS.pipeline, 20],
      ['naive baseline', COLORS.naive, 120],
      ['model output in the pipeline run (tokens/s)', COLORS.offered, 250],
    ] as const
  )
    .map(
      ([label, color, x]) =>
        `<rect x="${x}" y="${legendY}" width="12" height="12" fill="${color}"/>` +
        `<text x="${x + 18}" y="${legendY + 10}" ${FONT} font-size="11">${esc(label)}</text>`,
    )
    .join('');
  const date = bench.startedAt.slice(0, 10);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${PANEL.height + 44}" viewBox="0 0 ${width} ${PANEL.height + 44}">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...panels.flat(),
    legend,
    `<text x="${width - 8}" y="${legendY + 30}" ${FONT} font-size="10" text-anchor="end" fill="#555">${esc(
      `${bench.mode} run, ${date}, ${bench.machine.cores} × ${bench.machine.cpu}`,
    )}</text>`,
    '</svg>',
    '',
  ].join('\n');
}
