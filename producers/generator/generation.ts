import {
  type BedrockRuntimeClient,
  InvokeModelWithResponseStreamCommand,
  type InvokeModelWithResponseStreamCommandOutput,
  type ResponseStream,
} from '@aws-sdk/client-bedrock-runtime';
import {
  BehaviorSubject,
  catchError,
  concat,
  concatMap,
  defer,
  distinctUntilChanged,
  EMPTY,
  filter,
  from,
  fromEvent,
  lastValueFrom,
  map,
  mergeMap,
  type Observable,
  of,
  Subject,
  take,
  takeUntil,
  tap,
} from 'rxjs';
import type { ChunkRecord, ErrorInfo, Usage } from '../../shared/contracts/chunk-record.js';
import { messagesOf, type WorkItem } from '../../shared/contracts/work-item.js';
import { estimateCostUsd, type ModelPrice } from '../../shared/config.js';
import { classifyAwsError, RetriesExhaustedError, StreamsError } from '../../shared/errors.js';
import { type BackoffOptions, backoffDelayMs, sleep, withRetry } from '../../shared/retry.js';
import { coalesceText } from '../../shared/rx/coalesce-text.js';
import { type Logger, type Metrics, MetricUnit } from '../../shared/telemetry.js';
import { utf8Length } from '../../shared/utf8.js';
import type { ChunkSink } from './chunk-sink.js';
import type { ClaimStore } from './claims.js';
import {
  CancelledError,
  LeaseLostError,
  ModelEventError,
  TimeBudgetExceededError,
  TruncatedStreamError,
} from './errors.js';
import type { ModelAdapter, ModelEvent, ResolvedModel } from './models/index.js';
import { estimateTokens, type QuotaRegistry } from './quota.js';
import { pullAsyncIterable } from './rx/pull-async-iterable.js';
import type { GeneratorStats } from './stats.js';

/** Settings of every generation of a producer. */
export interface GenerationSettings {
  readonly flushIntervalMs: number;
  readonly flushMaxBytes: number;
  readonly maxBufferedBytes: number;
  /** Attempts per claim, the first included. */
  readonly maxAttempts: number;
  readonly defaultMaxTokens: number;
  /** Retries of `InvokeModelWithResponseStream` before the stream opens (throttling, 5xx). */
  readonly openRetry: BackoffOptions;
  /** Delay before a new attempt after a failed one. */
  readonly attemptBackoff: BackoffOptions;
  /** How often the lease is renewed while generating. */
  readonly renewEveryMs: number;
  readonly prices: Readonly<Record<string, ModelPrice>>;
}

/** What a generation uses; shared by all generations of an invocation. */
export interface GenerationEnv {
  readonly bedrock: BedrockRuntimeClient;
  readonly sink: ChunkSink;
  readonly claims: ClaimStore;
  readonly quotas: QuotaRegistry;
  readonly settings: GenerationSettings;
  readonly stats: GeneratorStats;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;
}

/** One claimed work item to generate. */
export interface GenerationJob {
  readonly item: WorkItem;
  readonly model: ResolvedModel;
  readonly adapter: ModelAdapter;
  /** The attempt the claim took; later attempts of this claim follow it. */
  readonly firstAttempt: number;
  /** Aborted with a `CancelledError`, `TimeBudgetExceededError` or `LeaseLostError` to stop the generation. */
  readonly controller: AbortController;
  /** The attempt now running (read by the cancel poller to notice a takeover). */
  attempt: number;
}

/** How a generation ended. */
export type GenerationOutcome =
  /** The `end` record is on the chunk stream. */
  | { readonly kind: 'completed'; readonly attempt: number }
  /** A final `error` record is on the chunk stream (cancelled and timed out included). */
  | { readonly kind: 'failed'; readonly attempt: number; readonly error: ErrorInfo }
  /** Another producer claimed a newer attempt: this one stopped without an ending. */
  | { readonly kind: 'superseded'; readonly attempt: number }
  /** Records could not be put on the chunk stream: the claim is released for a redelivery. */
  | { readonly kind: 'unwritable'; readonly attempt: number; readonly error: unknown };

type AttemptOutcome =
  | GenerationOutcome
  /** A non-final `error` record is on the chunk stream: a new attempt follows. */
  | { readonly kind: 'retry'; readonly attempt: number; readonly error: ErrorInfo };

/**
 * Runs a claimed work item to its end: attempts the model stream, puts the coalesced text as chunk
 * records in order, and after a failure starts a new attempt (fenced by a conditional write) after
 * a backoff, at most `maxAttempts` per claim. Renews the lease meanwhile. Never throws: every ending
 * is an outcome.
 */
export async function runGeneration(env: GenerationEnv, job: GenerationJob): Promise<GenerationOutcome> {
  const { claims, settings, stats, logger } = env;
  const { itemId } = job.item;
  stats.generationsStarted++;
  const renewal = setInterval(() => {
    claims.renew(itemId, job.attempt, job.controller.signal).then(
      (held) => {
        if (!held && !job.controller.signal.aborted)
          job.controller.abort(new LeaseLostError(itemId, job.attempt));
      },
      (err: unknown) => {
        if (!job.controller.signal.aborted) logger.warn('lease renewal failed', { itemId, error: err });
      },
    );
  }, settings.renewEveryMs);
  try {
    for (let n = 1; ; n++) {
      if (n > 1) {
        stats.attemptRetries++;
        // An abort during the pause still starts the next attempt, which records the reason at once.
        await sleep(backoffDelayMs(n - 1, settings.attemptBackoff), job.controller.signal).catch(
          () => undefined,
        );
        if (job.controller.signal.reason instanceof LeaseLostError) {
          const superseded: GenerationOutcome = { kind: 'superseded', attempt: job.attempt };
          await record(env, job, superseded);
          return superseded;
        }
        const from = job.attempt;
        job.attempt = from + 1;
        const fenced = await claims.fence(itemId, from, job.attempt).catch((err: unknown) => {
          logger.error('could not fence a new attempt', { itemId, attempt: job.attempt, error: err });
          return false;
        });
        if (!fenced) {
          job.attempt = from;
          const superseded: GenerationOutcome = { kind: 'superseded', attempt: from };
          await record(env, job, superseded);
          return superseded;
        }
      }
      const isLast = n >= settings.maxAttempts;
      const outcome = await runAttempt(env, job, isLast);
      if (outcome.kind === 'retry') {
        logger.info('attempt failed; a new attempt follows', {
          itemId,
          attempt: outcome.attempt,
          error: outcome.error,
        });
        continue;
      }
      await record(env, job, outcome);
      return outcome;
    }
  } finally {
    clearInterval(renewal);
  }
}

/** Counts and logs how a generation ended, and records the ending on its claim. */
async function record(env: GenerationEnv, job: GenerationJob, outcome: GenerationOutcome): Promise<void> {
  const { claims, stats, logger } = env;
  const { itemId } = job.item;
  const ending =
    outcome.kind === 'completed' ? 'completed' : outcome.kind === 'failed' ? 'failed' : undefined;
  switch (outcome.kind) {
    case 'completed':
      stats.generationsCompleted++;
      break;
    case 'failed':
      stats.generationsFailed++;
      if (outcome.error.code === 'cancelled') stats.generationsCancelled++;
      if (outcome.error.code === 'time_budget_exceeded') stats.generationsTimedOut++;
      logger.warn('generation failed', { itemId, attempt: outcome.attempt, error: outcome.error });
      break;
    case 'superseded':
      stats.generationsSuperseded++;
      logger.warn('generation superseded by a newer attempt of another producer', {
        itemId,
        attempt: outcome.attempt,
      });
      break;
    case 'unwritable':
      stats.generationsUnwritable++;
      logger.error('chunk records could not be written; releasing the item for a redelivery', {
        itemId,
        attempt: outcome.attempt,
        error: outcome.error,
      });
      break;
  }
  try {
    if (ending) await claims.finish(itemId, outcome.attempt, ending);
    else if (outcome.kind === 'unwritable') await claims.release(itemId, outcome.attempt);
  } catch (err) {
    // The chunk stream already holds the ending; the lease will run out on its own.
    logger.error('could not record the end of a claim', { itemId, attempt: outcome.attempt, error: err });
  }
}

interface AttemptState {
  final: boolean;
  stopReason: string | undefined;
  metrics: Usage | undefined;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  failure: unknown;
  textEvents: number;
}

/** Errors that end a stream early, in any member of the response stream union. */
const STREAM_ERRORS = [
  'internalServerException',
  'modelStreamErrorException',
  'modelTimeoutException',
  'serviceUnavailableException',
  'throttlingException',
  'validationException',
] as const;

/** The model events in one member of Bedrock's response stream. */
function decode(adapter: ModelAdapter, event: ResponseStream): ModelEvent[] {
  const members = event as Partial<Record<(typeof STREAM_ERRORS)[number], Error>>;
  for (const name of STREAM_ERRORS) if (members[name]) throw members[name];
  const bytes = event.chunk?.bytes;
  if (!bytes) return [];
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new ModelEventError(`a ${adapter.family} stream chunk is not JSON`, err);
  }
  return adapter.parseEvent(json);
}

/** `snake_case` of an AWS error name without its `Exception` suffix: a stable error code. */
function codeOf(name: string): string {
  return (
    name
      .replace(/Exception$/, '')
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toLowerCase() || 'error'
  );
}

/** What a failure looks like in an `error` record. */
export function errorInfoOf(err: unknown): ErrorInfo {
  const cause = err instanceof RetriesExhaustedError ? err.cause : err;
  if (cause instanceof StreamsError)
    return { code: cause.code, message: cause.message, retryable: cause.retryable };
  const kind = classifyAwsError(cause);
  const name = cause instanceof Error ? cause.name : 'Error';
  const message = err instanceof Error ? err.message : String(err);
  return { code: codeOf(name), message, retryable: kind === 'throttling' || kind === 'transient' };
}

/** Emits once when `signal` is aborted (at once if it already is). */
function abortOf(signal: AbortSignal): Observable<unknown> {
  return signal.aborted ? of(signal.reason) : fromEvent(signal, 'abort').pipe(take(1));
}

/**
 * One attempt: waits for quota, opens the model stream (retrying throttling before it opens), and
 * streams deltas → coalesced chunk records → the chunk stream, one record of the attempt in flight
 * at a time, then the `end` or `error` record. Pulls from the model only while the text pulled and
 * not yet acknowledged by Kinesis is under `maxBufferedBytes`.
 */
async function runAttempt(env: GenerationEnv, job: GenerationJob, isLast: boolean): Promise<AttemptOutcome> {
  const { bedrock, sink, settings, stats, now } = env;
  const { item, model, adapter } = job;
  const attempt = job.attempt;
  const signal = job.controller.signal;
  stats.attempts++;

  // The HTTP request stops with the attempt, whatever ends it.
  const request = new AbortController();
  const stopRequest = () => request.abort(signal.reason);
  signal.addEventListener('abort', stopRequest, { once: true });

  const state: AttemptState = {
    final: false,
    stopReason: undefined,
    metrics: undefined,
    inputTokens: undefined,
    outputTokens: undefined,
    failure: undefined,
    textEvents: 0,
  };
  const maxTokens = item.maxTokens ?? settings.defaultMaxTokens;
  const body = adapter.requestBody(item, { maxTokens });
  const promptText = [item.system ?? '', ...messagesOf(item).map((m) => JSON.stringify(m.content))].join(
    '\n',
  );
  const quota = env.quotas.forModel(model.foundationModelId);
  const startedAt = now();
  let reservation: Awaited<ReturnType<typeof quota.acquire>> | undefined;

  let response: InvokeModelWithResponseStreamCommandOutput | undefined;
  try {
    reservation = await quota.acquire(estimateTokens(promptText) + maxTokens, signal);
    response = await withRetry(
      () =>
        bedrock.send(
          new InvokeModelWithResponseStreamCommand({
            modelId: model.requested,
            contentType: 'application/json',
            accept: 'application/json',
            body: new TextEncoder().encode(JSON.stringify(body)),
          }),
          { abortSignal: request.signal },
        ),
      {
        ...settings.openRetry,
        what: `InvokeModelWithResponseStream ${model.requested}`,
        signal,
        onRetry: (err) => {
          stats.openRetries++;
          if (classifyAwsError(err) === 'throttling') stats.modelThrottles++;
        },
      },
    );
  } catch (err) {
    if (classifyAwsError(err) === 'throttling') stats.modelThrottles++;
    state.failure = err;
  }

  const buffered = new BehaviorSubject(0);
  let peak = 0;
  const acks = new Subject<void>();
  const canPull = buffered.pipe(
    map((bytes) => bytes < settings.maxBufferedBytes),
    distinctUntilChanged(),
    tap((open) => {
      if (!open) stats.backpressurePauses++;
    }),
  );

  const text$: Observable<string> = response?.body
    ? pullAsyncIterable(response.body, { canPull }).pipe(
        // An abort ends the text, which is still flushed: a cancelled item keeps what it produced.
        takeUntil(abortOf(signal)),
        mergeMap((event) => decode(adapter, event)),
        tap((event) => apply(state, event)),
        filter((event): event is Extract<ModelEvent, { kind: 'text' }> => event.kind === 'text'),
        map((event) => event.text),
        tap((text) => {
          const bytes = utf8Length(text);
          if (state.textEvents++ === 0) {
            const ms = now() - startedAt;
            stats.firstTokenMs.count++;
            stats.firstTokenMs.sum += ms;
            stats.firstTokenMs.max = Math.max(stats.firstTokenMs.max, ms);
            env.metrics.addMetric('TimeToFirstToken', MetricUnit.Milliseconds, ms);
          }
          stats.textEvents++;
          stats.textBytes += bytes;
          stats.largestTextEventBytes = Math.max(stats.largestTextEventBytes, bytes);
          buffered.next(buffered.value + bytes);
          peak = Math.max(peak, buffered.value);
        }),
        catchError((err: unknown) => {
          state.failure = err;
          return EMPTY;
        }),
      )
    : EMPTY;

  let seq = 0;
  const trace = item.traceparent === undefined ? {} : { traceparent: item.traceparent };
  const base = () => ({
    v: 1 as const,
    itemId: item.itemId,
    attempt,
    seq: seq++,
    emittedAt: now(),
    ...trace,
  });
  const deltas$ = text$.pipe(
    coalesceText({ maxBytes: settings.flushMaxBytes, intervalMs: settings.flushIntervalMs, acks }),
    map((text): ChunkRecord => ({ ...base(), type: 'delta', text })),
  );

  let outcome: AttemptOutcome | undefined;
  const ending$ = defer((): Observable<ChunkRecord> => {
    const ending = endingOf(env, job, state, isLast, attempt);
    outcome = ending.outcome;
    return ending.record ? of({ ...base(), ...ending.record } as ChunkRecord) : EMPTY;
  });

  try {
    await lastValueFrom(
      concat(deltas$, ending$).pipe(
        concatMap((chunk) =>
          // A superseded attempt writes nothing more: the newer attempt owns the item now.
          signal.reason instanceof LeaseLostError
            ? of({ chunk, written: false })
            : from(sink.put(chunk)).pipe(map(() => ({ chunk, written: true }))),
        ),
        tap(({ chunk, written }) => {
          if (written) stats.chunkRecords++;
          if (chunk.type !== 'delta') return;
          if (written) stats.deltaRecords++;
          buffered.next(Math.max(0, buffered.value - utf8Length(chunk.text)));
          acks.next();
        }),
      ),
      { defaultValue: undefined },
    );
  } catch (err) {
    return { kind: 'unwritable', attempt, error: err };
  } finally {
    signal.removeEventListener('abort', stopRequest);
    request.abort(new Error('attempt over'));
    stats.peakBufferedBytes = Math.max(stats.peakBufferedBytes, peak);
    const used =
      (state.metrics?.inputTokens ?? state.inputTokens ?? 0) +
      (state.metrics?.outputTokens ?? state.outputTokens ?? 0);
    if (reservation) quota.settle(reservation, used);
  }
  return outcome ?? { kind: 'unwritable', attempt, error: new Error('attempt ended without an outcome') };
}

function apply(state: AttemptState, event: ModelEvent): void {
  switch (event.kind) {
    case 'final':
      state.final = true;
      break;
    case 'stopReason':
      state.stopReason = event.reason;
      break;
    case 'metrics':
      state.metrics = event.usage;
      break;
    case 'usage':
      if (event.inputTokens !== undefined) state.inputTokens = event.inputTokens;
      if (event.outputTokens !== undefined) state.outputTokens = event.outputTokens;
      break;
    case 'text':
      break;
  }
}

type EndingFields =
  | Omit<Extract<ChunkRecord, { type: 'end' }>, 'v' | 'itemId' | 'attempt' | 'seq' | 'emittedAt'>
  | Omit<Extract<ChunkRecord, { type: 'error' }>, 'v' | 'itemId' | 'attempt' | 'seq' | 'emittedAt'>;

/** The last record of an attempt and what it means for the generation. */
function endingOf(
  env: GenerationEnv,
  job: GenerationJob,
  state: AttemptState,
  isLast: boolean,
  attempt: number,
): { record?: EndingFields; outcome: AttemptOutcome } {
  const { stats, settings } = env;
  const signal = job.controller.signal;
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof LeaseLostError) return { outcome: { kind: 'superseded', attempt } };
    const error = errorInfoOf(
      reason instanceof CancelledError || reason instanceof TimeBudgetExceededError
        ? reason
        : new CancelledError(job.item.itemId),
    );
    return { record: { type: 'error', error, final: true }, outcome: { kind: 'failed', attempt, error } };
  }
  if (state.failure !== undefined || !state.final) {
    const failure = state.failure ?? new TruncatedStreamError(job.adapter.family, job.adapter.finalEvent);
    const info = errorInfoOf(failure);
    if (info.retryable && !isLast) {
      return {
        record: { type: 'error', error: info, final: false },
        outcome: { kind: 'retry', attempt, error: info },
      };
    }
    const error: ErrorInfo = info.retryable
      ? { ...info, message: `${info.message} (attempt ${attempt}; no attempts left)`, retryable: false }
      : info;
    return { record: { type: 'error', error, final: true }, outcome: { kind: 'failed', attempt, error } };
  }
  const usage: Usage = state.metrics ?? {
    inputTokens: state.inputTokens ?? 0,
    outputTokens: state.outputTokens ?? 0,
  };
  stats.inputTokens += usage.inputTokens;
  stats.outputTokens += usage.outputTokens;
  const costUsd = estimateCostUsd(settings.prices, job.model.foundationModelId, usage);
  return {
    record: {
      type: 'end',
      usage,
      ...(costUsd === undefined ? {} : { costUsd }),
      ...(state.stopReason === undefined ? {} : { stopReason: state.stopReason }),
    },
    outcome: { kind: 'completed', attempt },
  };
}
