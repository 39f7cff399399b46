/**
 * Feeds Kinesis records to a mapped function by invoking it synchronously with the event Lambda's
 * event source mapping would build, and reads the answer as the mapping does: a function error
 * retries the batch, `batchItemFailures` retries from the lowest failed sequence number. Unlike the
 * mapping, a replay never skips anything: when its attempts run out it reports the failure.
 */
import { InvokeCommand, type InvokeCommandOutput, LambdaClient } from '@aws-sdk/client-lambda';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { KinesisStreamRecord } from 'aws-lambda';
import { z } from 'zod';
import { classifyAwsError, describe } from '../../shared/errors.js';
import { backoffDelayMs, type BackoffOptions, sleep } from '../../shared/retry.js';
import type { Target } from '../target.js';

/** A Lambda client for the target (its local Invoke stand-in when the stack file names one). */
export function lambdaClientOf(target: Target): LambdaClient {
  const endpoint = target.lambda?.endpoint;
  return new LambdaClient({
    region: target.region,
    ...(endpoint ? { endpoint } : {}),
    ...(target.credentials ? { credentials: target.credentials } : {}),
    ...(endpoint?.startsWith('http://') ? { requestHandler: new NodeHttpHandler() } : {}),
    // The SDK would retry an invocation on its own; the attempts here are the only ones.
    maxAttempts: 1,
  });
}

/** What a Kinesis-mapped function answers (ReportBatchItemFailures); null when it returns nothing. */
const BatchResponse = z
  .object({ batchItemFailures: z.array(z.object({ itemIdentifier: z.string().min(1) })).default([]) })
  .nullable();

const FunctionError = z.object({ errorType: z.string().optional(), errorMessage: z.string().optional() });

export type Fed =
  | { readonly ok: true; readonly invocations: number }
  | { readonly ok: false; readonly reason: string };

/** Attempts per batch, and the pauses between them. */
export const FEED_BACKOFF: BackoffOptions = { maxAttempts: 5, baseDelayMs: 500, maxDelayMs: 8_000 };

/** Lambda's synchronous payload limit is 6 MB; batches stay well under it. */
const MAX_BATCH_BYTES = 5 * 1024 * 1024;
const MAX_BATCH_RECORDS = 500;

/** Splits records, in order, into batches that fit one invocation. */
export function batchesOf(records: readonly KinesisStreamRecord[]): KinesisStreamRecord[][] {
  const batches: KinesisStreamRecord[][] = [];
  let batch: KinesisStreamRecord[] = [];
  let bytes = 0;
  for (const record of records) {
    const size = JSON.stringify(record).length;
    if (batch.length > 0 && (batch.length >= MAX_BATCH_RECORDS || bytes + size > MAX_BATCH_BYTES)) {
      batches.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push(record);
    bytes += size;
  }
  if (batch.length > 0) batches.push(batch);
  return batches;
}

/** Feeds every record through the function, batch after batch, in order. */
export async function feed(
  lambda: LambdaClient,
  functionName: string,
  records: readonly KinesisStreamRecord[],
  backoff: BackoffOptions = FEED_BACKOFF,
): Promise<Fed> {
  let invocations = 0;
  for (const batch of batchesOf(records)) {
    const fed = await feedBatch(lambda, functionName, batch, backoff);
    if (!fed.ok) return fed;
    invocations += fed.invocations;
  }
  return { ok: true, invocations };
}

async function feedBatch(
  lambda: LambdaClient,
  functionName: string,
  records: readonly KinesisStreamRecord[],
  backoff: BackoffOptions,
): Promise<Fed> {
  let remaining = records;
  let reason = '';
  for (let attempt = 1; attempt <= backoff.maxAttempts; attempt++) {
    if (attempt > 1) await sleep(backoffDelayMs(attempt - 1, backoff));
    const answer = await invokeOnce(lambda, functionName, remaining);
    if (answer.kind === 'done') return { ok: true, invocations: attempt };
    if (answer.kind === 'fatal') return { ok: false, reason: answer.reason };
    reason = answer.reason;
    remaining =
      answer.kind === 'partial'
        ? remaining.filter((r) => answer.from <= BigInt(r.kinesis.sequenceNumber))
        : remaining;
  }
  return { ok: false, reason: `${reason} (after ${backoff.maxAttempts} attempts)` };
}

type Answer =
  | { readonly kind: 'done' }
  | { readonly kind: 'partial'; readonly from: bigint; readonly reason: string }
  | { readonly kind: 'retry'; readonly reason: string }
  | { readonly kind: 'fatal'; readonly reason: string };

async function invokeOnce(
  lambda: LambdaClient,
  functionName: string,
  records: readonly KinesisStreamRecord[],
): Promise<Answer> {
  let result: InvokeCommandOutput;
  try {
    result = await lambda.send(
      new InvokeCommand({
        FunctionName: functionName,
        InvocationType: 'RequestResponse',
        Payload: Buffer.from(JSON.stringify({ Records: records })),
      }),
    );
  } catch (err) {
    const kind = classifyAwsError(err);
    const reason = `invoking ${functionName} failed: ${describe(err)}`;
    return kind === 'throttling' || kind === 'transient'
      ? { kind: 'retry', reason }
      : { kind: 'fatal', reason };
  }
  const payload = parseJson(Buffer.from(result.Payload ?? new Uint8Array()).toString('utf8'));
  if (result.FunctionError) {
    const error = FunctionError.safeParse(payload);
    const detail = error.success
      ? `${error.data.errorType}: ${error.data.errorMessage}`
      : JSON.stringify(payload);
    return { kind: 'retry', reason: `${functionName} failed (${result.FunctionError}): ${detail}` };
  }
  return readResponse(functionName, records, payload);
}

/** Reads a batch response as the mapping does: an unknown or malformed answer fails the whole batch. */
function readResponse(
  functionName: string,
  records: readonly KinesisStreamRecord[],
  payload: unknown,
): Answer {
  const response = BatchResponse.safeParse(payload ?? null);
  if (!response.success)
    return {
      kind: 'retry',
      reason: `${functionName} answered something that is not a batch response: ${JSON.stringify(payload)}`,
    };
  const failures = response.data?.batchItemFailures ?? [];
  if (failures.length === 0) return { kind: 'done' };
  const known = new Set(records.map((r) => r.kinesis.sequenceNumber));
  const ids = failures.map((f) => f.itemIdentifier);
  if (!ids.every((id) => known.has(id)))
    return {
      kind: 'retry',
      reason: `${functionName} reported failed records that are not in the batch: ${ids.join(', ')}`,
    };
  const from = ids.sort(bySequence)[0] ?? '0';
  return {
    kind: 'partial',
    from: BigInt(from),
    reason: `${functionName} reported ${ids.length} record(s) failed, from ${from}`,
  };
}

function bySequence(a: string, b: string): number {
  const d = BigInt(a) - BigInt(b);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

function parseJson(text: string): unknown {
  try {
    return text === '' ? null : JSON.parse(text);
  } catch {
    return text;
  }
}
