import {
  type KinesisClient,
  PutRecordsCommand,
  type PutRecordsCommandOutput,
  type PutRecordsRequestEntry,
} from '@aws-sdk/client-kinesis';
import { defer, Subject, type Subscription } from 'rxjs';
import type { ChunkRecord } from '../../shared/contracts/chunk-record.js';
import { classifyAwsError, describe } from '../../shared/errors.js';
import { type BackoffOptions, backoffDelayMs } from '../../shared/retry.js';
import { batchWhileBusy } from '../../shared/rx/batch-while-busy.js';
import { ChunkStreamError } from './errors.js';

/** Kinesis PutRecords limits. */
export const PUT_RECORDS_MAX_RECORDS = 500;
export const PUT_RECORDS_MAX_BYTES = 5 * 1024 * 1024;

/** What one PutRecords call did, for stats and metrics. */
export interface PutCallReport {
  readonly records: number;
  /** Records the call rejected one by one (partial failure). */
  readonly failedRecords: number;
  /** The whole call failed (throttled, timed out, unavailable): every record goes again. */
  readonly callError?: unknown;
  /** Records of this call scheduled for another try. */
  readonly retried: number;
}

export interface ChunkSinkOptions {
  readonly kinesis: KinesisClient;
  readonly streamName: string;
  /** PutRecords calls in flight at once; records arriving while all are busy ride the next call. */
  readonly maxPutsInFlight: number;
  /** A put not answered within this many ms is abandoned and tried again. */
  readonly putTimeoutMs: number;
  /** Tries per record (the first included) and the backoff between them. */
  readonly retry: BackoffOptions;
  readonly onCall?: (report: PutCallReport) => void;
  /**
   * Epoch ms after which nothing is tried any more: calls are cut short at it and records still
   * unwritten are rejected, so the invocation ends before Lambda's timeout. Default: none.
   */
  readonly giveUpAt?: number;
  readonly now?: () => number;
}

/** Puts chunk records on the chunk stream. */
export interface ChunkSink {
  /**
   * Resolves once Kinesis has accepted the record; rejects with `ChunkStreamError` when it could not
   * be written within the bounded retries, or by `giveUpAt` (epoch ms, default the sink's own).
   * Callers put a generation's next record only after the previous one resolved, so a later seq
   * never becomes visible before an earlier one.
   */
  put(record: ChunkRecord, giveUpAt?: number): Promise<void>;
  /** Waits for every record put so far to settle, then stops. */
  close(): Promise<void>;
}

/**
 * One invocation's view of a sink its instance shares: its records give up at its own time, and
 * `close()` waits for its own records only, leaving the shared sink running for the others. A record
 * still in a call when that time comes is given up at once; the call itself runs on for the records
 * of other invocations it carries (the record may still be written: the consumer drops duplicates).
 */
export function invocationSink(shared: ChunkSink, giveUpAt: number, now: () => number = Date.now): ChunkSink {
  /** Each record not settled yet, with what gives it up. */
  const pending = new Map<Promise<void>, () => void>();
  let timer: NodeJS.Timeout | undefined;
  const expire = () => {
    for (const giveUp of pending.values()) giveUp();
  };
  return {
    put(record) {
      let giveUp = () => {};
      const expired = new Promise<never>((_, reject) => {
        const label = `${record.itemId}/${record.attempt}/${record.seq}`;
        giveUp = () =>
          reject(
            new ChunkStreamError(`chunk record ${label} was still in flight when the time budget ran out`),
          );
      });
      const put = Promise.race([shared.put(record, giveUpAt), expired]);
      const settled = put.then(
        () => undefined,
        () => undefined,
      );
      pending.set(settled, giveUp);
      void settled.then(() => pending.delete(settled));
      timer ??= setTimeout(expire, Math.max(0, giveUpAt - now()));
      return put;
    },
    async close() {
      await Promise.all(pending.keys());
      clearTimeout(timer);
    },
  };
}

interface Pending {
  readonly entry: PutRecordsRequestEntry;
  readonly bytes: number;
  readonly label: string;
  readonly giveUpAt: number;
  tries: number;
  resolve(): void;
  reject(err: Error): void;
}

/**
 * A chunk sink that shares PutRecords calls among all generations (≤ 500 records, ≤ 5 MiB per call),
 * batching adaptively (`batchWhileBusy`): a record leaves at once while a call slot is free, and
 * records queue and ride together while every slot is busy. A record the call rejects (partial
 * failure) or a call that fails as a whole (throttling, timeout, 5xx) is tried again after a backoff
 * with full jitter, at most `retry.maxAttempts` times; any other failure rejects at once.
 */
export function createChunkSink(options: ChunkSinkOptions): ChunkSink {
  const { kinesis, streamName, retry } = options;
  const now = options.now ?? Date.now;
  const giveUpAt = options.giveUpAt ?? Number.POSITIVE_INFINITY;
  const queue = new Subject<Pending>();
  let outstanding = 0;
  let onIdle: (() => void) | undefined;
  const timers = new Set<NodeJS.Timeout>();

  const settle = (p: Pending, err?: Error) => {
    if (err) p.reject(err);
    else p.resolve();
    outstanding--;
    if (outstanding === 0) onIdle?.();
  };

  const tryAgain = (p: Pending, reason: string): boolean => {
    const delay = backoffDelayMs(p.tries, retry);
    if (p.tries >= retry.maxAttempts || now() + delay >= p.giveUpAt) {
      const why = p.tries >= retry.maxAttempts ? `after ${p.tries} tries` : 'before the time budget ran out';
      settle(
        p,
        new ChunkStreamError(
          `chunk record ${p.label} was not accepted by stream ${streamName} ${why}: ${reason}`,
        ),
      );
      return false;
    }
    const timer = setTimeout(() => {
      timers.delete(timer);
      queue.next(p);
    }, delay);
    timers.add(timer);
    return true;
  };

  const send = async (batch: Pending[]) => {
    for (const p of batch) p.tries++;
    // The call runs until the last of its records gives up: an invocation gives up its own records
    // at its own time (\`invocationSink\`) without cutting short the others'.
    const latest = Math.max(...batch.map((p) => p.giveUpAt));
    let response: PutRecordsCommandOutput;
    try {
      response = await kinesis.send(
        new PutRecordsCommand({ StreamName: streamName, Records: batch.map((p) => p.entry) }),
        { abortSignal: AbortSignal.timeout(Math.max(1, Math.min(options.putTimeoutMs, latest - now()))) },
      );
    } catch (err) {
      const kind = classifyAwsError(err);
      // A timed-out put may still have been written: sending it again can only duplicate it, and
      // the consumer drops duplicates by (attempt, seq).
      const retryable = kind === 'throttling' || kind === 'transient' || kind === 'aborted';
      let retried = 0;
      for (const p of batch) {
        if (!retryable)
          settle(p, new ChunkStreamError(`PutRecords to ${streamName} failed: ${describe(err)}`, err));
        else if (tryAgain(p, describe(err))) retried++;
      }
      options.onCall?.({ records: batch.length, failedRecords: 0, callError: err, retried });
      return;
    }
    const results = response.Records ?? [];
    let failed = 0;
    let retried = 0;
    batch.forEach((p, i) => {
      const result = results[i];
      if (result && !result.ErrorCode) {
        settle(p);
        return;
      }
      failed++;
      const reason = result
        ? `${result.ErrorCode}: ${result.ErrorMessage ?? ''}`
        : 'no result for the record';
      if (tryAgain(p, reason)) retried++;
    });
    options.onCall?.({ records: batch.length, failedRecords: failed, retried });
  };

  const subscription: Subscription = queue
    .pipe(
      batchWhileBusy((batch: Pending[]) => defer(() => send(batch)), {
        maxCount: PUT_RECORDS_MAX_RECORDS,
        maxWeight: PUT_RECORDS_MAX_BYTES,
        weightOf: (p) => p.bytes,
        concurrency: options.maxPutsInFlight,
      }),
    )
    .subscribe();

  return {
    put(record, recordGiveUpAt) {
      const data = Buffer.from(JSON.stringify(record), 'utf8');
      return new Promise<void>((resolve, reject) => {
        outstanding++;
        queue.next({
          entry: { Data: data, PartitionKey: record.itemId },
          bytes: data.length + Buffer.byteLength(record.itemId),
          label: `${record.itemId}/${record.attempt}/${record.seq}`,
          giveUpAt: Math.min(giveUpAt, recordGiveUpAt ?? Number.POSITIVE_INFINITY),
          tries: 0,
          resolve,
          reject,
        });
      });
    },
    async close() {
      if (outstanding > 0) await new Promise<void>((resolve) => (onIdle = resolve));
      for (const timer of timers) clearTimeout(timer);
      queue.complete();
      subscription.unsubscribe();
    },
  };
}
