import {
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
import type { ChunkRecord, EndRecord, ErrorInfo, Usage } from '../../shared/contracts/chunk-record.js';
import { estimateCostUsd } from '../../shared/config.js';
import { classifyAwsError, RetriesExhaustedError, StreamsError } from '../../shared/errors.js';
import { coalesceText } from '../../shared/rx/coalesce-text.js';
import { MetricUnit } from '../../shared/telemetry.js';
import { utf8Length } from '../../shared/utf8.js';
import {
  CancelledError,
  LeaseLostError,
  ModelEventError,
  SimulatedCrashError,
  TimeBudgetExceededError,
  TruncatedStreamError,
} from './errors.js';
import type { GenerationEnv } from './generation-env.js';
import type { ModelAdapter, ModelEvent, ResolvedModel } from './models/index.js';
import { pullAsyncIterable } from './rx/pull-async-iterable.js';

/** What one attempt is: the item's attempt number on the chunk stream and the model it calls. */
export interface AttemptSpec {
  readonly itemId: string;
  readonly attempt: number;
  readonly model: ResolvedModel;
  readonly adapter: ModelAdapter;
  /** The model request body. */
  readonly body: Record<string, unknown>;
  /** Stops the attempt: cancel, time budget, lease lost. */
  readonly signal: AbortSignal;
  /** Whether a retryable failure is final (no attempts left). */
  readonly isLast: boolean;
  /** The work item's W3C trace context, carried on every record. */
  readonly traceparent: string | undefined;
}

/** Tokens an attempt used, as far as the model said (for settling its quota). */
export interface AttemptUsage {
  readonly inputTokens: number | undefined;
  readonly outputTokens: number | undefined;
}

/** How one attempt ended. */
export type AttemptOutcome =
  /** The `end` record is on the chunk stream. */
  | { readonly kind: 'completed'; readonly usage: AttemptUsage }
  /** A final `error` record is on the chunk stream. */
  | { readonly kind: 'failed'; readonly error: ErrorInfo; readonly usage: AttemptUsage }
  /** A non-final `error` record is on the chunk stream: a new attempt follows. */
  | {
      readonly kind: 'retry';
      readonly error: ErrorInfo;
      readonly cause: unknown;
      readonly usage: AttemptUsage;
    }
  /** Bedrock refused the request before its stream opened (throttling, unavailability): nothing was written. */
  | { readonly kind: 'refused'; readonly cause: unknown }
  /** Another producer claimed a newer attempt: this one stopped without an ending. */
  | { readonly kind: 'superseded' }
  /** Records could not be put on the chunk stream. */
  | { readonly kind: 'unwritable'; readonly error: unknown };

interface AttemptState {
  final: boolean;
  stopReason: string | undefined;
  metrics: Usage | undefined;
  inputTokens: number | undefined;
  outputTokens: number | undefined;
  failure: unknown;
  textEvents: number;
}

/**
 * One attempt: opens the model stream (once: a refusal goes back to admission, never retried here)
 * and streams deltas → coalesced chunk records → the chunk stream, one record in flight, then the
 * `end` or `error` record. The `end` record is written to the claim before it is put, so a producer
 * dying from there on leaves an ending to finish, not a generation to repeat. Pulls from the model
 * only while the text pulled and not yet acknowledged by Kinesis is under `maxBufferedBytes`.
 */
export async function runAttempt(env: GenerationEnv, spec: AttemptSpec): Promise<AttemptOutcome> {
  env.stats.attempts++;
  const request = new AbortController();
  const stopRequest = () => request.abort(spec.signal.reason);
  spec.signal.addEventListener('abort', stopRequest, { once: true });
  const state: AttemptState = {
    final: false,
    stopReason: undefined,
    metrics: undefined,
    inputTokens: undefined,
    outputTokens: undefined,
    failure: undefined,
    textEvents: 0,
  };
  try {
    const opened = await openStream(env, spec, request.signal);
    if (!opened.ok) {
      if (isRefusal(opened.error) && !spec.signal.aborted) return { kind: 'refused', cause: opened.error };
      state.failure = opened.error;
    }
    return await streamRecords(env, spec, state, opened.ok ? opened.response : undefined);
  } finally {
    spec.signal.removeEventListener('abort', stopRequest);
    request.abort(new Error('attempt over'));
  }
}

/** Throttling or unavailability before the stream opened: the request never ran. */
export function isRefusal(err: unknown): boolean {
  const kind = classifyAwsError(err);
  return kind === 'throttling' || kind === 'transient';
}

async function openStream(
  env: GenerationEnv,
  spec: AttemptSpec,
  abortSignal: AbortSignal,
): Promise<
  { ok: true; response: InvokeModelWithResponseStreamCommandOutput } | { ok: false; error: unknown }
> {
  try {
    const response = await env.bedrock.send(
      new InvokeModelWithResponseStreamCommand({
        modelId: spec.model.requested,
        contentType: 'application/json',
        accept: 'application/json',
        body: new TextEncoder().encode(JSON.stringify(spec.body)),
      }),
      { abortSignal },
    );
    return { ok: true, response };
  } catch (error) {
    if (classifyAwsError(error) === 'throttling') env.stats.modelThrottles++;
    return { ok: false, error };
  }
}

/** Streams the response (if any) as chunk records and puts the ending; the attempt's outcome. */
async function streamRecords(
  env: GenerationEnv,
  spec: AttemptSpec,
  state: AttemptState,
  response: InvokeModelWithResponseStreamCommandOutput | undefined,
): Promise<AttemptOutcome> {
  const { settings, stats, now } = env;
  const buffered = new BehaviorSubject(0);
  const acks = new Subject<void>();
  const startedAt = now();
  let seq = 0;
  const trace = spec.traceparent === undefined ? {} : { traceparent: spec.traceparent };
  const base = () => ({
    v: 1 as const,
    itemId: spec.itemId,
    attempt: spec.attempt,
    seq: seq++,
    emittedAt: now(),
    ...trace,
  });
  const deltas$ = textOf(env, spec, state, response, buffered, startedAt).pipe(
    coalesceText({ maxBytes: settings.flushMaxBytes, intervalMs: settings.flushIntervalMs, acks }),
    map((text): ChunkRecord => ({ ...base(), type: 'delta', text })),
  );
  let outcome: AttemptOutcome | undefined;
  const ending$ = defer((): Observable<ChunkRecord> => {
    const ending = endingOf(env, spec, state);
    outcome = ending.outcome;
    return ending.record ? of({ ...base(), ...ending.record } as ChunkRecord) : EMPTY;
  });
  try {
    await lastValueFrom(
      concat(deltas$, ending$).pipe(
        concatMap((chunk) => from(putRecord(env, spec, chunk)).pipe(map((written) => ({ chunk, written })))),
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
    if (err instanceof SimulatedCrashError) throw err;
    if (err instanceof LeaseLostError) return { kind: 'superseded' };
    return { kind: 'unwritable', error: err };
  }
  return outcome ?? { kind: 'unwritable', error: new Error('attempt ended without an outcome') };
}

/**
 * Puts one record; false when it was not written because the attempt was superseded. The `end`
 * record goes to the claim first (`ending`), then to the stream.
 */
async function putRecord(env: GenerationEnv, spec: AttemptSpec, chunk: ChunkRecord): Promise<boolean> {
  // A superseded attempt writes nothing more: the newer attempt owns the item now.
  if (spec.signal.reason instanceof LeaseLostError) return false;
  if (chunk.type === 'end') {
    env.crashAt('before-ending', spec.itemId);
    if (!(await env.claims.beginEnding(spec.itemId, spec.attempt, chunk as EndRecord)))
      throw new LeaseLostError(spec.itemId, spec.attempt);
    env.crashAt('ending-recorded', spec.itemId);
  }
  await env.sink.put(chunk);
  if (chunk.type === 'end') env.crashAt('end-put', spec.itemId);
  return true;
}

/** The model's text deltas, pulled only while the generation's buffer has room. */
function textOf(
  env: GenerationEnv,
  spec: AttemptSpec,
  state: AttemptState,
  response: InvokeModelWithResponseStreamCommandOutput | undefined,
  buffered: BehaviorSubject<number>,
  startedAt: number,
): Observable<string> {
  if (!response?.body) return EMPTY;
  const { stats, settings } = env;
  const canPull = buffered.pipe(
    map((bytes) => bytes < settings.maxBufferedBytes),
    distinctUntilChanged(),
    tap((open) => {
      if (!open) stats.backpressurePauses++;
    }),
  );
  return pullAsyncIterable(response.body, { canPull }).pipe(
    // An abort ends the text, which is still flushed: a cancelled item keeps what it produced.
    takeUntil(abortOf(spec.signal)),
    mergeMap((event) => decode(spec.adapter, event)),
    tap((event) => apply(state, event)),
    filter((event): event is Extract<ModelEvent, { kind: 'text' }> => event.kind === 'text'),
    map((event) => event.text),
    tap((text) => {
      if (state.textEvents++ === 0) firstToken(env, env.now() - startedAt);
      const bytes = utf8Length(text);
      stats.textEvents++;
      stats.textBytes += bytes;
      stats.largestTextEventBytes = Math.max(stats.largestTextEventBytes, bytes);
      buffered.next(buffered.value + bytes);
      stats.peakBufferedBytes = Math.max(stats.peakBufferedBytes, buffered.value);
    }),
    catchError((err: unknown) => {
      state.failure = err;
      return EMPTY;
    }),
  );
}

function firstToken(env: GenerationEnv, ms: number): void {
  const t = env.stats.firstTokenMs;
  t.count++;
  t.sum += ms;
  t.max = Math.max(t.max, ms);
  env.metrics.addMetric('TimeToFirstToken', MetricUnit.Milliseconds, ms);
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

type EndingFields =
  | Omit<Extract<ChunkRecord, { type: 'end' }>, 'v' | 'itemId' | 'attempt' | 'seq' | 'emittedAt'>
  | Omit<Extract<ChunkRecord, { type: 'error' }>, 'v' | 'itemId' | 'attempt' | 'seq' | 'emittedAt'>;

const usageOf = (state: AttemptState): AttemptUsage => ({
  inputTokens: state.metrics?.inputTokens ?? state.inputTokens,
  outputTokens: state.metrics?.outputTokens ?? state.outputTokens ?? state.textEvents,
});

/** The last record of an attempt and what it means for the generation. */
function endingOf(
  env: GenerationEnv,
  spec: AttemptSpec,
  state: AttemptState,
): { record?: EndingFields; outcome: AttemptOutcome } {
  const usage = usageOf(state);
  if (spec.signal.aborted) {
    const reason: unknown = spec.signal.reason;
    if (reason instanceof LeaseLostError) return { outcome: { kind: 'superseded' } };
    const error = errorInfoOf(
      reason instanceof CancelledError || reason instanceof TimeBudgetExceededError
        ? reason
        : new CancelledError(spec.itemId),
    );
    return { record: { type: 'error', error, final: true }, outcome: { kind: 'failed', error, usage } };
  }
  if (state.failure !== undefined || !state.final) {
    const cause = state.failure ?? new TruncatedStreamError(spec.adapter.family, spec.adapter.finalEvent);
    const info = errorInfoOf(cause);
    if (info.retryable && !spec.isLast)
      return {
        record: { type: 'error', error: info, final: false },
        outcome: { kind: 'retry', error: info, cause, usage },
      };
    const error: ErrorInfo = info.retryable
      ? { ...info, message: `${info.message} (attempt ${spec.attempt}; no attempts left)`, retryable: false }
      : info;
    return { record: { type: 'error', error, final: true }, outcome: { kind: 'failed', error, usage } };
  }
  const final: Usage = state.metrics ?? {
    inputTokens: state.inputTokens ?? 0,
    outputTokens: state.outputTokens ?? 0,
  };
  env.stats.inputTokens += final.inputTokens;
  env.stats.outputTokens += final.outputTokens;
  const costUsd = estimateCostUsd(env.settings.prices, spec.model.foundationModelId, final);
  return {
    record: {
      type: 'end',
      usage: final,
      ...(costUsd === undefined ? {} : { costUsd }),
      ...(state.stopReason === undefined ? {} : { stopReason: state.stopReason }),
    },
    outcome: {
      kind: 'completed',
      usage: { inputTokens: final.inputTokens, outputTokens: final.outputTokens },
    },
  };
}
