import {
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type GetShardIteratorCommandInput,
} from '@aws-sdk/client-kinesis';
import { classifyAwsError, describe } from '../../shared/errors.js';
import { type BackoffOptions, backoffDelayMs } from '../../shared/retry.js';
import type { CheckpointStore } from './checkpoints.js';
import { Lane, type MappingContext } from './lane.js';
import { ShardProgress } from './progress.js';
import { laneOf, type PolledRecord, type RecordSource, toPolledRecord } from './records.js';
import { pause, Signal } from './wait.js';

/** Backoff for failed reads (throttling, a flaky endpoint): full jitter, capped at 2 s. */
const READ_BACKOFF: BackoffOptions = { maxAttempts: 0, baseDelayMs: 50, maxDelayMs: 2_000 };
/** GetRecords returns at most this many records per call. */
const GET_RECORDS_LIMIT = 10_000;

/** What a shard reader needs beyond what its lanes need. */
export interface ShardContext extends MappingContext {
  readonly checkpoints: CheckpointStore;
  readonly region: string;
  readonly invokeIdentityArn: string;
  /** The `idle()` generation a read belongs to. */
  epoch(): number;
}

/**
 * Reads one shard in order and feeds its lanes. Reading runs ahead of processing up to a bound;
 * the checkpoint follows the records that are done. A closed shard read to its end, with every
 * record done, is `finished`, which lets its child shards start.
 */
export class ShardWorker {
  finished = false;
  private readonly lanes: Lane[];
  private readonly progress: ShardProgress;
  private readonly source: RecordSource;
  /** Woken to read at once (by `idle()`). */
  private readonly wake = new Signal();
  /** Woken when records are done: room to read more, or a closed shard may now be finished. */
  private readonly space = new Signal();
  private caughtUpEpoch = -1;
  private lastRead: string | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly context: ShardContext,
    readonly shardId: string,
    private readonly initial: 'TRIM_HORIZON' | 'LATEST',
  ) {
    const { options } = context;
    this.progress = new ShardProgress(context.checkpoints.get(shardId)?.sequenceNumber);
    this.source = {
      shardId,
      streamArn: context.streamArn,
      region: context.region,
      invokeIdentityArn: context.invokeIdentityArn,
    };
    this.lanes = Array.from(
      { length: options.parallelizationFactor },
      () => new Lane(context, shardId, () => this.recordsDone()),
    );
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Resolves when the worker has stopped (after the mapping's stop signal). */
  done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  wakeUp(): void {
    this.wake.notify();
  }

  /** Read to the end by a read begun in generation `epoch` or later, and nothing left to do. */
  isIdle(epoch: number): boolean {
    return this.finished || (this.caughtUpEpoch >= epoch && this.progress.pending === 0);
  }

  describeState(): string {
    return `${this.shardId}: ${this.progress.pending} pending, checkpoint ${this.progress.checkpoint ?? 'none'}${this.finished ? ', finished' : ''}`;
  }

  private recordsDone(): void {
    if (this.progress.advance())
      this.context.checkpoints.update(this.shardId, { sequenceNumber: this.progress.checkpoint });
    this.space.notify();
    this.context.changed.notify();
  }

  private highWater(): number {
    const { batchSize, parallelizationFactor } = this.context.options;
    return Math.max(batchSize * parallelizationFactor * 2, GET_RECORDS_LIMIT);
  }

  private async run(): Promise<void> {
    const { stopping, options } = this.context;
    const laneRuns = this.lanes.map((lane) =>
      lane
        .run()
        .catch((err: unknown) =>
          options.onError(new Error(`lane of ${this.shardId} failed: ${describe(err)}`, { cause: err })),
        ),
    );
    let iterator = await this.iterator();
    let failures = 0;
    while (!stopping.aborted && iterator !== undefined) {
      const room = this.highWater() - this.progress.pending;
      if (room <= 0) {
        await pause(1_000, stopping, this.space);
        continue;
      }
      const epoch = this.context.epoch();
      let page: GetRecordsCommandOutput;
      try {
        page = await options.kinesis.send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: Math.min(GET_RECORDS_LIMIT, room) }),
          { abortSignal: stopping },
        );
        failures = 0;
      } catch (err) {
        if (stopping.aborted) break;
        this.context.stats.readErrors++;
        if ((err as { name?: unknown }).name === 'ExpiredIteratorException') {
          // Resume after the last record read; records already buffered stay where they are.
          iterator = await this.iterator();
          continue;
        }
        if (classifyAwsError(err) !== 'throttling')
          options.onError(
            new Error(`GetRecords on ${this.shardId} failed: ${describe(err)}`, { cause: err }),
          );
        await pause(backoffDelayMs(++failures, READ_BACKOFF), stopping);
        continue;
      }
      const records = (page.Records ?? []).map((r) => toPolledRecord(r, this.source));
      if (records.length > 0) {
        this.lastRead = records[records.length - 1]!.sequenceNumber;
        this.context.stats.recordsRead += records.length;
        this.progress.add(records);
        this.distribute(records);
      }
      iterator = page.NextShardIterator;
      if (records.length === 0 && (page.MillisBehindLatest ?? 0) === 0) {
        this.caughtUpEpoch = epoch;
        this.context.changed.notify();
        if (iterator !== undefined) await pause(options.pollIntervalMs, stopping, this.wake);
      }
    }
    if (iterator === undefined && !stopping.aborted) {
      // The shard is closed and read to its end; it is finished once every record is done.
      while (!stopping.aborted && this.progress.pending > 0) await pause(60_000, stopping, this.space);
      if (!stopping.aborted) {
        this.finished = true;
        this.context.checkpoints.update(this.shardId, { finished: true });
        this.context.changed.notify();
      }
    }
    await Promise.all(laneRuns);
  }

  private distribute(records: readonly PolledRecord[]): void {
    const lanes = this.lanes.length;
    if (lanes === 1) {
      this.lanes[0]!.push(records);
      return;
    }
    const byLane: PolledRecord[][] = Array.from({ length: lanes }, () => []);
    for (const record of records) byLane[laneOf(record.partitionKey, lanes)]!.push(record);
    byLane.forEach((group, i) => {
      this.lanes[i]!.push(group);
    });
  }

  /** A shard iterator where reading should go on; undefined only when the mapping stops. */
  private async iterator(): Promise<string | undefined> {
    const { options, stopping, checkpoints } = this.context;
    const checkpoint = checkpoints.get(this.shardId);
    const after = this.lastRead ?? checkpoint?.sequenceNumber;
    const base = { StreamName: options.streamName, ShardId: this.shardId };
    let input: GetShardIteratorCommandInput;
    if (after !== undefined) {
      input = { ...base, ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: after };
    } else if (checkpoint?.startedAt !== undefined) {
      // A LATEST start that read nothing yet: resume from when it started, not from a new LATEST.
      input = { ...base, ShardIteratorType: 'AT_TIMESTAMP', Timestamp: new Date(checkpoint.startedAt) };
    } else if (this.initial === 'LATEST') {
      checkpoints.update(this.shardId, { startedAt: Date.now() });
      input = { ...base, ShardIteratorType: 'LATEST' };
    } else {
      input = { ...base, ShardIteratorType: 'TRIM_HORIZON' };
    }
    for (let failures = 1; !stopping.aborted; failures++) {
      try {
        const { ShardIterator } = await options.kinesis.send(new GetShardIteratorCommand(input), {
          abortSignal: stopping,
        });
        if (ShardIterator) return ShardIterator;
        throw new Error(`GetShardIterator returned no iterator for ${this.shardId}`);
      } catch (err) {
        if (stopping.aborted) break;
        this.context.stats.readErrors++;
        if (classifyAwsError(err) !== 'throttling')
          options.onError(
            new Error(`GetShardIterator on ${this.shardId} failed: ${describe(err)}`, { cause: err }),
          );
        await pause(backoffDelayMs(failures, READ_BACKOFF), stopping);
      }
    }
    return undefined;
  }
}
