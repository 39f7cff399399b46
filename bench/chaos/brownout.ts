import type { DynamoFaultProxy } from '../../local/dynamodb-faults.js';
import type { BatchRetry, EventSourceMapping } from '../../local/event-source/index.js';

/**
 * A window of the run in which every DynamoDB call of the handlers fails (throughput exceeded,
 * throttling, 500, 503 in turn). The run's own reads go straight to the database.
 */
export interface DynamoBrownout {
  /** Earliest start, from the start of the run. */
  readonly atMs: number;
  /**
   * It waits up to this long past `atMs` for an item to be streaming, so chunk records are in
   * flight when it starts (a brownout with nothing to write fails no consumer batch).
   */
  readonly waitForStreamingMs: number;
  /** Shortest duration. */
  readonly durationMs: number;
  /**
   * It goes on past `durationMs`, up to `maxDurationMs`, until a batch of each mapping that began
   * failing in it has used this many retries: the counts a retry budget used to allow (input 3,
   * chunks 10), which Lambda spends back to back. A batch that has used them is one such a budget
   * would have skipped.
   */
  readonly outlast: { readonly input: number; readonly chunks: number };
  readonly maxDurationMs: number;
}

/** What the brownout did. */
export interface BrownoutReport {
  /** When it started and how long it lasted; undefined when the run ended before it began. */
  readonly startedAtMs: number | undefined;
  readonly durationMs: number;
  /** Handler DynamoDB calls the proxy failed during it. */
  readonly failedCalls: number;
  /** Mapping invocations that failed whole or in part during it. */
  readonly failedInvocations: { readonly input: number; readonly chunks: number };
  /** Most retries a batch that began failing during it used, per mapping. */
  readonly longestRetryRun: { readonly input: number; readonly chunks: number };
  /** Whether a batch of each mapping used `outlast`'s retries: an old budget would have skipped it. */
  readonly outlasted: boolean;
}

/** What the brownout acts on and reads: the stack running now (a restart brings a new one). */
export interface BrownoutTarget {
  readonly dynamodbFaults: DynamoFaultProxy | undefined;
  readonly mappings: { readonly input: EventSourceMapping; readonly chunks: EventSourceMapping };
}

type MappingName = 'input' | 'chunks';

/**
 * Keeps the longest retry run of each mapping that began at or after a time; the mappings report
 * every failed invocation to `record` (their `onRetry`), across restarts.
 */
export class RetryRuns {
  private since = Number.POSITIVE_INFINITY;
  private until = Number.POSITIVE_INFINITY;
  private readonly longest: Record<MappingName, number> = { input: 0, chunks: 0 };

  /** Counts runs that begin from `since` on, with failures until `until` (the brownout's window). */
  watch(since: number, until = Number.POSITIVE_INFINITY): void {
    this.since = since;
    this.until = until;
  }

  /** The `onRetry` of one mapping. */
  record(mapping: MappingName): (retry: BatchRetry) => void {
    return (retry) => {
      const now = Date.now();
      if (retry.failingSince >= this.since && now <= this.until)
        this.longest[mapping] = Math.max(this.longest[mapping], retry.retriesUsed);
    };
  }

  longestRun(): { readonly input: number; readonly chunks: number } {
    return { ...this.longest };
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Plays the brownout: waits for its time and a streaming item, fails every handler DynamoDB call
 * until it has lasted long enough and outlasted the old retry counts (or its maximum), then lets
 * calls through again. The rule is set again every 250 ms, so it holds across a stack restart.
 */
export async function runBrownout(
  brownout: DynamoBrownout,
  options: {
    readonly startedAt: number;
    readonly target: () => BrownoutTarget;
    readonly runs: RetryRuns;
    readonly streaming: () => Promise<boolean>;
    readonly stopped: () => boolean;
    readonly progress: (line: string) => void;
  },
): Promise<BrownoutReport> {
  const { target, runs, stopped } = options;
  const notStarted: BrownoutReport = {
    startedAtMs: undefined,
    durationMs: 0,
    failedCalls: 0,
    failedInvocations: { input: 0, chunks: 0 },
    longestRetryRun: { input: 0, chunks: 0 },
    outlasted: false,
  };
  const earliest = options.startedAt + brownout.atMs;
  while (!stopped() && Date.now() < earliest) await sleep(100);
  while (!stopped() && Date.now() < earliest + brownout.waitForStreamingMs) {
    if (await options.streaming().catch(() => false)) break;
    await sleep(50);
  }
  if (stopped()) return notStarted;

  const counters = {
    calls: acrossLives(target, (t) => t.dynamodbFaults?.stats().failed ?? 0),
    input: acrossLives(target, (t) => failedInvocations(t.mappings.input)),
    chunks: acrossLives(target, (t) => failedInvocations(t.mappings.chunks)),
  };
  const began = Date.now();
  runs.watch(began);
  options.progress(`DynamoDB brownout: every handler call fails (at least ${brownout.durationMs / 1000} s)`);
  const outlasted = () => {
    const longest = runs.longestRun();
    return longest.input >= brownout.outlast.input && longest.chunks >= brownout.outlast.chunks;
  };
  while (
    !stopped() &&
    Date.now() < began + brownout.maxDurationMs &&
    (Date.now() < began + brownout.durationMs || !outlasted())
  ) {
    target().dynamodbFaults?.setFaults({ errorRate: 1 });
    // Read now and then, so a restart's new counters are noticed while the old ones are kept.
    for (const count of Object.values(counters)) count();
    await sleep(250);
  }
  const ended = Date.now();
  runs.watch(began, ended);
  target().dynamodbFaults?.setFaults({ errorRate: 0 });
  const report: BrownoutReport = {
    startedAtMs: began - options.startedAt,
    durationMs: ended - began,
    failedCalls: counters.calls(),
    failedInvocations: { input: counters.input(), chunks: counters.chunks() },
    longestRetryRun: runs.longestRun(),
    outlasted: outlasted(),
  };
  options.progress(
    `DynamoDB brownout over after ${(report.durationMs / 1000).toFixed(1)} s: ${report.failedCalls} calls failed, ` +
      `${report.failedInvocations.input} input and ${report.failedInvocations.chunks} chunk invocations failed`,
  );
  return report;
}

/** Invocations that failed whole or in part (records redelivered). */
const failedInvocations = (mapping: EventSourceMapping) => {
  const stats = mapping.stats();
  return stats.functionErrors + stats.partialFailures;
};

/**
 * Counts what `read` counts since now, across stacks: a restart brings new parts whose counters
 * start again at zero.
 */
function acrossLives(target: () => BrownoutTarget, read: (t: BrownoutTarget) => number): () => number {
  let current = target();
  let base = read(current);
  let earlier = 0;
  return () => {
    const now = target();
    if (now !== current) {
      earlier += read(current) - base;
      current = now;
      base = 0;
    }
    return earlier + read(current) - base;
  };
}
