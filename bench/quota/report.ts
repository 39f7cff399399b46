import type { Percentiles } from '../support/stats.js';

/** The figures of one mode of the quota benchmark. */
export interface ModeResult {
  readonly mode: 'fleet' | 'instance';
  readonly items: number;
  readonly completed: number;
  /** Items with a final error record on the chunk stream. */
  readonly failed: number;
  /** The producers' own count of generations that ended in a final error. */
  readonly generationsFailed: number;
  /** Records still handed back after the last redelivery. */
  readonly undelivered: number;
  readonly elapsedMs: number;
  /** Admissions per minute between the first and the last admission (while work waited). */
  readonly requestsPerMinute: number;
  /** Input + token limit of those admissions, per minute (what the quota reserves). */
  readonly reservedTokensPerMinute: number;
  /** Input + output of those admissions, per minute (what the quota settles to). */
  readonly settledTokensPerMinute: number;
  readonly quota: { readonly requestsPerMinute: number; readonly tokensPerMinute: number };
  /** The stand-in's counters: stream requests that met the quota, and those it refused. */
  readonly modelRequests: number;
  readonly throttled: number;
  readonly standInTokens: number;
  readonly waitMs: Readonly<Record<'high' | 'normal' | 'low', Percentiles>>;
  readonly coordinationCallsPerGeneration: number;
  readonly generationsStarted: number;
  readonly waitingReleased: number;
}

const pct = (n: number) => `${(n * 100).toFixed(1)} %`;
const sec = (ms: number) => (Number.isNaN(ms) ? '–' : `${(ms / 1000).toFixed(1)} s`);

/** The quota benchmark's Markdown report: one column per mode, then the targets. */
export function renderQuotaReport(
  results: readonly ModeResult[],
  scenario: { quick: boolean; instances: number; items: number; minTokens: number; maxTokens: number },
): string {
  const q = results[0]?.quota ?? { requestsPerMinute: 0, tokensPerMinute: 0 };
  const row = (label: string, f: (r: ModeResult) => string) => `| ${label} | ${results.map(f).join(' | ')} |`;
  const used = (r: ModeResult) =>
    Math.max(r.requestsPerMinute / q.requestsPerMinute, r.reservedTokensPerMinute / q.tokensPerMinute);
  const throttledShare = (r: ModeResult) => r.throttled / Math.max(1, r.modelRequests);
  const lines = [
    `# Quota benchmark${scenario.quick ? ' (quick)' : ''}`,
    '',
    `${scenario.instances} producer instances, ${scenario.items} items offered at once (token limits ${scenario.minTokens}–${scenario.maxTokens}; priorities 1/4 high, 1/2 normal, 1/4 low), account quota ${q.requestsPerMinute} requests/min and ${q.tokensPerMinute.toLocaleString('en-US')} tokens/min on the Bedrock stand-in (rolling 60 s window). \`fleet\`: the quota shared through the coordination table; \`instance\`: each instance counts the quota on its own.`,
    '',
    `| | ${results.map((r) => `\`${r.mode}\``).join(' | ')} |`,
    `|---|${results.map(() => '---').join('|')}|`,
    row('quota used while work waited (larger of the two shares below)', (r) => pct(used(r))),
    row(
      'admitted requests/min (share of requests quota)',
      (r) => `${r.requestsPerMinute.toFixed(1)} (${pct(r.requestsPerMinute / q.requestsPerMinute)})`,
    ),
    row(
      'reserved tokens/min, input + token limit (share of tokens quota)',
      (r) =>
        `${Math.round(r.reservedTokensPerMinute)} (${pct(r.reservedTokensPerMinute / q.tokensPerMinute)})`,
    ),
    row(
      'settled tokens/min, input + output (share)',
      (r) => `${Math.round(r.settledTokensPerMinute)} (${pct(r.settledTokensPerMinute / q.tokensPerMinute)})`,
    ),
    row('items completed / failed / not delivered', (r) => `${r.completed} / ${r.failed} / ${r.undelivered}`),
    row('generations failed (producer counters)', (r) => String(r.generationsFailed)),
    row(
      'model requests throttled (stand-in)',
      (r) => `${r.throttled} of ${r.modelRequests} (${pct(throttledShare(r))})`,
    ),
    ...(['high', 'normal', 'low'] as const).map((p) =>
      row(`queue wait ${p}, p50 / p95`, (r) => `${sec(r.waitMs[p].p50)} / ${sec(r.waitMs[p].p95)}`),
    ),
    row('coordination-store calls per generation', (r) => r.coordinationCallsPerGeneration.toFixed(1)),
    row('items released waiting (redelivered)', (r) => String(r.waitingReleased)),
    row('wall time', (r) => sec(r.elapsedMs)),
    '',
    'Targets (`fleet`): ≥ 90 % of the quota used while work waits, 0 items failed, ≤ 2 % of requests throttled.',
    '',
    ...results.map(
      (r) =>
        `- \`${r.mode}\`: quota used ${pct(used(r))} ${used(r) >= 0.9 ? '✓' : '✗'}; failed ${r.failed + r.undelivered} ${r.failed + r.undelivered === 0 ? '✓' : '✗'}; throttled ${pct(throttledShare(r))} ${throttledShare(r) <= 0.02 ? '✓' : '✗'}`,
    ),
    '',
    "Queue wait: from the offer to the item's first chunk record (`emittedAt`). Rates: admissions between the first and the last admission, each charged to the span after it.",
    '',
  ];
  return lines.join('\n');
}
