/**
 * Errors of this system. Each says what happened, with the value and what was expected, and says
 * whether trying again can help: batch handling decides from `retryable`, never from a message.
 */
export class StreamsError extends Error {
  /** A stable machine-readable code (also what viewers see in `failed.error.code`). */
  readonly code: string;
  readonly retryable: boolean;

  constructor(code: string, message: string, options: { retryable: boolean; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable;
  }
}

/** A configuration variable is missing or malformed. Raised at start-up, never retried. */
export class ConfigError extends StreamsError {
  constructor(message: string) {
    super('config', message, { retryable: false });
  }
}

/** External input (a record, a request, a message) does not match its contract. */
export class ValidationError extends StreamsError {
  constructor(message: string, options: { code?: string; cause?: unknown } = {}) {
    super(options.code ?? 'validation', message, { retryable: false, cause: options.cause });
  }
}

/** A dependency asked us to slow down. */
export class ThrottledError extends StreamsError {
  constructor(message: string, cause?: unknown) {
    super('throttled', message, { retryable: true, cause });
  }
}

/** Retries ran out; `cause` is the last failure. */
export class RetriesExhaustedError extends StreamsError {
  readonly attempts: number;
  constructor(what: string, attempts: number, cause: unknown) {
    super('retries_exhausted', `${what} failed after ${attempts} attempts: ${describe(cause)}`, {
      retryable: true,
      cause,
    });
    this.attempts = attempts;
  }
}

/** How an AWS error should be handled. */
export type AwsErrorKind =
  | 'throttling'
  | 'validation'
  | 'gone'
  | 'conditional'
  | 'not-found'
  | 'transient'
  | 'aborted'
  | 'fatal';

const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'SlowDown',
  'ServiceQuotaExceededException',
]);
const TRANSIENT = new Set([
  'ServiceUnavailableException',
  'ServiceUnavailable',
  'InternalServerError',
  'InternalServerException',
  'InternalFailure',
  'KMSThrottlingException',
  'ModelStreamErrorException',
  'ModelNotReadyException',
  'ModelTimeoutException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const VALIDATION = new Set([
  'ValidationException',
  'SerializationException',
  'InvalidArgumentException',
  'InvalidParameterValueException',
  'AccessDeniedException',
  'ResourceInUseException',
  'UnrecognizedClientException',
  'ForbiddenException',
  'PayloadTooLargeException',
  'BadRequestException',
]);

/** Classifies an error thrown by an AWS SDK v3 call (or the network under it). */
export function classifyAwsError(err: unknown): AwsErrorKind {
  const e = err as { name?: unknown; code?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  const name = typeof e?.name === 'string' ? e.name : '';
  const code = typeof e?.code === 'string' ? e.code : '';
  const status = e?.$metadata?.httpStatusCode;
  if (name === 'AbortError' || code === 'ABORT_ERR') return 'aborted';
  if (name === 'ConditionalCheckFailedException') return 'conditional';
  if (name === 'GoneException' || status === 410) return 'gone';
  if (name === 'ResourceNotFoundException' || name === 'ExpiredIteratorException') return 'not-found';
  if (THROTTLING.has(name) || status === 429) return 'throttling';
  if (TRANSIENT.has(name) || TRANSIENT.has(code) || (status !== undefined && status >= 500))
    return 'transient';
  if (VALIDATION.has(name) || (status !== undefined && status >= 400 && status < 500)) return 'validation';
  if (err instanceof StreamsError) return err.retryable ? 'transient' : 'fatal';
  return 'fatal';
}

/** A one-line description of any thrown value. */
export function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
