import type { PolledRecord } from './records.js';

/** How an invocation ended, as Lambda reads it. */
export type InvocationOutcome =
  | { readonly kind: 'success' }
  /** Records from `firstFailedIndex` on are retried; those before it are done. */
  | { readonly kind: 'partial'; readonly firstFailedIndex: number; readonly failedCount: number }
  | { readonly kind: 'error'; readonly error: unknown };

/** A batch response Lambda would not accept: the whole batch counts as failed. */
export class InvalidBatchResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidBatchResponseError';
  }
}

/**
 * Reads a function's response. Without `ReportBatchItemFailures` any response is success. With it,
 * no response or an empty `batchItemFailures` is success; each `itemIdentifier` must be a sequence
 * number of the batch, and an empty, missing or unknown one fails the whole batch, as in AWS.
 */
export function interpretResponse(
  response: unknown,
  batch: readonly PolledRecord[],
  reportBatchItemFailures: boolean,
): InvocationOutcome {
  if (!reportBatchItemFailures || response === undefined || response === null) return { kind: 'success' };
  if (typeof response !== 'object' || Array.isArray(response))
    return invalid(`the response must be an object with batchItemFailures, got ${JSON.stringify(response)}`);
  const failures = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (failures === undefined || failures === null) return { kind: 'success' };
  if (!Array.isArray(failures))
    return invalid(`batchItemFailures must be an array, got ${JSON.stringify(failures)}`);
  if (failures.length === 0) return { kind: 'success' };
  const indexOf = new Map(batch.map((record, index) => [record.sequenceNumber, index]));
  let first = Number.POSITIVE_INFINITY;
  for (const [i, failure] of failures.entries()) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    const index = typeof id === 'string' && id !== '' ? indexOf.get(id) : undefined;
    if (index === undefined)
      return invalid(
        `batchItemFailures[${i}].itemIdentifier must be the sequence number of a record in the batch, got ${JSON.stringify(id)}`,
      );
    first = Math.min(first, index);
  }
  return { kind: 'partial', firstFailedIndex: first, failedCount: failures.length };
}

function invalid(message: string): InvocationOutcome {
  return { kind: 'error', error: new InvalidBatchResponseError(message) };
}
