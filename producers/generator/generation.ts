import type { ErrorInfo } from '../../shared/contracts/chunk-record.js';
import type { Waiting } from '../../shared/contracts/stored-item.js';
import { messagesOf, type WorkItem } from '../../shared/contracts/work-item.js';
import { classifyAwsError } from '../../shared/errors.js';
import { backoffDelayMs, sleep } from '../../shared/retry.js';
import { MetricUnit } from '../../shared/telemetry.js';
import { type AttemptOutcome, type AttemptUsage, errorInfoOf, runAttempt } from './attempt.js';
import {
  CancelledError,
  LeaseLostError,
  QuotaWaitExceededError,
  ReleasedError,
  SimulatedCrashError,
  TimeBudgetExceededError,
} from './errors.js';
import type { ShownWaiting } from './claims.js';
import type { GenerationEnv } from './generation-env.js';
import type { Admitted } from './flow/admission.js';
import { estimateTokens } from './flow/fleet-quota.js';
import type { ModelAdapter, ResolvedModel } from './models/index.js';

/** One claimed work item to generate. */
export interface GenerationJob {
  readonly item: WorkItem;
  readonly model: ResolvedModel;
  readonly adapter: ModelAdapter;
  /** The attempt the claim took. */
  readonly attempt: number;
  /** Since when the item has waited, if an earlier claim of it waited (the maximum wait spans them). */
  readonly waitingSince: number | undefined;
  /** The claim showed the item as waiting: for what, since when, and the lease it wrote. */
  readonly shownWaiting?: ShownWaiting | undefined;
}

/** How a generation ended. */
export type GenerationOutcome =
  /** The `end` record is on the chunk stream. */
  | { readonly kind: 'completed'; readonly attempt: number }
  /** A final `error` record is on the chunk stream (cancelled, timed out, waited too long included). */
  | { readonly kind: 'failed'; readonly attempt: number; readonly error: ErrorInfo }
  /** Another producer claimed a newer attempt: this one stopped without an ending. */
  | { readonly kind: 'superseded'; readonly attempt: number }
  /**
   * Records could not be put on the chunk stream, or the claim of a new attempt could not be
   * written: the claim is released for a redelivery.
   */
  | { readonly kind: 'unwritable'; readonly attempt: number; readonly error: unknown }
  /** Still waiting when the invocation ended: the claim is released for a redelivery. */
  | { readonly kind: 'released'; readonly attempt: number };

/** A lease written on an item's claim: when, and for how long. */
export interface LeaseWrite {
  readonly at: number;
  readonly ms: number;
}

/** Where a generation is: waiting for admission, or running an attempt. */
export type GenerationPhase = 'waiting' | 'running';

/**
 * One work item's generation, the single owner of its attempt number and its stop switch. Waits for
 * admission (quota, capacity, an available model), runs attempts, and goes back to waiting after a
 * refusal (throttling, unavailability), which never uses up an attempt. Mid-stream failures start a
 * new, fenced attempt, at most `maxAttempts` of them; unavailability mid-stream is bounded by the
 * maximum wait instead. Every ending is an outcome; `run` throws only a simulated crash.
 */
export class Generation {
  /** Aborted with `CancelledError`, `TimeBudgetExceededError`, `LeaseLostError` or `ReleasedError`. */
  readonly controller = new AbortController();
  private current: number;
  private state: GenerationPhase = 'waiting';
  private failures = 0;
  /** Refusals in a row (pacing of the next try). */
  private refusals = 0;
  /** What the item's head says it waits for (the consumer clears it once text arrives). */
  private shownWaiting: Waiting | undefined;
  /** The last lease this generation wrote itself (a waiting mark), for the keeper not to renew it early. */
  private ownLease: LeaseWrite | undefined;
  private waitingSince: number;
  private unavailableSince: number | undefined;
  private readonly reservedTokens: number;

  constructor(
    private readonly env: GenerationEnv,
    readonly job: GenerationJob,
  ) {
    this.current = job.attempt;
    this.waitingSince = job.waitingSince ?? job.shownWaiting?.at ?? env.now();
    if (job.shownWaiting) {
      this.shownWaiting = job.shownWaiting.reason;
      this.ownLease = { at: job.shownWaiting.at, ms: job.shownWaiting.leaseMs };
    }
    const { item } = job;
    const prompt = [item.system ?? '', ...messagesOf(item).map((m) => JSON.stringify(m.content))].join('\n');
    this.reservedTokens = estimateTokens(prompt) + this.maxTokens;
  }

  get itemId(): string {
    return this.job.item.itemId;
  }

  /** The attempt now claimed. */
  get attempt(): number {
    return this.current;
  }

  get phase(): GenerationPhase {
    return this.state;
  }

  /** The last lease the generation wrote itself; the keeper's own renewals are on top of it. */
  get leaseWritten(): LeaseWrite | undefined {
    return this.ownLease;
  }

  private get maxTokens(): number {
    return this.job.item.maxTokens ?? this.env.settings.defaultMaxTokens;
  }

  /** Runs the generation to its end. */
  async run(): Promise<GenerationOutcome> {
    this.env.stats.generationsStarted++;
    for (;;) {
      const admitted = await this.admit();
      if ('kind' in admitted) return this.finish(admitted);
      const outcome = await this.runOnce(admitted);
      if (outcome) return this.finish(outcome);
    }
  }

  /** Waits for admission; an outcome instead when the wait ends otherwise. */
  private async admit(): Promise<Admitted | GenerationOutcome> {
    this.state = 'waiting';
    const { env, job } = this;
    const primary = job.model.requested;
    try {
      const admitted = await env.admission.admit({
        itemId: this.itemId,
        priority: job.item.priority ?? 'normal',
        models: [primary, ...(env.settings.fallbacks[primary] ?? [])],
        tokens: this.reservedTokens,
        waitingSince: this.waitingSince,
        signal: this.controller.signal,
        onWaiting: (reason) => this.markWaiting(reason),
      });
      this.state = 'running';
      return admitted;
    } catch (err) {
      if (err instanceof SimulatedCrashError) throw err;
      if (err instanceof ReleasedError) {
        // Still waiting: say how long so far, so a wait that outlasts invocations is seen before it ends.
        this.publishWait(this.env.now() - this.waitingSince);
        return { kind: 'released', attempt: this.current };
      }
      if (err instanceof LeaseLostError) return { kind: 'superseded', attempt: this.current };
      if (err instanceof QuotaWaitExceededError) this.env.stats.quotaWaitExceeded++;
      const stop =
        err instanceof CancelledError ||
        err instanceof TimeBudgetExceededError ||
        err instanceof QuotaWaitExceededError;
      return this.failWithoutText(
        errorInfoOf(stop ? err : new QuotaWaitExceededError(this.itemId, 0, 'quota')),
      );
    }
  }

  /** Runs one attempt on the admitted model; undefined when the generation goes on (a new attempt or a new wait). */
  private async runOnce(admitted: Admitted): Promise<GenerationOutcome | undefined> {
    const { env, job } = this;
    this.noteWait(admitted.waitedMs);
    const { model, adapter } = admitted.model === job.model.requested ? job : env.resolve(admitted.model);
    if (model !== job.model) await this.useFallback(model.requested);
    const outcome = await this.attemptOn(model, adapter).finally(() => env.admission.done());
    await this.settle(admitted, outcome);
    if (outcome.kind !== 'refused') {
      this.refusals = 0;
      this.shownWaiting = undefined;
    }
    const attempt = this.current;
    // A probe hands its turn on here; an outcome that tells the model's availability (`success` or
    // `failure` below, before any await) settles the breaker over it.
    if (admitted.probe !== undefined) env.breakerOf(admitted.model).release(admitted.probe);
    switch (outcome.kind) {
      case 'refused':
        await this.refused(admitted.model, outcome.cause);
        return undefined;
      case 'retry':
        return this.nextAttempt(admitted.model, outcome.cause);
      case 'completed':
        env.breakerOf(admitted.model).success();
        return { kind: 'completed', attempt };
      case 'failed':
        return { kind: 'failed', attempt, error: outcome.error };
      case 'superseded':
        return { kind: 'superseded', attempt };
      case 'unwritable':
        return { kind: 'unwritable', attempt, error: outcome.error };
    }
  }

  private attemptOn(model: ResolvedModel, adapter: ModelAdapter): Promise<AttemptOutcome> {
    return runAttempt(this.env, {
      itemId: this.itemId,
      attempt: this.current,
      model,
      adapter,
      body: adapter.requestBody(this.job.item, { maxTokens: this.maxTokens }),
      signal: this.controller.signal,
      isLast: this.failures + 1 >= this.env.settings.maxAttempts,
      traceparent: this.job.item.traceparent,
    });
  }

  /**
   * Bedrock refused before the stream opened: the fleet backs off, and the item says it waits and
   * pauses (jittered, growing with refusals in a row) before it asks for admission again.
   */
  private async refused(model: string, cause: unknown): Promise<void> {
    const { env } = this;
    env.stats.requestsRefused++;
    env.logger.info('model request refused before its stream; waiting again', {
      itemId: this.itemId,
      model,
      error: cause,
    });
    this.unavailable(model, cause);
    this.markWaiting('quota');
    await sleep(backoffDelayMs(++this.refusals, REFUSAL_BACKOFF), this.controller.signal).catch(
      () => undefined,
    );
  }

  /** Feeds a throttle to the fleet's AIMD rate, an unavailability to the model's breaker. */
  private unavailable(model: string, cause: unknown): void {
    const { env } = this;
    if (classifyAwsError(cause) === 'throttling') {
      env.quota
        .throttled(model)
        .catch((err: unknown) => env.logger.warn('could not lower the fleet rate', { model, error: err }));
      return;
    }
    const breaker = env.breakerOf(model);
    if (!breaker.failure()) return;
    env.stats.breakerOpenings++;
    env.logger.warn('model breaker opened', { model, until: new Date(breaker.reopensAt).toISOString() });
    env.quota
      .openForFleet(model, breaker.reopensAt)
      .catch((err: unknown) => env.logger.warn('could not open the fleet breaker', { model, error: err }));
  }

  /** After a non-final `error` record: fences the next attempt, after a pause. */
  private async nextAttempt(model: string, cause: unknown): Promise<GenerationOutcome | undefined> {
    const { env } = this;
    const now = env.now();
    if (isUnavailability(cause)) {
      this.unavailableSince ??= now;
      this.unavailable(model, cause);
      if (now - this.unavailableSince > env.settings.maxWaitMs)
        return this.failWithoutText(
          errorInfoOf(new QuotaWaitExceededError(this.itemId, now - this.unavailableSince, 'availability')),
          true,
        );
    } else {
      this.failures++;
      env.breakerOf(model).success();
    }
    env.stats.attemptRetries++;
    // An abort during the pause still reaches the fence, and the next wait records the reason.
    await sleep(backoffDelayMs(this.failures + 1, env.settings.attemptBackoff), this.controller.signal).catch(
      () => undefined,
    );
    if (this.controller.signal.reason instanceof LeaseLostError)
      return { kind: 'superseded', attempt: this.current };
    const unfenced = await this.fenceNext();
    if (unfenced) return unfenced;
    this.waitingSince = env.now();
    return undefined;
  }

  /**
   * Ends the generation with a final `error` record of the current attempt, which has no records yet
   * (it never got a model stream) — or, with `afterRecords`, the next attempt's first record.
   */
  private async failWithoutText(error: ErrorInfo, afterRecords = false): Promise<GenerationOutcome> {
    const { env } = this;
    const unfenced = afterRecords ? await this.fenceNext() : undefined;
    if (unfenced) return unfenced;
    const attempt = this.current;
    try {
      await env.sink.put({
        v: 1,
        itemId: this.itemId,
        attempt,
        seq: 0,
        type: 'error',
        error,
        final: true,
        emittedAt: env.now(),
        ...(this.job.item.traceparent === undefined ? {} : { traceparent: this.job.item.traceparent }),
      });
      env.stats.chunkRecords++;
      return { kind: 'failed', attempt, error };
    } catch (err) {
      return { kind: 'unwritable', attempt, error: err };
    }
  }

  /**
   * Claims the next attempt; undefined when claimed, else how the generation ends. The attempt moves
   * on before the write, so that the keeper, which may read the claim meanwhile, never takes the new
   * attempt for another producer's. A refused fence means another producer claimed the item
   * (`superseded`); a fence DynamoDB kept failing says nothing of the kind, so the claim is released
   * and the work item delivered again (`unwritable`), whose redelivery takes the item over. Taking
   * the failure for a takeover would leave the item with no producer at all.
   */
  private async fenceNext(): Promise<GenerationOutcome | undefined> {
    const from = this.current;
    this.current = from + 1;
    try {
      if (await this.env.claims.fence(this.itemId, from, from + 1)) return undefined;
    } catch (err) {
      this.current = from;
      this.env.logger.error('could not fence a new attempt', {
        itemId: this.itemId,
        attempt: from + 1,
        error: err,
      });
      return { kind: 'unwritable', attempt: from, error: err };
    }
    this.current = from;
    return { kind: 'superseded', attempt: from };
  }

  private markWaiting(reason: Waiting): void {
    const { env } = this;
    if (this.shownWaiting === reason) return;
    this.shownWaiting = reason;
    const at = env.now();
    const attempt = this.current;
    env.claims
      .markWaiting(this.itemId, attempt, reason, env.settings.waitLeaseMs)
      .then((marked) => {
        if (marked && this.current === attempt) this.ownLease = { at, ms: env.settings.waitLeaseMs };
      })
      .catch((err: unknown) =>
        env.logger.warn('could not mark an item waiting', { itemId: this.itemId, reason, error: err }),
      );
  }

  private noteWait(waitedMs: number): void {
    const { stats } = this.env;
    if (waitedMs < 1) return;
    stats.itemsWaited++;
    stats.waitMs.count++;
    stats.waitMs.sum += waitedMs;
    stats.waitMs.max = Math.max(stats.waitMs.max, waitedMs);
    this.publishWait(waitedMs);
  }

  /** `QueueWait`: how long an item has waited for quota or capacity, since it first waited (across redeliveries). */
  private publishWait(waitedMs: number): void {
    if (waitedMs >= 1) this.env.metrics.addMetric('QueueWait', MetricUnit.Milliseconds, waitedMs);
  }

  /** The item runs on a fallback model: the stored item names the model that really ran. */
  private async useFallback(modelId: string): Promise<void> {
    this.env.stats.fallbacksUsed++;
    this.env.logger.warn('running on a fallback model', { itemId: this.itemId, model: modelId });
    await this.env.claims
      .setModel(this.itemId, this.current, modelId)
      .catch((err: unknown) =>
        this.env.logger.warn('could not record the fallback model', { itemId: this.itemId, error: err }),
      );
  }

  /** Settles the attempt's quota with what it used, or gives it back when the request never ran. */
  private async settle(admitted: Admitted, outcome: AttemptOutcome): Promise<void> {
    const { quota, logger } = this.env;
    const usage: AttemptUsage | undefined = 'usage' in outcome ? outcome.usage : undefined;
    try {
      // A refused request used its turn (the fleet's pace holds) but no tokens.
      if (outcome.kind === 'refused') await quota.settle(admitted.grant, 0, 0);
      else
        await quota.settle(
          admitted.grant,
          usage?.inputTokens ?? admitted.grant.reservedTokens - this.maxTokens,
          usage?.outputTokens ?? 0,
        );
    } catch (err) {
      logger.warn('could not settle model quota', { itemId: this.itemId, error: err });
    }
  }

  /** Counts and logs how the generation ended, and records the ending on its claim. */
  private async finish(outcome: GenerationOutcome): Promise<GenerationOutcome> {
    const { claims, logger } = this.env;
    countOutcome(this.env, this.itemId, outcome);
    try {
      if (outcome.kind === 'completed' || outcome.kind === 'failed') {
        await claims.finish(this.itemId, outcome.attempt, outcome.kind);
      } else if (outcome.kind === 'unwritable' || outcome.kind === 'released') {
        await claims.release(this.itemId, outcome.attempt);
      }
    } catch (err) {
      // The chunk stream already holds the ending; the lease will run out on its own.
      logger.error('could not record the end of a claim', {
        itemId: this.itemId,
        attempt: outcome.attempt,
        error: err,
      });
    }
    return outcome;
  }
}

/** Pause after a refusal: 100 ms doubling to 5 s, full jitter. */
const REFUSAL_BACKOFF = { maxAttempts: 1, baseDelayMs: 100, maxDelayMs: 5_000 };

const UNAVAILABLE = new Set([
  'ServiceUnavailableException',
  'ModelNotReadyException',
  'InternalServerException',
  'ThrottlingException',
]);

/** A failure that says the model is unavailable or overloaded, not that this request went wrong. */
export function isUnavailability(err: unknown): boolean {
  const name = err instanceof Error ? err.name : '';
  return UNAVAILABLE.has(name) || classifyAwsError(err) === 'throttling';
}

function countOutcome(env: GenerationEnv, itemId: string, outcome: GenerationOutcome): void {
  const { stats, logger } = env;
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
    case 'released':
      stats.waitingReleased++;
      logger.info('item still waiting as the invocation ends; released for a redelivery', {
        itemId,
        attempt: outcome.attempt,
      });
      break;
  }
}
