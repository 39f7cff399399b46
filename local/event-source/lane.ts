import { randomUUID } from 'node:crypto';
import type { KinesisStreamEvent } from 'aws-lambda';
import type { MappingFailureLetter } from '../../shared/contracts/dead-letter.js';
import { describe } from '../../shared/errors.js';
import { backoffDelayMs } from '../../shared/retry.js';
import type { EventSourceMappingStats, ResolvedOptions } from './options.js';
import { type InvocationOutcome, interpretResponse } from './outcome.js';
import { MAX_BATCH_BYTES, type PolledRecord, toDeadRecord } from './records.js';
import { pause, Signal, StoppedError } from './wait.js';

/** What lanes and shard readers of one mapping share. */
export interface MappingContext {
  readonly options: ResolvedOptions;
  readonly stats: EventSourceMappingStats;
  readonly stopping: AbortSignal;
  /** Aborted by a stop that does not wait for in-flight invocations (their records stay unprocessed). */
  readonly abandoning: AbortSignal;
  /** Notified on any progress (records read or done); `idle()` waits on it. */
  readonly changed: Signal;
  readonly functionArn: string;
  readonly streamArn: string;
}

/** A function error raised by crash injection: the function "died" after part of the batch. */
export class InjectedCrashError extends Error {
  constructor(delivered: number, of: number) {
    super(`injected crash: the function died after seeing ${delivered} of ${of} records`);
    this.name = 'InjectedCrashError';
  }
}

/** Records of one batch still to be processed, with the retry history they carry. */
interface WorkItem {
  records: PolledRecord[];
  /** Retries used; bisecting does not use any, as in AWS. */
  retries: number;
  /** Invocations these records were part of. */
  invokes: number;
  /** When the first invocation of their current run of failures failed (halves inherit it). */
  failingSince: number | undefined;
  last: InvocationOutcome | undefined;
}

type FailureCondition = MappingFailureLetter['requestContext']['condition'];

/**
 * One lane of a shard: the records of the partition keys routed to it, processed one batch at a
 * time in shard order. A batch is finished (processed, or handed to the on-failure destination)
 * before the lane takes the next one, which is what keeps order per partition key.
 */
export class Lane {
  private queue: Array<{ record: PolledRecord; queuedAt: number }> = [];
  private queuedBytes = 0;
  private readonly arrived = new Signal();

  constructor(
    private readonly context: MappingContext,
    private readonly shardId: string,
    /** Called after records are marked done, so the shard can move its checkpoint. */
    private readonly onDone: () => void,
  ) {}

  /** Queues records read from the shard, in shard order, and wakes the lane. */
  push(records: readonly PolledRecord[]): void {
    const now = Date.now();
    for (const record of records) {
      this.queue.push({ record, queuedAt: now });
      this.queuedBytes += record.bytes;
    }
    if (records.length > 0) this.arrived.notify();
  }

  private full(): boolean {
    return this.queue.length >= this.context.options.batchSize || this.queuedBytes >= MAX_BATCH_BYTES;
  }

  private take(): PolledRecord[] {
    const { batchSize } = this.context.options;
    let bytes = 0;
    let count = 0;
    while (count < this.queue.length && count < batchSize) {
      const next = this.queue[count]!.record.bytes;
      if (count > 0 && bytes + next > MAX_BATCH_BYTES) break;
      bytes += next;
      count++;
    }
    this.queuedBytes -= bytes;
    return this.queue.splice(0, count).map((entry) => entry.record);
  }

  /** Takes and processes batches until the mapping stops. */
  async run(): Promise<void> {
    const { stopping, options } = this.context;
    while (!stopping.aborted) {
      if (this.queue.length === 0) {
        await pause(60_000, stopping, this.arrived);
        continue;
      }
      const windowMs = options.maximumBatchingWindowMs;
      if (windowMs > 0 && !this.full()) {
        const deadline = this.queue[0]!.queuedAt + windowMs;
        if (Date.now() < deadline) {
          await pause(deadline - Date.now(), stopping, this.arrived);
          continue;
        }
      }
      try {
        await this.process(this.take());
      } catch (err) {
        if (err instanceof StoppedError) return;
        throw err;
      }
    }
  }

  private markDone(records: readonly PolledRecord[]): void {
    for (const record of records) record.done = true;
    this.onDone();
  }

  /** Runs one batch to its end: success, or the on-failure destination for what cannot succeed. */
  private async process(batch: PolledRecord[]): Promise<void> {
    const { options, stats, stopping } = this.context;
    const stack: WorkItem[] = [
      { records: batch, retries: 0, invokes: 0, failingSince: undefined, last: undefined },
    ];
    while (stack.length > 0) {
      const item = stack[stack.length - 1]!;
      if (stopping.aborted) throw new StoppedError();
      if (options.maximumRecordAgeSeconds >= 0) {
        const oldest = Date.now() - options.maximumRecordAgeSeconds * 1000;
        // Records arrive in order within a shard, so the expired ones are a prefix.
        const expired = item.records.findIndex((r) => r.arrivalMs >= oldest);
        const count = expired === -1 ? item.records.length : expired;
        if (count > 0) {
          await this.giveUp(item, item.records.slice(0, count), 'RecordAgeExceeded');
          item.records = item.records.slice(count);
        }
      }
      if (item.records.length === 0) {
        stack.pop();
        continue;
      }
      if (item.invokes > 0) stats.retries++;
      const outcome = await this.invokeUnlessAbandoned(item.records);
      item.invokes++;
      item.last = outcome;
      if (outcome.kind !== 'success') item.failingSince ??= Date.now();
      if (outcome.kind === 'success') {
        this.markDone(item.records);
        stack.pop();
        continue;
      }
      if (outcome.kind === 'partial') {
        stats.partialFailures++;
        this.markDone(item.records.slice(0, outcome.firstFailedIndex));
        item.records = item.records.slice(outcome.firstFailedIndex);
      } else if (options.bisectBatchOnFunctionError && item.records.length > 1) {
        stats.bisections++;
        const middle = Math.ceil(item.records.length / 2);
        stack.pop();
        const half = (records: PolledRecord[]): WorkItem => ({
          records,
          retries: item.retries,
          invokes: item.invokes,
          failingSince: item.failingSince,
          last: outcome,
        });
        // The stack runs the last pushed first: the first half, then the second, in order.
        stack.push(half(item.records.slice(middle)), half(item.records.slice(0, middle)));
        continue;
      }
      options.onRetry?.({
        shardId: this.shardId,
        retriesUsed: item.retries,
        failingSince: item.failingSince ?? Date.now(),
      });
      if (options.maximumRetryAttempts >= 0 && item.retries >= options.maximumRetryAttempts) {
        await this.giveUp(item, item.records, 'RetryAttemptsExhausted');
        stack.pop();
        continue;
      }
      item.retries++;
      await pause(backoffDelayMs(item.retries, { ...options.retryBackoff, maxAttempts: 0 }), stopping);
    }
  }

  /**
   * An invocation, or a `StoppedError` as soon as the mapping is stopped without waiting: like
   * a crash, the batch is neither checkpointed nor retried here, so a restart delivers it again.
   * The abandoned invocation's outcome is ignored.
   */
  private invokeUnlessAbandoned(records: readonly PolledRecord[]): Promise<InvocationOutcome> {
    const { abandoning } = this.context;
    if (abandoning.aborted) return Promise.reject(new StoppedError());
    return new Promise((resolve, reject) => {
      const onAbandon = () => reject(new StoppedError());
      abandoning.addEventListener('abort', onAbandon, { once: true });
      this.invoke(records)
        .finally(() => abandoning.removeEventListener('abort', onAbandon))
        .then(resolve, reject);
    });
  }

  private async invoke(records: readonly PolledRecord[]): Promise<InvocationOutcome> {
    const { options, stats } = this.context;
    stats.invocations++;
    stats.records += records.length;
    // Each delivery gets its own copies, as each Lambda invocation parses its own JSON.
    const event = (subset: readonly PolledRecord[]): KinesisStreamEvent => ({
      Records: subset.map((r) => ({ ...r.lambda, kinesis: { ...r.lambda.kinesis } })),
    });
    const crash = options.crash;
    if (crash && crash.probability > 0 && crash.random() < crash.probability) {
      stats.crashes++;
      stats.functionErrors++;
      const delivered = Math.min(records.length - 1, Math.floor(crash.random() * records.length));
      if (delivered > 0) {
        try {
          await options.handler(event(records.slice(0, delivered)));
        } catch {
          // The "dead" function's own outcome does not matter: the invocation failed.
        }
      }
      return { kind: 'error', error: new InjectedCrashError(delivered, records.length) };
    }
    let outcome: InvocationOutcome;
    try {
      outcome = interpretResponse(
        await options.handler(event(records)),
        records,
        options.reportBatchItemFailures,
      );
    } catch (err) {
      outcome = { kind: 'error', error: err };
    }
    if (outcome.kind === 'error') {
      stats.functionErrors++;
      options.onError(
        new Error(
          `function ${options.functionName} failed on ${records.length} record(s) of ${this.shardId}: ${describe(outcome.error)}`,
          {
            cause: outcome.error,
          },
        ),
      );
    }
    return outcome;
  }

  /** Hands records to the on-failure destination (retrying it until it takes them), then marks them done. */
  private async giveUp(
    item: WorkItem,
    records: readonly PolledRecord[],
    condition: FailureCondition,
  ): Promise<void> {
    const { options, stats, stopping } = this.context;
    const letter = this.letter(item, records, condition);
    if (!options.onFailure) {
      options.onError(
        new Error(
          `discarded ${records.length} record(s) of ${this.shardId} (${condition}) with no on-failure destination: ${letter.KinesisBatchInfo.startSequenceNumber}..${letter.KinesisBatchInfo.endSequenceNumber}`,
        ),
      );
    } else {
      for (let attempt = 1; ; attempt++) {
        try {
          await options.onFailure(letter);
          break;
        } catch (err) {
          options.onError(
            new Error(`on-failure destination refused a letter: ${describe(err)}`, { cause: err }),
          );
          if (stopping.aborted) throw new StoppedError();
          await pause(backoffDelayMs(attempt, { ...options.retryBackoff, maxAttempts: 0 }), stopping);
          if (stopping.aborted) throw new StoppedError();
        }
      }
    }
    stats.deadLettered += records.length;
    this.markDone(records);
  }

  private letter(
    item: WorkItem,
    records: readonly PolledRecord[],
    condition: FailureCondition,
  ): MappingFailureLetter {
    const first = records[0]!;
    const last = records[records.length - 1]!;
    const functionError = item.last?.kind === 'error' ? 'Unhandled' : undefined;
    return {
      requestContext: {
        requestId: randomUUID(),
        functionArn: this.context.functionArn,
        condition,
        approximateInvokeCount: item.invokes,
      },
      responseContext: {
        statusCode: 200,
        executedVersion: '$LATEST',
        ...(functionError ? { functionError } : {}),
      },
      version: '1.0',
      timestamp: new Date().toISOString(),
      KinesisBatchInfo: {
        shardId: this.shardId,
        startSequenceNumber: first.sequenceNumber,
        endSequenceNumber: last.sequenceNumber,
        approximateArrivalOfFirstRecord: new Date(first.arrivalMs).toISOString(),
        approximateArrivalOfLastRecord: new Date(last.arrivalMs).toISOString(),
        batchSize: records.length,
        streamArn: this.context.streamArn,
      },
      records: records.map((r) => toDeadRecord(r, this.shardId)),
    };
  }
}
