/**
 * Following one item through the logs: the real Lambda entry points (producer, consumer with its
 * fan-out, WebSocket routes) run on the emulators with Lambda contexts, and every JSON line they
 * write is captured. One filter by `itemId` or by `traceparent` must find the item's lines from the
 * producer, the consumer and the delivery, each with its invocation's request id and cold-start flag.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BedrockStandIn, startBedrockStandIn } from '../../local/bedrock/index.js';
import { type RunningEmulator, startDynamo, startKinesis } from '../../local/emulators.js';
import { toPolledRecord } from '../../local/event-source/records.js';
import { ensureStream, ensureTable } from '../../local/resources.js';
import { startWebSocketGateway, type WebSocketGateway } from '../../local/websocket-gateway.js';
import { issueToken } from '../../shared/auth.js';
import { ChunkRecord } from '../../shared/contracts/chunk-record.js';
import { ENV } from '../../shared/env.js';
import { TABLES } from '../../shared/tables.js';
import { invocationContext } from '../factories/lambda-context.js';
import { Viewer, waitUntil } from './websocket-helpers.js';

// Loggers read their level when the handler modules load (below, after these lines), and take a
// cold start for one only where Lambda says the environment started on demand.
process.env.POWERTOOLS_LOG_LEVEL = 'DEBUG';
process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';

const SECRET = 'follow-item-test-secret-of-at-least-32-chars';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
type Line = Record<string, unknown>;

/** Every JSON line written to stdout or stderr while capturing. */
class LogCapture {
  readonly lines: Line[] = [];
  private readonly restore: Array<() => void> = [];

  start(): void {
    for (const stream of [process.stdout, process.stderr]) {
      const write = stream.write.bind(stream);
      // Log lines are kept here, not printed; anything else passes through.
      stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
        const text = String(chunk).trim();
        if (!text.startsWith('{')) return write(chunk, ...rest);
        try {
          this.lines.push(JSON.parse(text) as Line);
          return true;
        } catch {
          return write(chunk, ...rest);
        }
      }) as typeof stream.write;
      this.restore.push(() => {
        stream.write = write;
      });
    }
  }

  stop(): void {
    for (const restore of this.restore.splice(0)) restore();
  }

  /** Lines with `key` equal to `value`. */
  where(key: string, value: unknown): Line[] {
    return this.lines.filter((line) => line[key] === value);
  }
}

/** Reads every record of a stream from the start, in the shape Lambda delivers them. */
async function readStream(kinesis: KinesisClient, streamName: string): Promise<KinesisStreamRecord[]> {
  const out: KinesisStreamRecord[] = [];
  const { Shards = [] } = await kinesis.send(new ListShardsCommand({ StreamName: streamName }));
  for (const shard of Shards) {
    const shardId = shard.ShardId ?? '';
    let { ShardIterator: iterator } = await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: streamName,
        ShardId: shardId,
        ShardIteratorType: 'TRIM_HORIZON',
      }),
    );
    while (iterator) {
      const page = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator }));
      const records = page.Records ?? [];
      for (const record of records)
        out.push(
          toPolledRecord(record, {
            shardId,
            streamArn: `arn:aws:kinesis:us-east-1:000000000000:stream/${streamName}`,
            region: 'us-east-1',
            invokeIdentityArn: 'arn:aws:iam::000000000000:role/test',
          }).lambda,
        );
      if (records.length === 0) break;
      iterator = page.NextShardIterator;
    }
  }
  return out;
}

describe('following one item through the logs', () => {
  let kinesalite: RunningEmulator;
  let dynalite: RunningEmulator;
  let bedrock: BedrockStandIn;
  let gateway: WebSocketGateway;
  let kinesis: KinesisClient;
  let viewer: Viewer;
  const capture = new LogCapture();
  let producer: typeof import('../../producers/generator/handler.js');
  let consumer: typeof import('../../consumers/reassembler/handler.js');

  beforeAll(async () => {
    [kinesalite, dynalite, bedrock] = await Promise.all([
      startKinesis(),
      startDynamo(),
      startBedrockStandIn({ timeToFirstTokenMs: 0, tokensPerSecond: 0 }),
    ]);
    kinesis = new KinesisClient({
      region: 'us-east-1',
      endpoint: kinesalite.endpoint,
      requestHandler: new NodeHttpHandler(),
    });
    const dynamo = new DynamoDBClient({ region: 'us-east-1', endpoint: dynalite.endpoint });
    Object.assign(process.env, {
      [ENV.inputStream]: 'follow-input',
      [ENV.chunkStream]: 'follow-chunks',
      [ENV.itemsTable]: 'follow-items',
      [ENV.textTable]: 'follow-text',
      [ENV.connectionsTable]: 'follow-connections',
      [ENV.coordinationTable]: 'follow-coordination',
      [ENV.kinesisEndpoint]: kinesalite.endpoint,
      [ENV.dynamodbEndpoint]: dynalite.endpoint,
      [ENV.bedrockEndpoint]: bedrock.endpoint,
      [ENV.authSecret]: SECRET,
    });
    await Promise.all([
      ensureStream(kinesis, 'follow-input', 1),
      ensureStream(kinesis, 'follow-chunks', 1),
      ensureTable(dynamo, 'follow-items', TABLES.items),
      ensureTable(dynamo, 'follow-text', TABLES.text),
      ensureTable(dynamo, 'follow-connections', TABLES.connections),
      ensureTable(dynamo, 'follow-coordination', TABLES.coordination),
    ]);
    // The real entry points, each given a Lambda context per invocation as the runtime does.
    const routes = await import('../../consumers/viewers/handler.js');
    gateway = await startWebSocketGateway({
      handlers: {
        connect: (event) => routes.connect(event, invocationContext('websocket')),
        disconnect: (event) => routes.disconnect(event, invocationContext('websocket')),
        message: (event) => routes.message(event, invocationContext('websocket')),
      },
    });
    process.env[ENV.websocketManagementEndpoint] = gateway.managementEndpoint;
    producer = await import('../../producers/generator/handler.js');
    consumer = await import('../../consumers/reassembler/handler.js');
    viewer = new Viewer(
      `${gateway.url}?token=${await issueToken(SECRET, { subject: 'dashboard', tenant: '*', scopes: ['admin'], ttlSeconds: 600 })}`,
    );
    await viewer.opened;
    viewer.send({ action: 'subscribe', all: true });
    await waitUntil('the every-item subscription is stored', () => gateway.stats().messages >= 1);
  });

  afterAll(async () => {
    capture.stop();
    await viewer?.close();
    await gateway?.stop();
    await Promise.all([kinesalite?.stop(), dynalite?.stop(), bedrock?.stop()]);
  });

  /** One item through producer → chunk stream → consumer → viewer, with the given invocation contexts. */
  async function follow(item: Record<string, unknown>) {
    const itemId = String(item.itemId);
    await kinesis.send(
      new PutRecordCommand({
        StreamName: 'follow-input',
        PartitionKey: itemId,
        Data: Buffer.from(JSON.stringify(item)),
      }),
    );
    const input = (await readStream(kinesis, 'follow-input')).filter(
      (r) => r.kinesis.partitionKey === itemId,
    );
    const producerContext = invocationContext('producer');
    const produced = await producer.handler({ Records: input } as KinesisStreamEvent, producerContext);
    expect(produced.batchItemFailures).toEqual([]);
    const chunks = (await readStream(kinesis, 'follow-chunks')).filter(
      (r) => r.kinesis.partitionKey === itemId,
    );
    const consumerContext = invocationContext('reassembler');
    const consumed = await consumer.handler({ Records: chunks }, consumerContext);
    expect(consumed.batchItemFailures).toEqual([]);
    await viewer.next('done', (m) => m.itemId === itemId);
    return {
      producerId: producerContext.awsRequestId,
      consumerId: consumerContext.awsRequestId,
      records: chunks.map((r) =>
        ChunkRecord.parse(JSON.parse(Buffer.from(r.kinesis.data, 'base64').toString())),
      ),
    };
  }

  it('finds the producer, consumer and delivery lines of an item by its traceparent and by its id', async () => {
    // Prepare
    capture.start();
    // Act
    const path = await follow({ itemId: 'follow-1', prompt: 'Trace me.', traceparent: TRACEPARENT });
    // Assess: the traceparent rides on every chunk record of the item
    expect(path.records.length).toBeGreaterThan(1);
    for (const record of path.records) expect(record.traceparent, JSON.stringify(record)).toBe(TRACEPARENT);

    const traced = capture.where('traceparent', TRACEPARENT);
    const byFunction = (fn: string) => traced.filter((line) => line.function === fn);
    // Producer: started and ended, in the producer invocation
    expect(byFunction('producer').map((l) => l.message)).toEqual(['generation started', 'generation ended']);
    // Consumer: the batch began the attempt and completed the item; delivery: posted to the viewer
    expect(byFunction('reassembler').map((l) => l.message)).toContain('item applied');
    expect(byFunction('fanout').map((l) => l.message)).toEqual(
      expect.arrayContaining(['fanning out', 'delivered']),
    );
    for (const line of traced) {
      expect(line.itemId).toBe('follow-1');
      expect(line.cold_start).toBe(true);
      expect(line.function_request_id).toBe(line.function === 'producer' ? path.producerId : path.consumerId);
      expect(line.function_name).toBe(line.function === 'producer' ? 'producer' : 'reassembler');
    }
    // The same lines, and no others about the item, by item id
    expect(capture.where('itemId', 'follow-1')).toEqual(traced);
  });

  it('puts the item id on every line that is about an item, with the next invocation warm', async () => {
    // Prepare
    capture.lines.length = 0;
    // Act
    const path = await follow({ itemId: 'follow-2', prompt: 'No trace here.' });
    // Assess
    const lines = capture.where('itemId', 'follow-2');
    expect(new Set(lines.map((l) => l.function))).toEqual(new Set(['producer', 'reassembler', 'fanout']));
    for (const line of lines) {
      expect(line.traceparent).toBeUndefined();
      expect(line.cold_start).toBe(false);
      expect([path.producerId, path.consumerId]).toContain(line.function_request_id);
    }
    // No line mentions the item without carrying its id as a key.
    const mentions = capture.lines.filter((line) => JSON.stringify(line).includes('follow-2'));
    expect(mentions.filter((line) => line.itemId !== 'follow-2')).toEqual([]);
  });
});
