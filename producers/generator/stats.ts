import { type Metrics, MetricUnit } from '../../shared/telemetry.js';

/**
 * In-process counters of one producer (one cold start), readable by tests and benchmarks without
 * parsing logs. The same figures go to CloudWatch as EMF metrics after each invocation.
 */
export interface GeneratorStats {
  invocations: number;
  /** Records in the invocations' events. */
  workItems: number;
  /** Records that failed validation and went to the dead-letter store. */
  invalidItems: number;
  /** Invalid records whose dead-lettering failed (reported in `batchItemFailures`). */
  deadLetterFailures: number;
  /** Deliveries that started no generation: a duplicate in the batch, or an item completed or running. */
  duplicatesSkipped: number;
  /** Items left for a redelivery: held under a live-looking lease, or too little time left to start. */
  deferred: number;
  /** Claims DynamoDB did not accept (reported in `batchItemFailures`). */
  claimFailures: number;
  generationsStarted: number;
  generationsCompleted: number;
  /** Generations that ended with a final `error` record (cancelled and timed out included). */
  generationsFailed: number;
  generationsCancelled: number;
  generationsTimedOut: number;
  /** Generations stopped because another producer claimed a newer attempt. */
  generationsSuperseded: number;
  /** Generations whose records could not be written (reported in `batchItemFailures`). */
  generationsUnwritable: number;
  /** Model attempts started (a generation has one or more). */
  attempts: number;
  /** Attempts after the first of a generation (after a failure). */
  attemptRetries: number;
  /** `InvokeModelWithResponseStream` calls answered with throttling before the stream opened. */
  modelThrottles: number;
  /** Calls tried again before the stream opened (throttling or transient errors). */
  openRetries: number;
  /** Text deltas received from the model. */
  textEvents: number;
  /** UTF-8 bytes of text received from the model. */
  textBytes: number;
  largestTextEventBytes: number;
  inputTokens: number;
  outputTokens: number;
  /** Chunk records accepted by Kinesis, of every type. */
  chunkRecords: number;
  deltaRecords: number;
  putCalls: number;
  /** Records rejected one by one inside PutRecords calls. */
  putRecordFailures: number;
  /** PutRecords calls that failed whole (throttled, timed out, unavailable). */
  putCallFailures: number;
  /** Record tries after the first. */
  putRetries: number;
  /** Largest number of bytes of text a generation held (pulled from the model, not yet on Kinesis). */
  peakBufferedBytes: number;
  /** Times a generation stopped pulling from the model because its buffer was at the cap. */
  backpressurePauses: number;
  /** Time to first token, from the request to the first text delta. */
  firstTokenMs: { count: number; sum: number; max: number };
  /** Items that had to wait for quota or capacity before their request (one per waiting episode). */
  itemsWaited: number;
  /** Time from an item's claim (or first wait) to its admission, of items that waited. */
  waitMs: { count: number; sum: number; max: number };
  /** Items released while still waiting because the invocation was ending (redelivered by Kinesis). */
  waitingReleased: number;
  /** Items failed with `quota_wait_exceeded`. */
  quotaWaitExceeded: number;
  /** Requests refused before their stream opened (throttling, unavailability): no attempt was used. */
  requestsRefused: number;
  /** Breakers this instance opened. */
  breakerOpenings: number;
  /** Reads and writes of the shared quota rows. */
  coordinationCalls: number;
  /** Generations run on a fallback model. */
  fallbacksUsed: number;
  /** Endings finished by a takeover from a claim left in `ending` by a producer that died. */
  endingsRecovered: number;
}

export function emptyStats(): GeneratorStats {
  return {
    invocations: 0,
    workItems: 0,
    invalidItems: 0,
    deadLetterFailures: 0,
    duplicatesSkipped: 0,
    deferred: 0,
    claimFailures: 0,
    generationsStarted: 0,
    generationsCompleted: 0,
    generationsFailed: 0,
    generationsCancelled: 0,
    generationsTimedOut: 0,
    generationsSuperseded: 0,
    generationsUnwritable: 0,
    attempts: 0,
    attemptRetries: 0,
    modelThrottles: 0,
    openRetries: 0,
    textEvents: 0,
    textBytes: 0,
    largestTextEventBytes: 0,
    inputTokens: 0,
    outputTokens: 0,
    chunkRecords: 0,
    deltaRecords: 0,
    putCalls: 0,
    putRecordFailures: 0,
    putCallFailures: 0,
    putRetries: 0,
    peakBufferedBytes: 0,
    backpressurePauses: 0,
    firstTokenMs: { count: 0, sum: 0, max: 0 },
    itemsWaited: 0,
    waitMs: { count: 0, sum: 0, max: 0 },
    waitingReleased: 0,
    quotaWaitExceeded: 0,
    requestsRefused: 0,
    breakerOpenings: 0,
    coordinationCalls: 0,
    fallbacksUsed: 0,
    endingsRecovered: 0,
  };
}

export function copyStats(stats: GeneratorStats): GeneratorStats {
  return { ...stats, firstTokenMs: { ...stats.firstTokenMs }, waitMs: { ...stats.waitMs } };
}

/** Counters published as EMF metrics, with their names and units. */
const PUBLISHED: ReadonlyArray<[keyof GeneratorStats, string, (typeof MetricUnit)[keyof typeof MetricUnit]]> =
  [
    ['workItems', 'WorkItems', MetricUnit.Count],
    ['invalidItems', 'InvalidWorkItems', MetricUnit.Count],
    ['duplicatesSkipped', 'DuplicatesSkipped', MetricUnit.Count],
    ['generationsStarted', 'Generations', MetricUnit.Count],
    ['generationsCompleted', 'GenerationsCompleted', MetricUnit.Count],
    ['generationsFailed', 'GenerationsFailed', MetricUnit.Count],
    ['generationsCancelled', 'GenerationsCancelled', MetricUnit.Count],
    ['generationsTimedOut', 'GenerationsTimedOut', MetricUnit.Count],
    ['attemptRetries', 'GenerationRetries', MetricUnit.Count],
    ['modelThrottles', 'ModelThrottles', MetricUnit.Count],
    ['openRetries', 'ModelRequestRetries', MetricUnit.Count],
    ['inputTokens', 'InputTokens', MetricUnit.Count],
    ['outputTokens', 'OutputTokens', MetricUnit.Count],
    ['chunkRecords', 'ChunkRecords', MetricUnit.Count],
    ['putCalls', 'PutRecordsCalls', MetricUnit.Count],
    ['putRecordFailures', 'PutRecordsRecordFailures', MetricUnit.Count],
    ['putRetries', 'PutRecordsRetries', MetricUnit.Count],
    ['backpressurePauses', 'BackpressurePauses', MetricUnit.Count],
    ['itemsWaited', 'ItemsWaited', MetricUnit.Count],
    ['waitingReleased', 'WaitingReleased', MetricUnit.Count],
    ['quotaWaitExceeded', 'QuotaWaitExceeded', MetricUnit.Count],
    ['requestsRefused', 'ModelRequestsRefused', MetricUnit.Count],
    ['breakerOpenings', 'BreakerOpenings', MetricUnit.Count],
    ['coordinationCalls', 'CoordinationCalls', MetricUnit.Count],
    ['fallbacksUsed', 'FallbacksUsed', MetricUnit.Count],
  ];

/** Adds what changed between two snapshots to `metrics` (one invocation's worth) and publishes it. */
export function publishInvocationMetrics(
  metrics: Metrics,
  before: GeneratorStats,
  after: GeneratorStats,
): void {
  for (const [key, name, unit] of PUBLISHED) {
    const delta = (after[key] as number) - (before[key] as number);
    if (delta > 0) metrics.addMetric(name, unit, delta);
  }
  metrics.publishStoredMetrics();
}
