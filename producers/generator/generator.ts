import type { KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { from, lastValueFrom, mergeMap } from 'rxjs';
import { z } from 'zod';
import type { AwsClients } from '../../shared/aws-clients.js';
import type { Config } from '../../shared/config.js';
import { WorkItem } from '../../shared/contracts/work-item.js';
import { cachedEvery, readConsumerLag } from '../../shared/coordination.js';
import { type DeadLetterSink, invalidRecordLetter } from '../../shared/dead-letters.js';
import { ENV } from '../../shared/env.js';
import { ConfigError, describe } from '../../shared/errors.js';
import { type BackoffOptions, sleep } from '../../shared/retry.js';
import { itemKeys, type Logger, type Metrics } from '../../shared/telemetry.js';
import { type UserRecord, unpackUserRecords } from '../../shared/user-records.js';
import { type ChunkSink, createChunkSink, invocationSink } from './chunk-sink.js';
import { type ClaimResult, ClaimStore } from './claims.js';
import {
  ReleasedError,
  SimulatedCrashError,
  TimeBudgetExceededError,
  UnsupportedModelError,
} from './errors.js';
import { Admission } from './flow/admission.js';
import { CircuitBreaker } from './flow/breaker.js';
import { CapacityGate } from './flow/capacity.js';
import { DynamoQuotaStore } from './flow/dynamo-quota-store.js';
import { FleetQuota } from './flow/fleet-quota.js';
import { MemoryQuotaStore } from './flow/memory-quota-store.js';
import type { QuotaStore } from './flow/quota-row.js';
import { Generation, type GenerationPhase } from './generation.js';
import type { CrashPoint, GenerationEnv } from './generation-env.js';
import { ClaimKeeper } from './keeper.js';
import { adapterFor, type ModelAdapter, type ResolvedModel, resolveModel } from './models/index.js';
import { copyStats, emptyStats, type GeneratorStats, publishInvocationMetrics } from './stats.js';

/** Knobs that are not deployment configuration; the defaults suit Lambda. Tests shorten them. */
export interface GeneratorTuning {
  /** How long a claim holds a running item without renewal. Default 20 s. */
  readonly leaseMs: number;
  /** How long a claim holds a waiting item without renewal. Default 60 s. */
  readonly waitLeaseMs: number;
  /**
   * Time kept back from the invocation's remaining time to flush text, put the last records and
   * record the endings before Lambda's timeout. Default 3 s.
   */
  readonly safetyMarginMs: number;
  /**
   * A generation is not started with less time than this: items still waiting then are released
   * for a redelivery. Default 2 s.
   */
  readonly minStartMs: number;
  /** The budget of an invocation without a Lambda context. Default 15 min (Lambda's maximum). */
  readonly defaultBudgetMs: number;
  /** PutRecords calls in flight at once per instance. Default 4. */
  readonly maxPutsInFlight: number;
  /** A PutRecords call not answered within this is abandoned and tried again. Default 10 s. */
  readonly putTimeoutMs: number;
  /** Tries per chunk record. Default 8 tries, 50 ms to 2 s. */
  readonly putRetry: BackoffOptions;
  /** Pause before a new attempt after a failed one. Default 100 ms to 2 s. */
  readonly attemptBackoff: BackoffOptions;
  /** Largest burst of a model's quota the fleet sends at once. Default 3 s of quota. */
  readonly quotaBurstMs: number;
  /** Share of a model's configured quota the fleet aims to use. Default 0.95. */
  readonly quotaUtilization: number;
  /** `fleet`: one quota shared through the coordination table; `instance`: each instance counts its own. */
  readonly quotaScope: 'fleet' | 'instance';
  /** Unavailability errors in a row that open a model's breaker; its first cool-down. Default 5, 5 s. */
  readonly breaker: {
    readonly failureThreshold: number;
    readonly coolDownMs: number;
    readonly maxCoolDownMs: number;
  };
  /** Each this much waiting raises an item one priority level. Default 60 s. */
  readonly ageStepMs: number;
  /** How often the consumer's lag is read. Default 1 s. */
  readonly lagReadEveryMs: number;
  /** Simulates a producer crash at a step of an ending (tests, chaos). Default: never. */
  readonly crashAt: (point: CrashPoint, itemId: string) => boolean;
}

export const DEFAULT_TUNING: GeneratorTuning = {
  leaseMs: 20_000,
  waitLeaseMs: 60_000,
  safetyMarginMs: 3_000,
  minStartMs: 2_000,
  defaultBudgetMs: 15 * 60_000,
  maxPutsInFlight: 4,
  putTimeoutMs: 10_000,
  putRetry: { maxAttempts: 8, baseDelayMs: 50, maxDelayMs: 2_000 },
  attemptBackoff: { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 2_000 },
  quotaBurstMs: 3_000,
  quotaUtilization: 0.95,
  quotaScope: 'fleet',
  breaker: { failureThreshold: 5, coolDownMs: 5_000, maxCoolDownMs: 60_000 },
  ageStepMs: 60_000,
  lagReadEveryMs: 1_000,
  crashAt: () => false,
};

export interface GeneratorDeps {
  readonly config: Config;
  readonly clients: Pick<AwsClients, 'kinesis' | 'dynamo' | 'bedrock'>;
  readonly deadLetters: DeadLetterSink;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Clock (epoch ms). Default `Date.now`. */
  readonly now?: () => number;
  /** Overrides of `DEFAULT_TUNING`. */
  readonly tuning?: Partial<GeneratorTuning>;
}

/** The Lambda context, as far as the producer uses it. */
export interface InvocationContext {
  getRemainingTimeInMillis(): number;
}

/** The producer's handler, with its counters since the cold start. */
export interface GeneratorHandler {
  (event: KinesisStreamEvent, context?: InvocationContext): Promise<KinesisStreamBatchResponse>;
  /** A copy of the counters since this handler was created. */
  stats(): GeneratorStats;
  /**
   * The host is stopping (the local stack; Lambda has no such moment): items waiting for admission,
   * now or later, are released for a redelivery (claim freed, record reported) and no new item is
   * claimed, so in-flight invocations end as soon as their running generations have.
   */
  drain(): void;
}

type Parsed =
  | {
      readonly ok: true;
      readonly item: WorkItem;
      readonly model: ResolvedModel;
      readonly adapter: ModelAdapter;
    }
  | { readonly ok: false; readonly reason: string };

/** Decodes and validates one input record: JSON, the work item schema, a model family we speak. */
export function parseWorkItem(record: KinesisStreamRecord, defaultModelId: string): Parsed {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(record.kinesis.data, 'base64').toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `work item is not valid JSON: ${describe(err)}` };
  }
  const parsed = WorkItem.safeParse(json);
  if (!parsed.success)
    return { ok: false, reason: `work item does not match the schema: ${z.prettifyError(parsed.error)}` };
  try {
    const model = resolveModel(parsed.data.modelId ?? defaultModelId);
    return { ok: true, item: parsed.data, model, adapter: adapterFor(model.family) };
  } catch (err) {
    if (err instanceof UnsupportedModelError) return { ok: false, reason: err.message };
    throw err;
  }
}

/** What a producer instance keeps across invocations: claims, the shared quota, breakers, admission. */
interface Instance {
  readonly claims: ClaimStore;
  /**
   * The chunk stream's PutRecords calls, shared by every generation of the instance: in Lambda one
   * invocation's, where several run in one process (the local stack) all of theirs, so records
   * arriving together ride one call instead of one per invocation.
   */
  readonly sink: ChunkSink;
  readonly quota: FleetQuota;
  readonly admission: Admission;
  readonly breakerOf: (model: string) => CircuitBreaker;
  readonly resolve: (modelId: string) => { model: ResolvedModel; adapter: ModelAdapter };
  /** Claims being written now: items that will ask for admission before one claimed next. */
  readonly claiming: { count: number };
}

function buildInstance(
  deps: GeneratorDeps,
  tuning: GeneratorTuning,
  stats: GeneratorStats,
  now: () => number,
): Instance {
  const { config, clients, logger } = deps;
  const p = config.producer;
  const claims = new ClaimStore({
    dynamo: clients.dynamo,
    table: config.tables.items,
    leaseMs: tuning.leaseMs,
    now,
    sleep,
  });
  const store =
    tuning.quotaScope === 'fleet'
      ? countingStore(new DynamoQuotaStore(clients.dynamo, config.tables.coordination), stats)
      : new MemoryQuotaStore();
  const defaults = {
    requestsPerMinute: p.modelRequestsPerMinute,
    tokensPerMinute: p.modelTokensPerMinute,
    outputBurndown: 1,
  };
  const quota = new FleetQuota({
    store,
    limitsOf: (model) => p.modelQuotas[model] ?? defaults,
    burstMs: tuning.quotaBurstMs,
    utilization: tuning.quotaUtilization,
    now,
  });
  const breakers = new Map<string, CircuitBreaker>();
  const breakerOf = (model: string) => {
    let breaker = breakers.get(model);
    if (!breaker) {
      breaker = new CircuitBreaker({ ...tuning.breaker, now });
      breakers.set(model, breaker);
    }
    return breaker;
  };
  const readLag = cachedEvery(tuning.lagReadEveryMs, now, () =>
    readConsumerLag(clients.dynamo, config.tables.coordination, now()),
  );
  const capacity = new CapacityGate({
    maxRunning: p.maxConcurrentGenerations,
    lagTargetMs: p.consumerLagTargetMs,
    readLag,
    now,
  });
  const admission = new Admission({
    quota,
    capacity,
    breakerOf,
    fallbackAfterMs: p.fallbackAfterMs,
    maxWaitMs: p.maxQuotaWaitMs,
    ageStepMs: tuning.ageStepMs,
    now,
    onError: (err) =>
      logger.warn('model quota or consumer lag unreadable; items keep waiting', { error: err }),
  });
  const resolve = (modelId: string) => {
    const model = resolveModel(modelId);
    return { model, adapter: adapterFor(model.family) };
  };
  const sink = createChunkSink({
    kinesis: clients.kinesis,
    streamName: config.chunkStream,
    maxPutsInFlight: tuning.maxPutsInFlight,
    putTimeoutMs: tuning.putTimeoutMs,
    retry: tuning.putRetry,
    now,
    onCall: (report) => {
      stats.putCalls++;
      stats.putRecordFailures += report.failedRecords;
      if (report.callError !== undefined) stats.putCallFailures++;
      stats.putRetries += report.retried;
    },
  });
  return { claims, sink, quota, admission, breakerOf, resolve, claiming: { count: 0 } };
}

/** Counts the calls a quota store makes (each method is one DynamoDB call, or two on a race). */
function countingStore(store: QuotaStore, stats: GeneratorStats): QuotaStore {
  const count =
    <A extends unknown[], R>(f: (...args: A) => Promise<R>) =>
    (...args: A) => {
      stats.coordinationCalls++;
      return f(...args);
    };
  return {
    read: count(store.read.bind(store)),
    increment: count(store.increment.bind(store)),
    replace: count(store.replace.bind(store)),
    add: count(store.add.bind(store)),
    decrease: count(store.decrease.bind(store)),
    open: count(store.open.bind(store)),
  };
}

/**
 * Builds the producer: input stream records (work items) → one generation per item → coalesced,
 * ordered chunk records on the chunk stream. Items wait for the fleet's model quota and the
 * pipeline's capacity (never failing for either) in priority order. Returns the Lambda handler for a
 * Kinesis event source mapping with `ReportBatchItemFailures`: only records whose dead-lettering
 * failed, whose claim could not be written, whose chunk records could not be written, or that were
 * left or released for a redelivery are reported. Throws a `ConfigError` at once when the default
 * model is unsupported.
 */
export function createGeneratorHandler(deps: GeneratorDeps): GeneratorHandler {
  const { config } = deps;
  const now = deps.now ?? Date.now;
  const tuning: GeneratorTuning = { ...DEFAULT_TUNING, ...deps.tuning };
  for (const [name, id] of [[ENV.defaultModelId, config.defaultModelId], ...fallbackIds(config)] as const) {
    try {
      resolveModel(id);
    } catch (err) {
      throw new ConfigError(`${name}: ${describe(err)}`);
    }
  }
  const stats = emptyStats();
  const instance = buildInstance(deps, tuning, stats, now);
  const handler = (event: KinesisStreamEvent, context?: InvocationContext) =>
    runInvocation(deps, tuning, instance, stats, now, event, context);
  return Object.assign(handler, {
    stats: () => copyStats(stats),
    drain: () => instance.admission.close(),
  });
}

function fallbackIds(config: Config): Array<readonly [string, string]> {
  return Object.values(config.producer.modelFallbacks).flatMap((ids) =>
    ids.map((id) => [ENV.modelFallbacks, id] as const),
  );
}

type Job = { readonly record: UserRecord; readonly parsed: Extract<Parsed, { ok: true }> };

/** One invocation: parse, claim, wait for admission, generate, report the records to deliver again. */
async function runInvocation(
  deps: GeneratorDeps,
  tuning: GeneratorTuning,
  instance: Instance,
  stats: GeneratorStats,
  now: () => number,
  event: KinesisStreamEvent,
  context: InvocationContext | undefined,
): Promise<KinesisStreamBatchResponse> {
  const { config, logger, metrics } = deps;
  const before = copyStats(stats);
  stats.invocations++;
  const startedAt = now();
  const budgetMs = context?.getRemainingTimeInMillis() ?? tuning.defaultBudgetMs;
  const deadline = startedAt + budgetMs - tuning.safetyMarginMs;
  const failures: string[] = [];
  const fail = (record: KinesisStreamRecord) => failures.push(record.kinesis.sequenceNumber);
  // Half the safety margin is for the puts of the last records; the rest for returning in time.
  const sink = invocationSink(instance.sink, startedAt + budgetMs - tuning.safetyMarginMs / 2, now);
  const env = generationEnv(deps, tuning, instance, stats, now, sink);
  const running = new Map<string, Generation>();
  const keeper = new ClaimKeeper({
    claims: instance.claims,
    tickMs: config.producer.cancelPollIntervalMs,
    leaseMs: tuning.leaseMs,
    waitLeaseMs: tuning.waitLeaseMs,
    logger,
    now,
  });
  const stopAll = (phase: GenerationPhase, reason: (g: Generation) => Error) => () => {
    for (const g of running.values())
      if (g.phase === phase && !g.controller.signal.aborted) g.controller.abort(reason(g));
  };
  // Items still waiting near the end are released for a redelivery; generations still running at
  // the end are stopped with what they produced.
  const releaseTimer = setTimeout(
    stopAll('waiting', (g) => new ReleasedError(g.itemId)),
    Math.max(0, deadline - tuning.minStartMs - now()),
  );
  const budgetTimer = setTimeout(
    () => {
      stopAll('waiting', (g) => new ReleasedError(g.itemId))();
      stopAll('running', (g) => new TimeBudgetExceededError(g.itemId, deadline - startedAt))();
    },
    Math.max(0, deadline - now()),
  );
  const process = (job: Job) =>
    processJob(job, { env, instance, keeper, running, fail, tuning, deadline, now, startedAt });
  try {
    const jobs = await parseRecords(deps, stats, event, fail);
    await lastValueFrom(from(jobs).pipe(mergeMap(process, config.producer.maxConcurrentGenerations)), {
      defaultValue: undefined,
    });
  } finally {
    clearTimeout(releaseTimer);
    clearTimeout(budgetTimer);
    keeper.stop();
    await sink.close();
    publishInvocationMetrics(metrics, before, stats);
  }
  // User records of one aggregate share its sequence number: name it once.
  return { batchItemFailures: [...new Set(failures)].map((itemIdentifier) => ({ itemIdentifier })) };
}

function generationEnv(
  deps: GeneratorDeps,
  tuning: GeneratorTuning,
  instance: Instance,
  stats: GeneratorStats,
  now: () => number,
  sink: ChunkSink,
): GenerationEnv {
  const p = deps.config.producer;
  return {
    bedrock: deps.clients.bedrock,
    sink,
    claims: instance.claims,
    admission: instance.admission,
    quota: instance.quota,
    breakerOf: instance.breakerOf,
    resolve: instance.resolve,
    settings: {
      flushIntervalMs: p.flushIntervalMs,
      flushMaxBytes: p.flushMaxBytes,
      maxBufferedBytes: p.maxBufferedBytesPerGeneration,
      maxAttempts: p.maxGenerationAttempts,
      defaultMaxTokens: p.defaultMaxTokens,
      attemptBackoff: tuning.attemptBackoff,
      waitLeaseMs: tuning.waitLeaseMs,
      maxWaitMs: p.maxQuotaWaitMs,
      fallbacks: p.modelFallbacks,
      prices: deps.config.modelPrices,
    },
    stats,
    logger: deps.logger,
    metrics: deps.metrics,
    now,
    crashAt: (point, itemId) => {
      if (tuning.crashAt(point, itemId)) throw new SimulatedCrashError(point, itemId);
    },
  };
}

/**
 * Parses every user record first (KPL aggregates unpacked): invalid ones go to the dead-letter store
 * one by one, duplicates in the batch are dropped.
 */
async function parseRecords(
  deps: GeneratorDeps,
  stats: GeneratorStats,
  event: KinesisStreamEvent,
  fail: (record: KinesisStreamRecord) => void,
): Promise<Job[]> {
  const { config, deadLetters, logger } = deps;
  const deadLetter = async (record: UserRecord, reason: string) => {
    stats.invalidItems++;
    try {
      await deadLetters.send(invalidRecordLetter('producer', record, reason));
    } catch (err) {
      stats.deadLetterFailures++;
      logger.error('could not dead-letter an invalid work item', {
        sequenceNumber: record.kinesis.sequenceNumber,
        subSequenceNumber: record.subSequenceNumber,
        reason,
        error: err,
      });
      fail(record);
    }
  };
  const unpacked = unpackUserRecords(event.Records);
  for (const { record, reason } of unpacked.undecodable) {
    stats.workItems++;
    await deadLetter(record, reason);
  }
  const jobs: Job[] = [];
  const inBatch = new Set<string>();
  for (const record of unpacked.records) {
    stats.workItems++;
    const parsed = parseWorkItem(record, config.defaultModelId);
    if (!parsed.ok) {
      await deadLetter(record, parsed.reason);
      continue;
    }
    if (inBatch.has(parsed.item.itemId)) {
      stats.duplicatesSkipped++;
      logger.info('duplicate work item in the batch skipped', itemKeys(parsed.item));
      continue;
    }
    inBatch.add(parsed.item.itemId);
    jobs.push({ record, parsed });
  }
  return jobs;
}

interface JobContext {
  readonly env: GenerationEnv;
  readonly instance: Instance;
  readonly keeper: ClaimKeeper;
  readonly running: Map<string, Generation>;
  readonly fail: (record: KinesisStreamRecord) => void;
  readonly tuning: GeneratorTuning;
  readonly deadline: number;
  readonly startedAt: number;
  readonly now: () => number;
}

/** Claims one work item and runs its generation; reports the record when it must be delivered again. */
async function processJob({ record, parsed }: Job, ctx: JobContext): Promise<void> {
  const { env, instance, tuning, deadline, now, fail } = ctx;
  const { stats, logger } = env;
  const { item, model, adapter } = parsed;
  if (deadline - now() < tuning.minStartMs || instance.admission.isClosed) {
    stats.deferred++;
    const why = instance.admission.isClosed
      ? 'the producer is draining'
      : 'too little time left to start a generation';
    logger.warn(`${why}; left for a redelivery`, itemKeys(item));
    return void fail(record);
  }
  let claim: ClaimResult;
  try {
    const expected = instance.admission.expectedWait(instance.claiming.count++);
    claim = await instance.claims.claim(
      {
        item,
        modelId: model.requested,
        recordId: record.eventID,
        ...(expected ? { waiting: { reason: expected, leaseMs: tuning.waitLeaseMs } } : {}),
      },
      deadline - tuning.minStartMs,
    );
  } catch (err) {
    stats.claimFailures++;
    logger.error('could not claim a work item', { ...itemKeys(item), error: err });
    return void fail(record);
  } finally {
    instance.claiming.count--;
  }
  if (claim.kind === 'ending') return finishEnding(env, claim, () => fail(record));
  if (claim.kind !== 'claimed') {
    if (claim.kind === 'deferred') {
      stats.deferred++;
      logger.warn('work item held under another lease; left for a redelivery', {
        itemId: item.itemId,
        leaseUntil: claim.leaseUntil,
      });
      return void fail(record);
    }
    stats.duplicatesSkipped++;
    logger.info('work item already generated or generating; skipped', {
      itemId: item.itemId,
      state: claim.kind,
    });
    return;
  }
  const generation = new Generation(env, {
    item,
    model,
    adapter,
    attempt: claim.attempt,
    waitingSince: claim.waitingSince,
    shownWaiting: claim.shownWaiting,
  });
  ctx.running.set(item.itemId, generation);
  ctx.keeper.hold(generation);
  logger.info('generation started', { ...itemKeys(item), attempt: claim.attempt, claim: claim.decision });
  try {
    const outcome = await generation.run();
    logger.info('generation ended', { ...itemKeys(item), attempt: outcome.attempt, outcome: outcome.kind });
    if (outcome.kind === 'unwritable' || outcome.kind === 'released') fail(record);
  } finally {
    ctx.keeper.drop(generation);
    ctx.running.delete(item.itemId);
  }
}

/** Puts the `end` record a dead producer had recorded on its claim, and finishes the claim. */
async function finishEnding(
  env: GenerationEnv,
  claim: Extract<ClaimResult, { kind: 'ending' }>,
  fail: () => void,
): Promise<void> {
  const { itemId } = claim.record;
  try {
    await env.sink.put(claim.record);
    await env.claims.finish(itemId, claim.attempt, 'completed');
    env.stats.endingsRecovered++;
    env.logger.warn('finished the ending of a producer that stopped while ending', {
      itemId,
      attempt: claim.attempt,
    });
  } catch (err) {
    env.logger.error('could not finish a recorded ending; left for a redelivery', { itemId, error: err });
    fail();
  }
}
