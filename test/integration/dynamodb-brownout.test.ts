/**
 * A DynamoDB brownout longer than a retry count can outlast: the whole local stack (real
 * handlers, local mappings with the deployed settings) with every handler's DynamoDB calls going
 * through the fault proxy, which answers all of them with throttling and 5xx errors for a while
 * mid-run — generations streaming, chunk records waiting, work items arriving.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { expectedText } from '../../local/expected-text.js';
import type { EventSourceMappingOptions, EventSourceMappingStats } from '../../local/event-source/index.js';
import { LOCAL_CREDENTIALS, LOCAL_REGION, type LocalStack, startLocalStack } from '../../local/stack.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { INPUT_MAPPING } from '../../shared/mappings.js';
import { readItem } from '../../shared/items.js';
import { waitFor } from '../support/wait.js';

// Every handler logs each call the brownout fails; the assertions say what happened.
process.env.POWERTOOLS_LOG_LEVEL = 'CRITICAL';

/**
 * Batches each mapping can have in flight at once (shards × parallelization factor): the chunk
 * stream runs one shard with a factor of 1 here, so every failed consumer invocation is a retry of
 * the same batch; the input mapping keeps its deployed factor.
 */
const LANES = { input: INPUT_MAPPING.parallelizationFactor, chunks: 1 } as const;
/**
 * The brownout lasts until each mapping has had more failed invocations than the old count times
 * its lanes — so at least one batch of each failed more often in a row than the old count allowed —
 * however slow the machine; at least 5 s, at most 2 min.
 */
const BROWNOUT_BOUNDS = { minMs: 5_000, maxMs: 120_000 } as const;
/**
 * Lambda retries a failed batch at once; the local mapping's default backoff (up to 2 s) would
 * spend fewer retries in the same brownout, so it is made nearly back to back here.
 */
const BACK_TO_BACK = { retryBackoff: { baseDelayMs: 10, maxDelayMs: 100 } } as const;
/** The retry counts the mappings had before they retried until the record's maximum age. */
const OLD_BUDGET = {
  input: { maximumRetryAttempts: 3 },
  chunks: { maximumRetryAttempts: 10 },
} as const;

interface BrownoutRun {
  readonly items: readonly WorkItem[];
  /** Status and text of each item at the end, and the text the model gives for it. */
  readonly outcomes: ReadonlyArray<{ itemId: string; status?: string; exact: boolean }>;
  readonly injectedErrors: number;
  readonly failedInvocations: { readonly input: number; readonly chunks: number };
  readonly deadLettered: { readonly input: number; readonly chunks: number };
}

let stack: LocalStack | undefined;
let dir: string | undefined;
afterEach(async () => {
  await stack?.stop();
  stack = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs 16 items through a brownout: 8 submitted before it (streaming when it starts), 8 during
 * it; the brownout then ends and the run waits until every item ended or `settleMs` passed.
 */
async function runBrownout(
  mappings: {
    readonly input?: Partial<EventSourceMappingOptions>;
    readonly chunks?: Partial<EventSourceMappingOptions>;
  },
  settleMs: number,
): Promise<BrownoutRun> {
  dir = mkdtempSync(join(tmpdir(), 'brownout-'));
  stack = await startLocalStack({
    dataDir: dir,
    inMemory: true,
    dynamodbFaults: true,
    inputShards: 1,
    chunkShards: 1,
    // Slow enough that the first items are still streaming when the brownout starts.
    bedrock: { timeToFirstTokenMs: 20, tokensPerSecond: 60 },
    inputMapping: { ...BACK_TO_BACK, ...mappings.input, onError: () => {} },
    chunkMapping: {
      ...BACK_TO_BACK,
      parallelizationFactor: LANES.chunks,
      ...mappings.chunks,
      onError: () => {},
    },
  });
  const s = stack;
  // Watches the items straight on dynalite: the handlers' path is the one browning out.
  const direct = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: LOCAL_REGION,
      endpoint: s.info.dynamodb.endpoint,
      credentials: LOCAL_CREDENTIALS,
    }),
  );
  const statusOf = async (itemId: string) =>
    (
      await direct.send(
        new GetCommand({
          TableName: s.config.tables.items,
          Key: { itemId },
          ProjectionExpression: '#s',
          ExpressionAttributeNames: { '#s': 'status' },
        }),
      )
    ).Item?.status as string | undefined;
  const items: WorkItem[] = Array.from({ length: 16 }, (_, i) => ({
    itemId: `brownout-${i}`,
    prompt: `brownout item ${i}: how retries meet idempotent writes`,
    maxTokens: 90 + 7 * i,
  }));
  const submit = (batch: WorkItem[]) =>
    s.clients.kinesis.send(
      new PutRecordsCommand({
        StreamName: s.config.inputStream,
        Records: batch.map((item) => ({
          PartitionKey: item.itemId,
          Data: Buffer.from(JSON.stringify(item)),
        })),
      }),
    );

  // Prepare: the first half is streaming.
  await submit(items.slice(0, 8));
  await waitFor(async () => (await statusOf('brownout-7')) === 'streaming', {
    what: 'the first items to stream',
    timeoutMs: 20_000,
  });
  const before = { input: s.mappings.input.stats(), chunks: s.mappings.chunks.stats() };

  // Act: every DynamoDB call of every handler fails; the second half arrives meanwhile.
  s.dynamodbFaults!.setFaults({ errorRate: 1 });
  await submit(items.slice(8));
  const brownoutStarted = Date.now();
  const outlasted = () =>
    failedBetween(before.input, s.mappings.input.stats()) >
      OLD_BUDGET.input.maximumRetryAttempts * LANES.input &&
    failedBetween(before.chunks, s.mappings.chunks.stats()) >
      OLD_BUDGET.chunks.maximumRetryAttempts * LANES.chunks;
  await waitFor(() => Date.now() - brownoutStarted >= BROWNOUT_BOUNDS.minMs && outlasted(), {
    what: 'the brownout to outlast the old retry counts',
    timeoutMs: BROWNOUT_BOUNDS.maxMs,
    intervalMs: 50,
  });
  s.dynamodbFaults!.setFaults({ errorRate: 0 });
  const during = { input: s.mappings.input.stats(), chunks: s.mappings.chunks.stats() };
  const ended = async () => {
    const statuses = await Promise.all(items.map((i) => statusOf(i.itemId)));
    return statuses.every((st) => st === 'completed' || st === 'failed');
  };
  await waitFor(ended, { what: 'every item to end', timeoutMs: settleMs, intervalMs: 250 }).catch(() => {});

  // Assess (by the caller): each item's end against the model's own answer.
  const defaults = { modelId: s.config.defaultModelId, maxTokens: s.config.producer.defaultMaxTokens };
  const outcomes = await Promise.all(
    items.map(async (item) => {
      const stored = await readItem(s.clients.dynamo, s.config.tables, item.itemId);
      const expected = await expectedText(s.clients.bedrock, item, defaults);
      return { itemId: item.itemId, status: stored?.status, exact: stored?.text === expected };
    }),
  );
  direct.destroy();
  const after = { input: s.mappings.input.stats(), chunks: s.mappings.chunks.stats() };
  return {
    items,
    outcomes,
    injectedErrors: s.dynamodbFaults!.stats().failed,
    failedInvocations: {
      input: failedBetween(before.input, during.input),
      chunks: failedBetween(before.chunks, during.chunks),
    },
    deadLettered: { input: after.input.deadLettered, chunks: after.chunks.deadLettered },
  };
}

/** Invocations that failed whole or in part (records redelivered) between two readings. */
const failedBetween = (from: EventSourceMappingStats, to: EventSourceMappingStats) =>
  to.functionErrors + to.partialFailures - (from.functionErrors + from.partialFailures);

describe('a DynamoDB brownout', () => {
  it('longer than the old retry budget loses nothing: every item completes with exactly the model’s text', async () => {
    // Act: the mappings as deployed (shared/mappings.ts): retried until the record's maximum age.
    const run = await runBrownout({}, 90_000);

    // Assess: the brownout was real and outlasted the old counts, on both mappings.
    expect(run.injectedErrors).toBeGreaterThan(100);
    // More failed invocations than the old count times the batches in flight at once: at least
    // one batch of each mapping failed more often in a row than the old count allowed.
    expect(run.failedInvocations.input).toBeGreaterThan(OLD_BUDGET.input.maximumRetryAttempts * LANES.input);
    expect(run.failedInvocations.chunks).toBeGreaterThan(
      OLD_BUDGET.chunks.maximumRetryAttempts * LANES.chunks,
    );
    // Nothing given up on, nothing stuck, nothing duplicated or cut.
    expect(run.deadLettered).toEqual({ input: 0, chunks: 0 });
    expect(run.outcomes).toEqual(
      run.items.map((i) => ({ itemId: i.itemId, status: 'completed', exact: true })),
    );
  }, 300_000);

  it('with the old retry counts (3 and 10) the same brownout skips batches and leaves items unfinished', async () => {
    // The same run with the counts retries were bounded by before: this is what the test above
    // guards against, and it shows the brownout really is longer than that budget.
    const run = await runBrownout({ input: OLD_BUDGET.input, chunks: OLD_BUDGET.chunks }, 15_000);

    expect(run.deadLettered.input + run.deadLettered.chunks).toBeGreaterThan(0);
    expect(run.outcomes.filter((o) => o.status !== 'completed' || !o.exact).length).toBeGreaterThan(0);
  }, 300_000);
});
