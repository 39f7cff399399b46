import { sqsErrors } from '../errors.js';
import type { OperationInput } from './context.js';

const ENTRY_ID = /^[A-Za-z0-9_-]{1,80}$/;

/** The entries of a batch request, checked as SQS checks them before any entry is processed. */
export function batchEntries(input: OperationInput): OperationInput[] {
  const entries = input.Entries;
  if (entries === undefined || entries === null) throw sqsErrors.missingParameter('Entries');
  if (!Array.isArray(entries))
    throw sqsErrors.invalidParameterValue('Value for parameter Entries is invalid. Reason: must be a list.');
  if (entries.length === 0) throw sqsErrors.emptyBatchRequest();
  if (entries.length > 10) throw sqsErrors.tooManyEntriesInBatchRequest(entries.length);
  const seen = new Set<string>();
  for (const entry of entries as OperationInput[]) {
    const id = entry?.Id;
    if (typeof id !== 'string' || !ENTRY_ID.test(id)) throw sqsErrors.invalidBatchEntryId(String(id));
    if (seen.has(id)) throw sqsErrors.batchEntryIdsNotDistinct(id);
    seen.add(id);
  }
  return entries as OperationInput[];
}
