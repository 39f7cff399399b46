import { setMaxListeners } from 'node:events';
import { DescribeStreamSummaryCommand, ListShardsCommand, type Shard } from '@aws-sdk/client-kinesis';
import { classifyAwsError, describe } from '../../shared/errors.js';
import { type BackoffOptions, backoffDelayMs } from '../../shared/retry.js';
import { CheckpointStore } from './checkpoints.js';
import {
  type EventSourceMapping,
  type EventSourceMappingOptions,
  type EventSourceMappingStats,
  type ResolvedOptions,
  resolveOptions,
} from './options.js';
import { type ShardContext, ShardWorker } from './shard.js';
import { pause, Signal } from './wait.js';

const SETUP_BACKOFF: BackoffOptions = { maxAttempts: 0, baseDelayMs: 100, maxDelayMs: 2_000 };

interface StreamIdentity {
  streamArn: string;
  createdAt: number | undefined;
  region: string;
  account: string;
}

async function describeStream(options: ResolvedOptions): Promise<StreamIdentity> {
  const { StreamDescriptionSummary: summary } = await options.kinesis.send(
    new DescribeStreamSummaryCommand({ StreamName: options.streamName }),
  );
  const streamArn = summary?.StreamARN;
  if (!streamArn) throw new Error(`DescribeStreamSummary of ${options.streamName} returned no StreamARN`);
  const [, , , region, account] = streamArn.split(':');
  return {
    streamArn,
    createdAt: summary?.StreamCreationTimestamp?.getTime(),
    region: region || (await options.kinesis.config.region()),
    account: account || '000000000000',
  };
}

async function listShards(options: ResolvedOptions): Promise<Shard[]> {
  const shards: Shard[] = [];
  let nextToken: string | undefined;
  do {
    const page = await options.kinesis.send(
      new ListShardsCommand(nextToken ? { NextToken: nextToken } : { StreamName: options.streamName }),
    );
    shards.push(...(page.Shards ?? []));
    nextToken = page.NextToken;
  } while (nextToken);
  return shards;
}

/**
 * Starts a local Lambda event source mapping for a Kinesis stream: it polls every shard in order
 * and invokes `handler` with `KinesisStreamEvent` batches, with Lambda's batching, retry, bisect,
 * partial-batch-response, on-failure and parallelization semantics, and checkpoints persisted so a
 * restart resumes where it stopped. Options are checked at once; a bad one throws here.
 */
export function startEventSourceMapping(options: EventSourceMappingOptions): EventSourceMapping {
  const resolved = resolveOptions(options);
  const checkpoints = new CheckpointStore(
    resolved.checkpointFile,
    resolved.streamName,
    resolved.functionName,
    resolved.onError,
  );
  const stats: EventSourceMappingStats = {
    recordsRead: 0,
    invocations: 0,
    records: 0,
    functionErrors: 0,
    retries: 0,
    deadLettered: 0,
    crashes: 0,
    partialFailures: 0,
    bisections: 0,
    readErrors: 0,
  };
  const stopping = new AbortController();
  const abandoning = new AbortController();
  // Every lane, reader and in-flight request listens for the stop: more than Node's default 10.
  setMaxListeners(0, stopping.signal, abandoning.signal);
  const changed = new Signal();
  const discoveryWake = new Signal();
  const workers = new Map<string, ShardWorker>();
  let epoch = 0;
  let discoveredEpoch = -1;
  let firstDiscovery = true;
  let listing: Shard[] = [];
  let context: ShardContext | undefined;

  const isFinished = (shardId: string) =>
    workers.get(shardId)?.finished === true || checkpoints.get(shardId)?.finished === true;

  /** Starts workers for listed shards that may start: parents finished, or no known parent. */
  const reconcile = (ctx: ShardContext) => {
    const listed = new Set(listing.map((s) => s.ShardId));
    for (const shard of listing) {
      const id = shard.ShardId;
      if (!id || workers.has(id) || isFinished(id)) continue;
      const hasCheckpoint = checkpoints.get(id) !== undefined;
      if (!hasCheckpoint && firstDiscovery && resolved.startingPosition === 'LATEST') {
        // Nothing of a closed shard is after LATEST; open shards start at their tip.
        if (shard.SequenceNumberRange?.EndingSequenceNumber) checkpoints.update(id, { finished: true });
        else startWorker(ctx, id, 'LATEST');
        continue;
      }
      // A child shard waits until its parents are read to their end, as Lambda does.
      const parents = [shard.ParentShardId, shard.AdjacentParentShardId].filter(
        (p): p is string => p !== undefined && listed.has(p),
      );
      if (parents.some((p) => !isFinished(p))) continue;
      startWorker(ctx, id, 'TRIM_HORIZON');
    }
  };

  const startWorker = (ctx: ShardContext, shardId: string, initial: 'TRIM_HORIZON' | 'LATEST') => {
    const worker = new ShardWorker(ctx, shardId, initial);
    workers.set(shardId, worker);
    worker.start();
  };

  const onChange = () => {
    if (context && !firstDiscovery && [...workers.values()].some((w) => w.finished)) reconcile(context);
  };

  async function setUp(): Promise<ShardContext | undefined> {
    for (let failures = 1; !stopping.signal.aborted; failures++) {
      try {
        const stream = await describeStream(resolved);
        checkpoints.bindStream(stream.streamArn, stream.createdAt);
        return {
          options: resolved,
          stats,
          stopping: stopping.signal,
          abandoning: abandoning.signal,
          changed,
          functionArn: `arn:aws:lambda:${stream.region}:${stream.account}:function:${resolved.functionName}`,
          streamArn: stream.streamArn,
          checkpoints,
          region: stream.region,
          invokeIdentityArn: `arn:aws:iam::${stream.account}:role/${resolved.functionName}-role`,
          epoch: () => epoch,
        };
      } catch (err) {
        if (stopping.signal.aborted) break;
        stats.readErrors++;
        resolved.onError(
          new Error(`cannot describe stream ${resolved.streamName}: ${describe(err)}`, { cause: err }),
        );
        await pause(backoffDelayMs(failures, SETUP_BACKOFF), stopping.signal);
      }
    }
    return undefined;
  }

  const running = (async () => {
    context = await setUp();
    if (!context) return;
    for (let failures = 0; !stopping.signal.aborted; ) {
      const started = epoch;
      try {
        listing = await listShards(resolved);
        reconcile(context);
        firstDiscovery = false;
        discoveredEpoch = started;
        failures = 0;
        changed.notify();
      } catch (err) {
        if (stopping.signal.aborted) break;
        stats.readErrors++;
        if (classifyAwsError(err) !== 'throttling')
          resolved.onError(
            new Error(`ListShards on ${resolved.streamName} failed: ${describe(err)}`, { cause: err }),
          );
        await pause(backoffDelayMs(++failures, SETUP_BACKOFF), stopping.signal);
        continue;
      }
      await pause(resolved.shardDiscoveryIntervalMs, stopping.signal, discoveryWake);
    }
  })().catch((err: unknown) => resolved.onError(err));

  // Children of a shard that just finished start at once rather than at the next discovery.
  void (async () => {
    while (!stopping.signal.aborted) {
      await pause(60_000, stopping.signal, changed);
      onChange();
    }
  })();

  const isIdle = (target: number) =>
    discoveredEpoch >= target && [...workers.values()].every((worker) => worker.isIdle(target));

  let stopped: Promise<void> | undefined;
  return {
    stats: () => ({ ...stats }),

    async idle({ timeoutMs }: { timeoutMs?: number } = {}) {
      const target = ++epoch;
      discoveryWake.notify();
      for (const worker of workers.values()) worker.wakeUp();
      const deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
      while (!isIdle(target)) {
        if (stopping.signal.aborted) throw new Error('event source mapping stopped before it became idle');
        const remaining = deadline - Date.now();
        if (remaining <= 0) {
          const state = [...workers.values()].map((w) => w.describeState()).join('; ') || 'no shards started';
          throw new Error(
            `event source mapping ${resolved.functionName} not idle within ${timeoutMs} ms (${state})`,
          );
        }
        // New shards found after the call must be read too: wake each as it appears.
        for (const worker of workers.values()) if (!worker.isIdle(target)) worker.wakeUp();
        await pause(Math.min(remaining, 250), stopping.signal, changed);
      }
    },

    stop({ abandonInFlight = false } = {}) {
      // A later stop may still abandon what an earlier, waiting stop is waiting for.
      if (abandonInFlight) abandoning.abort();
      stopped ??= (async () => {
        stopping.abort();
        changed.notify();
        await running;
        await Promise.all([...workers.values()].map((worker) => worker.done()));
        await checkpoints.flush();
      })();
      return stopped;
    },
  };
}
