/**
 * How much of a model's account quota a fleet of producers uses, and what waiting costs, with the
 * quota shared through the coordination table (`fleet`) side by side with each instance counting
 * the quota on its own (`instance`), on the local stand-ins.
 *
 *   npm run bench:quota [-- --quick]
 *
 * Four producer instances (one handler each, as four Lambda instances) get one batch each of work
 * items with mixed token limits and priorities, all offered at once. The Bedrock stand-in enforces
 * the account quota (rolling 60 s window, reservation = input + token limit, settled to input +
 * output); the producers are configured with the same quota (`MODEL_QUOTAS`). Every figure comes from
 * the stand-in's counters, the chunk stream's records and the producers' counters.
 * Writes bench/results/quota.md.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { Logger } from '@aws-lambda-powertools/logger';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { KinesisStreamRecord } from 'aws-lambda';
import { orExitWithUsage, parseCommandLine } from '../cli/args.js';
import { startBedrockStandIn } from '../local/bedrock/index.js';
import { startDynamo, startKinesis } from '../local/emulators.js';
import { ensureStream, ensureTable } from '../local/resources.js';
import {
  createGeneratorHandler,
  type GeneratorHandler,
  type GeneratorStats,
} from '../producers/generator/handler.js';
import { createAwsClients } from '../shared/aws-clients.js';
import { loadConfig } from '../shared/config.js';
import type { Priority } from '../shared/contracts/work-item.js';
import { ENV } from '../shared/env.js';
import { TABLES } from '../shared/tables.js';
import { createMetrics } from '../shared/telemetry.js';
import { type ChunkSummary, readChunkStream } from './quota/chunks.js';
import { type ModeResult, renderQuotaReport } from './quota/report.js';
import { percentiles } from './support/stats.js';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.AWS_ACCESS_KEY_ID ??= 'local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const USAGE = `usage: npm run bench:quota -- [--quick]

  --quick   a smaller quota and offer: about 2½ minutes instead of 10
`;
const { values } = orExitWithUsage(USAGE, () =>
  parseCommandLine(process.argv.slice(2), {
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  }),
);
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const quick = values.quick;
const MODEL = 'anthropic.claude-3-5-haiku-20241022-v1:0';
/**
 * The offer must outlast one minute of quota (the stand-in's window lets a whole minute through at
 * once); the quick form offers a little more than a minute of a smaller quota, so each mode runs ~70 s.
 */
const SCENARIO = quick
  ? { items: 70, requestsPerMinute: 60, tokensPerMinute: 15_000, minTokens: 50, maxTokens: 400 }
  : { items: 520, requestsPerMinute: 120, tokensPerMinute: 40_000, minTokens: 50, maxTokens: 600 };
const INSTANCES = 4;
const PRIORITIES: readonly Priority[] = ['high', 'normal', 'normal', 'low'];
const QUOTA = { requestsPerMinute: SCENARIO.requestsPerMinute, tokensPerMinute: SCENARIO.tokensPerMinute };
/** Redeliveries of records an invocation hands back (released near its time budget), as Kinesis does. */
const MAX_DELIVERIES = 5;
const BUDGET_MS = 15 * 60_000;

interface Offered {
  readonly itemId: string;
  readonly prompt: string;
  readonly maxTokens: number;
  readonly priority: Priority;
}

const [kinesalite, dynalite] = await Promise.all([startKinesis(), startDynamo()]);
const bedrock = await startBedrockStandIn({ timeToFirstTokenMs: 200, tokensPerSecond: 200 });
const kinesis = new KinesisClient({
  region: 'us-east-1',
  endpoint: kinesalite.endpoint,
  requestHandler: new NodeHttpHandler(),
});
const dynamo = new DynamoDBClient({ region: 'us-east-1', endpoint: dynalite.endpoint });

/** A deterministic mix: token limits spread over the range, priorities one in four high and low. */
function offer(mode: string): Offered[] {
  const span = SCENARIO.maxTokens - SCENARIO.minTokens;
  return Array.from({ length: SCENARIO.items }, (_, i) => ({
    itemId: `quota-${mode}-${i}`,
    prompt: `Quota benchmark prompt number ${i}`,
    maxTokens: SCENARIO.minTokens + ((i * 37) % (span + 1)),
    priority: PRIORITIES[i % PRIORITIES.length] as Priority,
  }));
}

function toRecord(item: Offered, n: number): KinesisStreamRecord {
  const sequenceNumber = `4960${String(n).padStart(52, '0')}`;
  return {
    awsRegion: 'us-east-1',
    eventID: `shardId-000000000000:${sequenceNumber}`,
    eventName: 'aws:kinesis:record',
    eventSource: 'aws:kinesis',
    eventSourceARN: 'arn:aws:kinesis:us-east-1:000000000000:stream/work-items',
    eventVersion: '1.0',
    invokeIdentityArn: 'arn:aws:iam::000000000000:role/producer',
    kinesis: {
      approximateArrivalTimestamp: Date.now() / 1000,
      data: Buffer.from(JSON.stringify(item)).toString('base64'),
      kinesisSchemaVersion: '1.0',
      partitionKey: item.itemId,
      sequenceNumber,
    },
  };
}

/** A Lambda-like context with a fixed budget from now. */
function context(budgetMs: number) {
  const deadline = Date.now() + budgetMs;
  return { getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()) };
}

/** Runs one instance's records, handing back what it reports failed, up to `MAX_DELIVERIES` times. */
async function deliver(handler: GeneratorHandler, records: KinesisStreamRecord[]): Promise<number> {
  let pending = records;
  for (let delivery = 1; delivery <= MAX_DELIVERIES && pending.length > 0; delivery++) {
    const { batchItemFailures } = await handler({ Records: pending }, context(BUDGET_MS));
    const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier));
    pending = pending.filter((r) => failed.has(r.kinesis.sequenceNumber));
  }
  return pending.length;
}

function sumStats(all: readonly GeneratorStats[]) {
  const sum = (f: (s: GeneratorStats) => number) => all.reduce((n, s) => n + f(s), 0);
  return {
    generationsStarted: sum((s) => s.generationsStarted),
    generationsFailed: sum((s) => s.generationsFailed),
    coordinationCalls: sum((s) => s.coordinationCalls),
    requestsRefused: sum((s) => s.requestsRefused),
    waitingReleased: sum((s) => s.waitingReleased),
  };
}

async function runMode(mode: 'fleet' | 'instance'): Promise<ModeResult> {
  const config = loadConfig({
    [ENV.chunkStream]: `quota-chunks-${mode}`,
    [ENV.itemsTable]: `quota-items-${mode}`,
    [ENV.coordinationTable]: `quota-coordination-${mode}`,
    [ENV.kinesisEndpoint]: kinesalite.endpoint,
    [ENV.dynamodbEndpoint]: dynalite.endpoint,
    [ENV.bedrockEndpoint]: bedrock.endpoint,
    [ENV.defaultModelId]: MODEL,
    [ENV.modelQuotas]: JSON.stringify({ [MODEL]: QUOTA }),
  });
  await ensureStream(kinesis, config.chunkStream, 2);
  await ensureTable(dynamo, config.tables.items, TABLES.items);
  await ensureTable(dynamo, config.tables.coordination, TABLES.coordination);
  // Sets the quota afresh: every counter and the rolling window start from zero for this mode.
  bedrock.setQuotas({ [MODEL]: QUOTA });
  const handlers = Array.from({ length: INSTANCES }, () =>
    createGeneratorHandler({
      config,
      clients: createAwsClients(config),
      deadLetters: { send: async () => undefined },
      logger: new Logger({ serviceName: 'bench-quota', logLevel: 'ERROR' }),
      metrics: createMetrics('bench-quota'),
      tuning: mode === 'instance' ? { quotaScope: 'instance' } : {},
    }),
  );
  const items = offer(mode);
  const offeredAt = Date.now();
  const batches = handlers.map((_, h) =>
    items.flatMap((item, i) => (i % INSTANCES === h ? [toRecord(item, i)] : [])),
  );
  const undelivered = await Promise.all(handlers.map((handler, h) => deliver(handler, batches[h] ?? [])));
  const elapsedMs = Date.now() - offeredAt;
  const chunks = await readChunkStream(kinesis, config.chunkStream);
  return summarize(
    mode,
    items,
    offeredAt,
    elapsedMs,
    chunks,
    handlers.map((h) => h.stats()),
    undelivered,
  );
}

function summarize(
  mode: 'fleet' | 'instance',
  items: readonly Offered[],
  offeredAt: number,
  elapsedMs: number,
  chunks: ChunkSummary,
  stats: readonly GeneratorStats[],
  undelivered: readonly number[],
): ModeResult {
  const usage = bedrock.quotas().usage[MODEL] ?? {
    requests: 0,
    throttled: 0,
    inputTokens: 0,
    outputTokens: 0,
  };
  const admitted = items.flatMap((item) => {
    const first = chunks.firstEmittedAt.get(item.itemId);
    const end = chunks.usage.get(item.itemId);
    return first === undefined || end === undefined ? [] : [{ item, first, end }];
  });
  admitted.sort((a, b) => a.first - b.first);
  // The rate while work waited: over the spans between the first and the last admission, each
  // admission but the last charged to the span that follows it.
  const spanMin =
    admitted.length > 1 ? ((admitted.at(-1)?.first ?? 0) - (admitted[0]?.first ?? 0)) / 60_000 : Number.NaN;
  const charged = admitted.slice(0, -1);
  const reserved = charged.reduce((n, a) => n + a.end.inputTokens + a.item.maxTokens, 0);
  const settled = charged.reduce((n, a) => n + a.end.inputTokens + a.end.outputTokens, 0);
  const waits = (priority: Priority) =>
    percentiles(admitted.filter((a) => a.item.priority === priority).map((a) => a.first - offeredAt));
  const totals = sumStats(stats);
  return {
    mode,
    items: items.length,
    completed: chunks.completed.size,
    failed: chunks.failed.size,
    generationsFailed: totals.generationsFailed,
    undelivered: undelivered.reduce((n, u) => n + u, 0),
    elapsedMs,
    requestsPerMinute: charged.length / spanMin,
    reservedTokensPerMinute: reserved / spanMin,
    settledTokensPerMinute: settled / spanMin,
    quota: QUOTA,
    modelRequests: usage.requests,
    throttled: usage.throttled,
    standInTokens: usage.inputTokens + usage.outputTokens,
    waitMs: { high: waits('high'), normal: waits('normal'), low: waits('low') },
    coordinationCallsPerGeneration: totals.coordinationCalls / Math.max(1, totals.generationsStarted),
    generationsStarted: totals.generationsStarted,
    waitingReleased: totals.waitingReleased,
  };
}

try {
  const results: ModeResult[] = [];
  for (const mode of ['fleet', 'instance'] as const) {
    const result = await runMode(mode);
    console.log(JSON.stringify(result));
    results.push(result);
  }
  const report = renderQuotaReport(results, { quick, instances: INSTANCES, ...SCENARIO });
  await mkdir(new URL('./results/', import.meta.url), { recursive: true });
  await writeFile(new URL('./results/quota.md', import.meta.url), report);
  console.log(report);
} finally {
  kinesis.destroy();
  dynamo.destroy();
  await bedrock.stop();
  await kinesalite.stop();
  await dynalite.stop();
}
