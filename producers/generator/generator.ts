import type { KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { from, lastValueFrom, mergeMap } from 'rxjs';
import { z } from 'zod';
import type { AwsClients } from '../../shared/aws-clients.js';
import type { Config } from '../../shared/config.js';
import { WorkItem } from '../../shared/contracts/work-item.js';
import { invalidRecordLetter, type DeadLetterSink } from '../../shared/dead-letters.js';
import { ConfigError, describe } from '../../shared/errors.js';
import { type BackoffOptions, sleep } from '../../shared/retry.js';
import { itemKeys, type Logger, type Metrics } from '../../shared/telemetry.js';
import { type UserRecord, unpackUserRecords } from '../../shared/user-records.js';
import { createChunkSink } from './chunk-sink.js';
import { ClaimStore } from './claims.js';
import { CancelledError, LeaseLostError, TimeBudgetExceededError, UnsupportedModelError } from './errors.js';
import { type GenerationEnv, type GenerationJob, runGeneration } from './generation.js';
import { adapterFor, type ModelAdapter, type ResolvedModel, resolveModel } from './models/index.js';
import { QuotaRegistry } from './quota.js';
import { copyStats, emptyStats, type GeneratorStats, publishInvocationMetrics } from './stats.js';

/** Knobs that are not deployment configuration; the defaults suit Lambda. Tests shorten them. */
export interface GeneratorTuning {
  /** How long a claim holds an item without renewal. Default 20 s. */
  readonly leaseMs: number;
  /** How often a running generation renews its lease. Default 5 s. */
  readonly renewEveryMs: number;
  /**
   * Time kept back from the invocation's remaining time to flush text, put the last records and
   * record the endings before Lambda's timeout. Default 3 s.
   */
  readonly safetyMarginMs: number;
  /** A generation is not started (its record is left for a redelivery) with less time than this. Default 2 s. */
  readonly minStartMs: number;
  /** The budget of an invocation without a Lambda context. Default 15 min (Lambda's maximum). */
  readonly defaultBudgetMs: number;
  /** PutRecords calls in flight at once per invocation. Default 4. */
  readonly maxPutsInFlight: number;
  /** A PutRecords call not answered within this is abandoned and tried again. Default 10 s. */
  readonly putTimeoutMs: number;
  /** Tries per chunk record. Default 8 tries, 50 ms to 2 s. */
  readonly putRetry: BackoffOptions;
  /** Tries of `InvokeModelWithResponseStream` before its stream opens. Default 4 tries, 200 ms to 5 s. */
  readonly openRetry: BackoffOptions;
  /** Pause before a new attempt after a failed one. Default 100 ms to 2 s. */
  readonly attemptBackoff: BackoffOptions;
  /** Seconds of quota one burst may spend (token buckets). Default 10. */
  readonly quotaBurstSeconds: number;
}

export const DEFAULT_TUNING: GeneratorTuning = {
  leaseMs: 20_000,
  renewEveryMs: 5_000,
  safetyMarginMs: 3_000,
  minStartMs: 2_000,
  defaultBudgetMs: 15 * 60_000,
  maxPutsInFlight: 4,
  putTimeoutMs: 10_000,
  putRetry: { maxAttempts: 8, baseDelayMs: 50, maxDelayMs: 2_000 },
  openRetry: { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 5_000 },
  attemptBackoff: { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 2_000 },
  quotaBurstSeconds: 10,
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

/**
 * Builds the producer: input stream records (work items) → one generation per item → coalesced,
 * ordered chunk records on the chunk stream. Returns the Lambda handler for a Kinesis event source
 * mapping with `ReportBatchItemFailures`: only records whose dead-lettering failed, whose claim
 * could not be written, whose chunk records could not be written, or that were left for a
 * redelivery are reported. Throws a `ConfigError` at once when the default model is unsupported.
 */
export function createGeneratorHandler(deps: GeneratorDeps): GeneratorHandler {
  const { config, clients, deadLetters, logger, metrics } = deps;
  const now = deps.now ?? Date.now;
  const tuning: GeneratorTuning = { ...DEFAULT_TUNING, ...deps.tuning };
  try {
    resolveModel(config.defaultModelId);
  } catch (err) {
    throw new ConfigError(`DEFAULT_MODEL_ID: ${describe(err)}`);
  }
  const p = config.producer;
  const stats = emptyStats();
  const quotas = new QuotaRegistry({
    requestsPerMinute: p.modelRequestsPerMinute,
    tokensPerMinute: p.modelTokensPerMinute,
    burstSeconds: tuning.quotaBurstSeconds,
    now,
  });
  const claims = new ClaimStore({
    dynamo: clients.dynamo,
    table: config.tables.items,
    leaseMs: tuning.leaseMs,
    now,
    sleep,
  });
  const settings = {
    flushIntervalMs: p.flushIntervalMs,
    flushMaxBytes: p.flushMaxBytes,
    maxBufferedBytes: p.maxBufferedBytesPerGeneration,
    maxAttempts: p.maxGenerationAttempts,
    defaultMaxTokens: p.defaultMaxTokens,
    openRetry: tuning.openRetry,
    attemptBackoff: tuning.attemptBackoff,
    renewEveryMs: tuning.renewEveryMs,
    prices: config.modelPrices,
  };

  const handler = async (
    event: KinesisStreamEvent,
    context?: InvocationContext,
  ): Promise<KinesisStreamBatchResponse> => {
    const before = copyStats(stats);
    stats.invocations++;
    const startedAt = now();
    const budgetMs = context?.getRemainingTimeInMillis() ?? tuning.defaultBudgetMs;
    const deadline = startedAt + budgetMs - tuning.safetyMarginMs;
    const failures: string[] = [];
    const fail = (record: KinesisStreamRecord) => failures.push(record.kinesis.sequenceNumber);

    const sink = createChunkSink({
      kinesis: clients.kinesis,
      streamName: config.chunkStream,
      maxPutsInFlight: tuning.maxPutsInFlight,
      putTimeoutMs: tuning.putTimeoutMs,
      retry: tuning.putRetry,
      // Half the safety margin is for the puts of the last records; the rest for returning in time.
      giveUpAt: startedAt + budgetMs - tuning.safetyMarginMs / 2,
      now,
      onCall: (report) => {
        stats.putCalls++;
        stats.putRecordFailures += report.failedRecords;
        if (report.callError !== undefined) stats.putCallFailures++;
        stats.putRetries += report.retried;
      },
    });
    const env: GenerationEnv = {
      bedrock: clients.bedrock,
      sink,
      claims,
      quotas,
      settings,
      stats,
      logger,
      metrics,
      now,
    };
    const running = new Map<string, GenerationJob>();

    // One timer stops every generation still running when the budget runs out.
    const budgetTimer = setTimeout(
      () => {
        for (const job of running.values())
          if (!job.controller.signal.aborted)
            job.controller.abort(new TimeBudgetExceededError(job.item.itemId, deadline - startedAt));
      },
      Math.max(0, deadline - now()),
    );
    const poller = startCancelPoller(claims, running, p.cancelPollIntervalMs, logger);

    // Parse every user record first (KPL aggregates unpacked): invalid ones go to the dead-letter
    // store one by one, duplicates in the batch are dropped.
    const jobs: Array<{ record: UserRecord; parsed: Extract<Parsed, { ok: true }> }> = [];
    const inBatch = new Set<string>();
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

    const process = async ({ record, parsed }: (typeof jobs)[number]): Promise<void> => {
      const { item, model, adapter } = parsed;
      if (deadline - now() < tuning.minStartMs) {
        stats.deferred++;
        logger.warn('too little time left to start a generation; left for a redelivery', itemKeys(item));
        return void fail(record);
      }
      let claim: Awaited<ReturnType<ClaimStore['claim']>>;
      try {
        claim = await claims.claim(
          { item, modelId: model.requested, recordId: record.eventID },
          deadline - tuning.minStartMs,
        );
      } catch (err) {
        stats.claimFailures++;
        logger.error('could not claim a work item', { ...itemKeys(item), error: err });
        return void fail(record);
      }
      if (claim.kind === 'completed' || claim.kind === 'running' || claim.kind === 'ended') {
        stats.duplicatesSkipped++;
        logger.info('work item already generated or generating; skipped', {
          ...itemKeys(item),
          state: claim.kind,
        });
        return;
      }
      if (claim.kind === 'deferred') {
        stats.deferred++;
        logger.warn('work item held under another lease; left for a redelivery', {
          ...itemKeys(item),
          leaseUntil: claim.leaseUntil,
        });
        return void fail(record);
      }
      const job: GenerationJob = {
        item,
        model,
        adapter,
        firstAttempt: claim.attempt,
        attempt: claim.attempt,
        controller: new AbortController(),
      };
      if (deadline <= now())
        job.controller.abort(new TimeBudgetExceededError(item.itemId, deadline - startedAt));
      running.set(item.itemId, job);
      logger.info('generation started', { ...itemKeys(item), attempt: claim.attempt, claim: claim.decision });
      try {
        const outcome = await runGeneration(env, job);
        logger.info('generation ended', {
          ...itemKeys(item),
          attempt: outcome.attempt,
          outcome: outcome.kind,
        });
        if (outcome.kind === 'unwritable') fail(record);
      } finally {
        running.delete(item.itemId);
      }
    };

    try {
      await lastValueFrom(from(jobs).pipe(mergeMap((job) => process(job), p.maxConcurrentGenerations)), {
        defaultValue: undefined,
      });
    } finally {
      clearTimeout(budgetTimer);
      poller.stop();
      await sink.close();
      publishInvocationMetrics(metrics, before, stats);
    }
    // User records of one aggregate share its sequence number: name it once.
    return { batchItemFailures: [...new Set(failures)].map((itemIdentifier) => ({ itemIdentifier })) };
  };

  return Object.assign(handler, { stats: () => copyStats(stats) });
}

/**
 * Polls the cancel flags of the running generations: one BatchGetItem per interval for all of them
 * (not one read per generation). A set flag aborts the generation with `CancelledError`; a newer
 * claimed attempt than the one running means another producer took the item over (`LeaseLostError`).
 */
function startCancelPoller(
  claims: ClaimStore,
  running: ReadonlyMap<string, GenerationJob>,
  intervalMs: number,
  logger: Logger,
): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const poll = async () => {
    if (running.size > 0) {
      try {
        const flags = await claims.flags([...running.keys()]);
        for (const [itemId, head] of flags) {
          const job = running.get(itemId);
          if (!job || job.controller.signal.aborted) continue;
          if (head.cancelRequested) job.controller.abort(new CancelledError(itemId));
          else if (head.claimedAttempt > job.attempt)
            job.controller.abort(new LeaseLostError(itemId, job.attempt));
        }
      } catch (err) {
        logger.warn('cancel poll failed; trying again at the next interval', { error: err });
      }
    }
    if (!stopped) timer = setTimeout(poll, intervalMs);
  };
  timer = setTimeout(poll, intervalMs);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
