import type { Faults } from '../../local/bedrock/index.js';

/** A window of the run in which the model refuses every request before its stream. */
export interface ModelOutage {
  /** `throttle`: HTTP 429 ThrottlingException; `unavailable`: HTTP 503 ServiceUnavailableException. */
  readonly kind: 'throttle' | 'unavailable';
  /** When it starts, from the start of the run. */
  readonly atMs: number;
  readonly durationMs: number;
  /**
   * It goes on past `durationMs`, for at most as long again, until it has refused this many
   * requests: items waiting out an earlier outage may send none for a while. Default 1.
   */
  readonly minRefused?: number;
}

/** Failure codes an outage may cause if waiting did not hold: the run counts them apart. */
export const OUTAGE_CODES: readonly string[] = [
  'quota_wait_exceeded',
  'throttling_exception',
  'service_unavailable_exception',
];

/** What `runOutages` needs from the run: the model stand-in of the stack running now. */
export interface OutageTarget {
  setFaults(faults: Faults): void;
  stats(): { readonly throttled: number; readonly unavailable: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Plays `outages` in order over the run's usual faults. The outage's rule is set again every half
 * second, so it holds across a stack restart (a new stand-in starts with the usual faults); at its
 * end the usual faults come back. Resolves when the last outage is over or `stopped()` says so.
 */
export async function runOutages(
  outages: readonly ModelOutage[],
  options: {
    readonly startedAt: number;
    readonly usual: Faults;
    readonly target: () => OutageTarget;
    readonly stopped: () => boolean;
    readonly progress: (line: string) => void;
  },
): Promise<void> {
  for (const outage of [...outages].sort((a, b) => a.atMs - b.atMs)) {
    while (!options.stopped() && Date.now() < options.startedAt + outage.atMs) await sleep(250);
    if (options.stopped()) return;
    const endsAt = Date.now() + outage.durationMs;
    const lastAt = endsAt + outage.durationMs;
    options.progress(
      `model outage: every request ${outage.kind === 'throttle' ? 'throttled (429)' : 'unavailable (503)'} for ${outage.durationMs / 1000} s`,
    );
    const refused = refusalCounter(outage.kind, options.target);
    const minRefused = outage.minRefused ?? 1;
    while (!options.stopped() && Date.now() < lastAt && (Date.now() < endsAt || refused() < minRefused)) {
      options.target().setFaults({ ...options.usual, [outage.kind]: { probability: 1 } });
      await sleep(250);
    }
    options.target().setFaults(options.usual);
    options.progress(`model outage (${outage.kind}) over`);
  }
}

/**
 * Counts the requests refused with `kind` since now, across stand-ins: a stack restart brings a new
 * one whose counters start again at zero.
 */
function refusalCounter(kind: ModelOutage['kind'], target: () => OutageTarget): () => number {
  const count = (t: OutageTarget) => (kind === 'throttle' ? t.stats().throttled : t.stats().unavailable);
  let current = target();
  let base = count(current);
  let earlier = 0;
  return () => {
    const now = target();
    if (now !== current) {
      earlier += count(current) - base;
      current = now;
      base = 0;
    }
    return earlier + count(current) - base;
  };
}
