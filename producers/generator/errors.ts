import { StreamsError, ValidationError } from '../../shared/errors.js';

/** A model id whose family the producer cannot speak, or whose family cannot be told from the id. */
export class UnsupportedModelError extends ValidationError {
  readonly modelId: string;
  constructor(modelId: string, reason: string) {
    super(`modelId "${modelId}" is not supported: ${reason}`, { code: 'unsupported_model' });
    this.modelId = modelId;
  }
}

/** A model stream event the adapter cannot read. A new attempt may get a well-formed stream. */
export class ModelEventError extends StreamsError {
  constructor(message: string, cause?: unknown) {
    super('bad_model_event', message, { retryable: true, cause });
  }
}

/** The model's stream ended without its final event: the text may be cut short. */
export class TruncatedStreamError extends StreamsError {
  constructor(family: string, finalEvent: string) {
    super('stream_truncated', `the ${family} response stream ended before its final event (${finalEvent})`, {
      retryable: true,
    });
  }
}

/** The generation was stopped because its item asked to stop (`cancelRequested`). */
export class CancelledError extends StreamsError {
  constructor(itemId: string) {
    super('cancelled', `generation of item ${itemId} was cancelled on request`, { retryable: false });
  }
}

/** The invocation's time budget ran out before the generation could finish. */
export class TimeBudgetExceededError extends StreamsError {
  constructor(itemId: string, budgetMs: number) {
    super(
      'time_budget_exceeded',
      `generation of item ${itemId} could not finish within the ${budgetMs} ms left to this invocation; ` +
        'send the work item again to retry it',
      { retryable: true },
    );
  }
}

/** Another producer has claimed a newer attempt of the item: this one must stop writing. */
export class LeaseLostError extends StreamsError {
  constructor(itemId: string, attempt: number) {
    super('lease_lost', `item ${itemId}: attempt ${attempt} is no longer the claimed attempt`, {
      retryable: false,
    });
  }
}

/** A chunk record could not be written to the chunk stream within the bounded retries. */
export class ChunkStreamError extends StreamsError {
  constructor(message: string, cause?: unknown) {
    super('chunk_stream_unavailable', message, { retryable: true, cause });
  }
}

/** An item waited for model quota or pipeline capacity longer than the configured maximum. */
export class QuotaWaitExceededError extends StreamsError {
  constructor(itemId: string, waitedMs: number, reason: string) {
    super(
      'quota_wait_exceeded',
      `item ${itemId} waited ${Math.round(waitedMs / 1000)} s for model ${reason}, longer than the configured maximum wait`,
      { retryable: false },
    );
  }
}

/** The invocation is ending: a waiting item is released for a redelivery. */
export class ReleasedError extends StreamsError {
  constructor(itemId: string) {
    super('released', `item ${itemId} is released for a redelivery: the invocation is ending`, {
      retryable: true,
    });
  }
}

/** Stops the producer at a chosen step as if its process died there (crash-injection tests and chaos). */
export class SimulatedCrashError extends StreamsError {
  constructor(step: string, itemId: string) {
    super('simulated_crash', `simulated producer crash at ${step} of item ${itemId}`, { retryable: true });
  }
}
