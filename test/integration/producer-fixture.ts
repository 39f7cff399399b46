/**
 * The producer on real stand-ins over loopback: kinesalite (behind the Kinesis fault proxy), dynalite
 * and the Bedrock stand-in, with the real AWS SDK v3 clients. Each `handler()` gets a fresh chunk
 * stream and items table, so tests do not see each other's records.
 */
import { InvokeModelCommand, InvokeModelWithResponseStreamCommand } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
} from '@aws-sdk/client-kinesis';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { expect } from 'vitest';
import { type BedrockStandIn, startBedrockStandIn } from '../../local/bedrock/index.js';
import { type RunningEmulator, startDynamo, startKinesis } from '../../local/emulators.js';
import { type KinesisFaultProxy, startKinesisFaultProxy } from '../../local/kinesis-faults.js';
import { ensureStream, ensureTable } from '../../local/resources.js';
import {
  createGeneratorHandler,
  type GeneratorHandler,
  type GeneratorTuning,
} from '../../producers/generator/handler.js';
import { adapterFor, resolveModel } from '../../producers/generator/models/index.js';
import { type AwsClients, createAwsClients } from '../../shared/aws-clients.js';
import { type Config, loadConfig } from '../../shared/config.js';
import {
  ChunkRecord,
  type DeadLetter,
  type InvalidRecordLetter,
  type WorkItem,
} from '../../shared/contracts/index.js';
import type { DeadLetterSink } from '../../shared/dead-letters.js';
import { ENV } from '../../shared/env.js';
import { type ItemHead, readItemHead } from '../../shared/items.js';
import { TABLES } from '../../shared/tables.js';
import { createMetrics, type Metrics } from '../../shared/telemetry.js';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';

/** Keeps every letter it is sent; `failing` makes `send` throw instead. */
export class RecordingDeadLetters implements DeadLetterSink {
  readonly letters: DeadLetter[] = [];
  failing = false;
  async send(letter: DeadLetter): Promise<void> {
    if (this.failing) throw new Error('dead-letter store unavailable');
    this.letters.push(letter);
  }

  /** The letters about invalid records, in the order they were sent. */
  invalidRecords(): InvalidRecordLetter[] {
    return this.letters.flatMap((l) => ('kind' in l && l.kind === 'invalid-record' ? [l] : []));
  }
}

export interface ProducerUnderTest {
  readonly handler: GeneratorHandler;
  /** Another producer (its own handler and counters) on the same chunk stream and items table. */
  sibling(): ProducerUnderTest;
  readonly config: Config;
  readonly clients: AwsClients;
  readonly deadLetters: RecordingDeadLetters;
  /** The handler's EMF metrics (Powertools), for a test to watch what it adds. */
  readonly metrics: Metrics;
  /** Every chunk record on this handler's chunk stream, by item, in stream order. */
  readChunks(): Promise<Map<string, ChunkRecord[]>>;
  head(itemId: string): Promise<ItemHead | undefined>;
  /** Sets the delivery side's cancel flag on an item. */
  requestCancel(itemId: string): Promise<void>;
}

export class ProducerFixture {
  private constructor(
    readonly kinesalite: RunningEmulator,
    readonly dynalite: RunningEmulator,
    readonly bedrock: BedrockStandIn,
    /** In front of kinesalite for the producer's puts only. */
    readonly kinesisFaults: KinesisFaultProxy,
    readonly kinesis: KinesisClient,
    readonly rawDynamo: DynamoDBClient,
    readonly dynamo: DynamoDBDocumentClient,
  ) {}

  private tables = 0;

  static async start(): Promise<ProducerFixture> {
    const [kinesalite, dynalite, bedrock] = await Promise.all([
      startKinesis(),
      startDynamo(),
      // As fast as the producer reads, so tests take milliseconds per generation.
      startBedrockStandIn({ timeToFirstTokenMs: 0, tokensPerSecond: 0 }),
    ]);
    const kinesisFaults = await startKinesisFaultProxy({ target: kinesalite.endpoint });
    const kinesis = new KinesisClient({
      region: 'us-east-1',
      endpoint: kinesalite.endpoint,
      requestHandler: new NodeHttpHandler(),
    });
    const rawDynamo = new DynamoDBClient({ region: 'us-east-1', endpoint: dynalite.endpoint });
    const dynamo = DynamoDBDocumentClient.from(rawDynamo);
    return new ProducerFixture(kinesalite, dynalite, bedrock, kinesisFaults, kinesis, rawDynamo, dynamo);
  }

  /**
   * A producer with its own chunk stream and items table. `env` overrides configuration (flush,
   * buffer cap, attempts ...); `tuning` the producer's internal knobs.
   */
  async handler(
    env: Record<string, string> = {},
    tuning: Partial<GeneratorTuning> = {},
    options: { chunkShards?: number } = {},
  ): Promise<ProducerUnderTest> {
    const n = ++this.tables;
    const config = loadConfig({
      [ENV.chunkStream]: `chunks-${n}`,
      [ENV.itemsTable]: `items-${n}`,
      [ENV.coordinationTable]: `coordination-${n}`,
      [ENV.kinesisEndpoint]: this.kinesisFaults.endpoint,
      [ENV.dynamodbEndpoint]: this.dynalite.endpoint,
      [ENV.bedrockEndpoint]: this.bedrock.endpoint,
      [ENV.cancelPollIntervalMs]: '50',
      ...env,
    });
    await Promise.all([
      ensureStream(this.kinesis, config.chunkStream, options.chunkShards ?? 2),
      ensureTable(this.rawDynamo, config.tables.items, TABLES.items),
      ensureTable(this.rawDynamo, config.tables.coordination, TABLES.coordination),
    ]);
    return this.producer(config, tuning);
  }

  private producer(config: Config, tuning: Partial<GeneratorTuning>): ProducerUnderTest {
    const clients = createAwsClients(config);
    const deadLetters = new RecordingDeadLetters();
    const metrics = createMetrics('producer-test');
    const handler = createGeneratorHandler({
      config,
      clients,
      deadLetters,
      logger: new Logger({
        serviceName: 'producer-test',
        logLevel: (process.env.TEST_LOG_LEVEL ?? 'SILENT') as 'SILENT',
      }),
      metrics,
      tuning: { leaseMs: 1_500, ...tuning },
    });
    return {
      handler,
      sibling: () => this.producer(config, tuning),
      config,
      clients,
      deadLetters,
      metrics,
      readChunks: () => this.readChunks(config.chunkStream),
      head: (itemId) => readItemHead(this.dynamo, { items: config.tables.items, text: '' }, itemId),
      requestCancel: async (itemId) => {
        await this.dynamo.send(
          new UpdateCommand({
            TableName: config.tables.items,
            Key: { itemId },
            UpdateExpression: 'SET cancelRequested = :true',
            ExpressionAttributeValues: { ':true': true },
          }),
        );
      },
    };
  }

  async readChunks(streamName: string): Promise<Map<string, ChunkRecord[]>> {
    const byItem = new Map<string, ChunkRecord[]>();
    const { Shards = [] } = await this.kinesis.send(new ListShardsCommand({ StreamName: streamName }));
    for (const shard of Shards) {
      let { ShardIterator: iterator } = await this.kinesis.send(
        new GetShardIteratorCommand({
          StreamName: streamName,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      while (iterator) {
        const page = await this.kinesis.send(
          new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }),
        );
        const records = page.Records ?? [];
        for (const r of records) {
          const chunk = ChunkRecord.parse(
            JSON.parse(Buffer.from(r.Data ?? new Uint8Array()).toString('utf8')),
          );
          expect(r.PartitionKey).toBe(chunk.itemId);
          const list = byItem.get(chunk.itemId) ?? [];
          list.push(chunk);
          byItem.set(chunk.itemId, list);
        }
        if (records.length === 0) break;
        iterator = page.NextShardIterator;
      }
    }
    return byItem;
  }

  /** The model's whole answer to `item`, from InvokeModel with the same body (never faulted). */
  async expectedText(item: WorkItem, config: Config): Promise<string> {
    const model = resolveModel(item.modelId ?? config.defaultModelId);
    const body = adapterFor(model.family).requestBody(item, {
      maxTokens: item.maxTokens ?? config.producer.defaultMaxTokens,
    });
    const clients = createAwsClients(config);
    const response = await clients.bedrock.send(
      new InvokeModelCommand({
        modelId: model.requested,
        contentType: 'application/json',
        body: new TextEncoder().encode(JSON.stringify(body)),
      }),
    );
    const json = JSON.parse(Buffer.from(response.body).toString('utf8')) as {
      content?: Array<{ text: string }>;
      generation?: string;
      output?: { message: { content: Array<{ text: string }> } };
    };
    const text = json.content?.[0]?.text ?? json.generation ?? json.output?.message.content[0]?.text;
    if (text === undefined) throw new Error(`InvokeModel answered without text: ${JSON.stringify(json)}`);
    return text;
  }

  /** Opens a response stream for `item` as the producer would, and reads it to its end (or failure). */
  async streamOnce(item: WorkItem, config: Config): Promise<void> {
    const model = resolveModel(item.modelId ?? config.defaultModelId);
    const body = adapterFor(model.family).requestBody(item, {
      maxTokens: item.maxTokens ?? config.producer.defaultMaxTokens,
    });
    const response = await createAwsClients(config).bedrock.send(
      new InvokeModelWithResponseStreamCommand({
        modelId: model.requested,
        contentType: 'application/json',
        body: new TextEncoder().encode(JSON.stringify(body)),
      }),
    );
    for await (const _ of response.body ?? []) {
      // drained
    }
  }

  async stop(): Promise<void> {
    this.kinesis.destroy();
    this.rawDynamo.destroy();
    await this.kinesisFaults.stop();
    await Promise.all([this.bedrock.stop(), this.kinesalite.stop(), this.dynalite.stop()]);
  }
}

/** The records of one attempt, in stream order. */
export function attemptOf(records: readonly ChunkRecord[], attempt: number): ChunkRecord[] {
  return records.filter((r) => r.attempt === attempt);
}

/**
 * Checks one attempt's records as the contract states them: seq dense from 0, exactly one ending
 * (`end` or `error`) and it is last; returns the concatenated delta text.
 */
export function checkAttempt(records: readonly ChunkRecord[]): { text: string; ending: ChunkRecord } {
  expect(records.length).toBeGreaterThan(0);
  expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i));
  const endings = records.filter((r) => r.type !== 'delta');
  expect(endings).toHaveLength(1);
  const ending = records[records.length - 1]!;
  expect(ending.type).not.toBe('delta');
  const text = records.map((r) => (r.type === 'delta' ? r.text : '')).join('');
  return { text, ending };
}

/** Resolves once `check` holds; fails with `what` after `timeoutMs`. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
