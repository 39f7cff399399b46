/**
 * How well the producer coalesces: chunk records per 1,000 output tokens and model deltas per record,
 * at 1 and at 200 concurrent generations, on the local stand-ins.
 *
 *   npx tsx bench/producer-coalescing.ts [tokensPerSecond=80] [maxTokens=600]
 *
 * The model stand-in paces tokens like a real model (80 tokens/s after 300 ms by default; 0 streams
 * as fast as it is read); Kinesis is kinesalite; the producer runs with its default configuration.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { Logger } from '@aws-lambda-powertools/logger';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startBedrockStandIn } from '../local/bedrock/index.js';
import { startDynamo, startKinesis } from '../local/emulators.js';
import { ensureStream, ensureTable } from '../local/resources.js';
import { createGeneratorHandler } from '../producers/generator/handler.js';
import { createAwsClients } from '../shared/aws-clients.js';
import { loadConfig } from '../shared/config.js';
import { ENV } from '../shared/env.js';
import { TABLES } from '../shared/tables.js';
import { createMetrics } from '../shared/telemetry.js';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.AWS_ACCESS_KEY_ID ??= 'local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const tokensPerSecond = Number(process.argv[2] ?? 80);
const maxTokens = Number(process.argv[3] ?? 600);

const [kinesalite, dynalite] = await Promise.all([startKinesis(), startDynamo()]);
const bedrock = await startBedrockStandIn({ timeToFirstTokenMs: 300, tokensPerSecond });
const kinesis = new KinesisClient({
  region: 'us-east-1',
  endpoint: kinesalite.endpoint,
  requestHandler: new NodeHttpHandler(),
});
const dynamo = new DynamoDBClient({ region: 'us-east-1', endpoint: dynalite.endpoint });

let run = 0;
async function measure(concurrent: number): Promise<void> {
  run++;
  const config = loadConfig({
    [ENV.chunkStream]: `bench-chunks-${run}`,
    [ENV.itemsTable]: `bench-items-${run}`,
    [ENV.kinesisEndpoint]: kinesalite.endpoint,
    [ENV.dynamodbEndpoint]: dynalite.endpoint,
    [ENV.bedrockEndpoint]: bedrock.endpoint,
  });
  await ensureStream(kinesis, config.chunkStream, 2);
  await ensureTable(dynamo, config.tables.items, TABLES.items);
  await ensureTable(dynamo, config.tables.coordination, TABLES.coordination);
  const handler = createGeneratorHandler({
    config,
    clients: createAwsClients(config),
    deadLetters: { send: async () => undefined },
    logger: new Logger({ serviceName: 'bench', logLevel: 'ERROR' }),
    metrics: createMetrics('bench'),
  });
  const records = Array.from({ length: concurrent }, (_, i) => {
    const item = { itemId: `bench-${run}-${i}`, prompt: `Benchmark prompt number ${i}`, maxTokens };
    return {
      eventID: `shardId-000000000000:${i}`,
      kinesis: {
        data: Buffer.from(JSON.stringify(item)).toString('base64'),
        partitionKey: item.itemId,
        sequenceNumber: String(i),
        approximateArrivalTimestamp: Date.now() / 1000,
        kinesisSchemaVersion: '1.0',
      },
    };
  });
  let peakStreams = 0;
  const watch = setInterval(() => {
    peakStreams = Math.max(peakStreams, bedrock.stats().activeStreams);
  }, 5);
  const started = performance.now();
  const response = await handler({ Records: records } as never);
  const elapsedMs = performance.now() - started;
  clearInterval(watch);
  const s = handler.stats();
  const perKiloToken = (s.deltaRecords / s.outputTokens) * 1000;
  console.log(
    JSON.stringify({
      concurrentGenerations: concurrent,
      modelTokensPerSecond: tokensPerSecond || 'unpaced',
      completed: s.generationsCompleted,
      failedRecords: response.batchItemFailures.length,
      outputTokens: s.outputTokens,
      modelDeltas: s.textEvents,
      deltaRecords: s.deltaRecords,
      chunkRecordsPer1000Tokens: Number(perKiloToken.toFixed(1)),
      deltasPerRecord: Number((s.textEvents / s.deltaRecords).toFixed(2)),
      putCalls: s.putCalls,
      recordsPerPutCall: Number((s.chunkRecords / s.putCalls).toFixed(1)),
      peakModelStreams: peakStreams,
      peakBufferedBytes: s.peakBufferedBytes,
      firstTokenMsAvg: Math.round(s.firstTokenMs.sum / Math.max(1, s.firstTokenMs.count)),
      elapsedMs: Math.round(elapsedMs),
    }),
  );
}

try {
  await measure(1);
  await measure(200);
} finally {
  kinesis.destroy();
  dynamo.destroy();
  await bedrock.stop();
  await kinesalite.stop();
  await dynalite.stop();
}
