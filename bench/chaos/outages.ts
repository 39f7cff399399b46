import type { Faults } from '../../local/bedrock/index.js';

/** A window of the run in which the model refuses every request before its stream. */
export interface ModelOutage {
  /** `throttle`: HTTP 429 ThrottlingException; `unavailable`: HTTP 503 ServiceUnavailableException. */
  readonly kind: 'throttle' | 'unavailable';
  /** When it starts, from the start of the run. */
  readonly atMs: number;
  readonly durationMs: number;
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
    options.progress(
      `model outage: every request ${outage.kind === 'throttle' ? 'throttled (429)' : 'unavailable (503)'} for ${outage.durationMs / 1000} s`,
    );
    while (!options.stopped() && Date.now() < endsAt) {
      options.target().setFaults({ ...options.usual, [outage.kind]: { probability: 1 } });
      await sleep(Math.min(500, Math.max(0, endsAt - Date.now())));
    }
    options.target().setFaults(options.usual);
    options.progress(`model outage (${outage.kind}) over`);
  }
}
