/** Display formats of the table and the chart. Empty values show as an en dash. */

export const NONE = '–';

/** `850 ms`, `1.24 s`, `12.4 s`, `3 m 05 s`. */
export function formatDuration(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms) || ms < 0) return NONE;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} m ${String(whole % 60).padStart(2, '0')} s`;
}

/** US dollars with enough digits to tell small costs apart: `$0.000412`, `$0.0123`, `$1.52`. */
export function formatCost(usd: number | undefined): string {
  if (usd === undefined || !Number.isFinite(usd)) return NONE;
  if (usd === 0) return '$0';
  if (usd < 0.01) return `$${usd.toPrecision(3)}`;
  if (usd < 1) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

/** `1,234` */
export function formatCount(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return NONE;
  return Math.round(n).toLocaleString('en-US');
}

/** A rate with one decimal below 10: `3.4`, `128`. */
export function formatRate(n: number): string {
  if (!Number.isFinite(n)) return NONE;
  return n < 10 ? n.toFixed(1) : Math.round(n).toLocaleString('en-US');
}

/**
 * The model's name without region, provider, release date and version, for a narrow column:
 * `us.anthropic.claude-3-5-haiku-20241022-v1:0` → `claude-3-5-haiku`. The full id is in the tooltip.
 */
export function shortModel(modelId: string | undefined): string {
  if (!modelId) return NONE;
  const name = modelId
    .replace(/^(?:[a-z]{2}\.)?[a-z0-9-]+\./, '')
    .replace(/-v\d+(?::\d+)?$/, '')
    .replace(/-\d{8}$/, '');
  return name || modelId;
}

/** Local wall-clock time: `14:03:27`. */
export function formatClock(epochMs: number | undefined): string {
  if (epochMs === undefined) return NONE;
  const d = new Date(epochMs);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}
