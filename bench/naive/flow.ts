import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { createConnectionStore } from '../../consumers/viewers/connection-store.js';
import { type EventSourceMapping, startEventSourceMapping } from '../../local/event-source/index.js';
import { ensureStream, ensureTable } from '../../local/resources.js';
import type { LocalStack } from '../../local/stack.js';
import type { AwsClients } from '../../shared/aws-clients.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { DEFAULT_TENANT } from '../../shared/tenancy.js';
import { createNaiveConsumer } from './consumer.js';
import { createNaiveProducer } from './producer.js';

/** Event source mapping settings both flows run with, so only the code on the data path differs. */
export interface FlowMappings {
  readonly input: { readonly batchSize: number; readonly parallelizationFactor: number };
  readonly chunks: { readonly batchSize: number; readonly parallelizationFactor: number };
  readonly inputShards: number;
  readonly chunkShards: number;
}

export interface NaiveFlow {
  readonly inputStream: string;
  readonly chunkStream: string;
  readonly table: string;
  readonly mappings: { readonly input: EventSourceMapping; readonly chunks: EventSourceMapping };
  /**
   * Registers `item` in the pipeline's items table (`queued`, no text). Both flows share the
   * WebSocket routes, which serve a subscribe only for an item that exists there; the naive viewer
   * has no resume, so its item is registered before its viewers subscribe, and they get the empty
   * snapshot and then every record.
   */
  register(item: WorkItem): Promise<void>;
  stop(): Promise<void>;
}

const INPUT_STREAM = 'naive-work-items';
const CHUNK_STREAM = 'naive-chunks';
const TABLE = 'naive-items';

/**
 * Starts the naive baseline beside the pipeline in `stack`: its own input and chunk streams and
 * table on the same emulators, its producer and consumer behind local event source mappings with
 * the same settings as the pipeline's, the same model, and the same WebSocket gateway and
 * subscriptions. `clients` are the handlers' clients (the same endpoints the pipeline uses).
 */
export async function startNaiveFlow(
  stack: LocalStack,
  clients: AwsClients,
  mappings: FlowMappings,
): Promise<NaiveFlow> {
  const { info, config } = stack;
  const direct = {
    kinesis: new KinesisClient({
      region: info.region,
      endpoint: info.kinesis.endpoint,
      credentials: info.credentials,
      requestHandler: new NodeHttpHandler(),
    }),
    dynamo: new DynamoDBClient({
      region: info.region,
      endpoint: info.dynamodb.endpoint,
      credentials: info.credentials,
    }),
  };
  await Promise.all([
    ensureStream(direct.kinesis, INPUT_STREAM, mappings.inputShards),
    ensureStream(direct.kinesis, CHUNK_STREAM, mappings.chunkShards),
    ensureTable(direct.dynamo, TABLE, { partitionKey: 'itemId' }),
  ]);
  const producer = createNaiveProducer({
    kinesis: clients.kinesis,
    bedrock: clients.bedrock,
    dynamo: clients.dynamo,
    chunkStream: CHUNK_STREAM,
    table: TABLE,
    defaultModelId: config.defaultModelId,
    defaultMaxTokens: config.producer.defaultMaxTokens,
  });
  const consumer = createNaiveConsumer({
    dynamo: clients.dynamo,
    table: TABLE,
    management: clients.management(info.websocket.managementEndpoint),
    connections: createConnectionStore({
      dynamo: clients.dynamo,
      table: config.tables.connections,
      ttlSeconds: config.delivery.connectionTtlSeconds,
    }),
  });
  const common = {
    kinesis: direct.kinesis,
    reportBatchItemFailures: true,
    bisectBatchOnFunctionError: true,
    onError: () => {},
  };
  const input = startEventSourceMapping({
    ...common,
    streamName: INPUT_STREAM,
    functionName: 'naive-producer',
    handler: producer,
    maximumRetryAttempts: 5,
    ...mappings.input,
  });
  const chunks = startEventSourceMapping({
    ...common,
    streamName: CHUNK_STREAM,
    functionName: 'naive-consumer',
    handler: consumer,
    maximumRetryAttempts: 10,
    ...mappings.chunks,
  });
  return {
    inputStream: INPUT_STREAM,
    chunkStream: CHUNK_STREAM,
    table: TABLE,
    mappings: { input, chunks },
    async register(item) {
      await clients.dynamo.send(
        new PutCommand({
          TableName: config.tables.items,
          Item: {
            itemId: item.itemId,
            status: 'queued',
            version: 0,
            modelId: item.modelId ?? config.defaultModelId,
            tenant: item.tenant ?? DEFAULT_TENANT,
            createdAt: new Date().toISOString(),
          },
        }),
      );
    },
    async stop() {
      await Promise.all([input.stop(), chunks.stop()]);
      direct.kinesis.destroy();
      direct.dynamo.destroy();
    },
  };
}
