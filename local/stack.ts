import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { KinesisStreamEvent } from 'aws-lambda';
import { createFanout, type Fanout } from '../consumers/viewers/fanout.js';
import { createQueryApiHandler } from '../consumers/query-api/handler.js';
import { createReassemblerHandler } from '../consumers/reassembler/handler.js';
import { createWebSocketHandlers } from '../consumers/viewers/handler.js';
import { createDashboardRoutes } from '../dashboard/serve.js';
import { createGeneratorHandler, type GeneratorTuning } from '../producers/generator/handler.js';
import { issueToken } from '../shared/auth.js';
import { type AwsClients, createAwsClients } from '../shared/aws-clients.js';
import { type Config, loadConfig } from '../shared/config.js';
import type { StackFile } from '../shared/contracts/stack-file.js';
import { sqsDeadLetterSink } from '../shared/dead-letters.js';
import { ENV } from '../shared/env.js';
import { CHUNK_MAPPING, INPUT_MAPPING } from '../shared/mappings.js';
import { TABLES } from '../shared/tables.js';
import { ALL_TENANTS } from '../shared/tenancy.js';
import { createLogger, createMetrics } from '../shared/telemetry.js';
import { type BedrockStandIn, type BedrockStandInOptions, startBedrockStandIn } from './bedrock/index.js';
import { startDeadLetterStore } from './dead-letters/index.js';
import { startEmulators } from './emulators.js';
import {
  type EventSourceMapping,
  type EventSourceMappingOptions,
  mappingOptionsOf,
  startEventSourceMapping,
} from './event-source/index.js';
import { startHttpApi } from './http-api.js';
import { type DynamoFaultProxy, startDynamoFaultProxy } from './dynamodb-faults.js';
import { startLambdaInvoke } from './lambda-invoke.js';
import { type KinesisFaultProxy, startKinesisFaultProxy } from './kinesis-faults.js';
import { ensureStream, ensureTable } from './resources.js';
import { startExpirySweeper } from './expiry-sweeper.js';
import { startStallSweeper } from './stall-sweeper.js';
import { startTtlSweeper } from './ttl-sweeper.js';
import { startWebSocketGateway, type WebSocketGateway } from './websocket-gateway.js';

/** Fixed dummy credentials: every endpoint is a loopback stand-in. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;
export const LOCAL_REGION = 'us-east-1';

export interface LocalStackOptions {
  /** Folder for persisted state, the stack file and the pid file. Default `.local`. */
  readonly dataDir?: string;
  /** Start empty: delete the data folder first. */
  readonly fresh?: boolean;
  /** Keep everything in memory (tests); nothing is written but the stack file. */
  readonly inMemory?: boolean;
  /** Model stand-in settings (timing, faults). */
  readonly bedrock?: BedrockStandInOptions;
  /** Extra configuration (environment variable name → value) for the handlers. */
  readonly env?: Readonly<Record<string, string>>;
  /** Overrides for the two event source mappings. */
  readonly inputMapping?: Partial<EventSourceMappingOptions>;
  readonly chunkMapping?: Partial<EventSourceMappingOptions>;
  /** Overrides of the producer's tuning (chaos runs inject crashes at steps of an ending here). */
  readonly producerTuning?: Partial<GeneratorTuning>;
  /** The stall sweeper's timer and limit (defaults: every minute, `STALL_LIMIT_SECONDS`). */
  readonly stallSweeper?: { readonly intervalMs?: number; readonly stallLimitMs?: number };
  /** The connection expiry sweep's timer (default every 5 s; in AWS every minute). */
  readonly expirySweeper?: { readonly intervalMs?: number };
  /** Put a fault-injecting proxy between the producer and the chunk stream. */
  readonly chunkStreamFaults?: boolean;
  /** Put a fault-injecting proxy between every handler and DynamoDB (brownouts). */
  readonly dynamodbFaults?: boolean;
  /**
   * Run the Kinesis and DynamoDB emulators on a worker thread of their own, so their CPU time is
   * not the handlers' (in AWS they are remote services). Default: on this thread. Stop the stack
   * fully before the process exits: on Node 24, exiting with a disk-backed dynalite still open on
   * a worker aborts in its LevelDB binding.
   */
  readonly emulatorThread?: boolean;
  /** Shards of the input and chunk streams on first creation. */
  readonly inputShards?: number;
  readonly chunkShards?: number;
  /** Fixed ports (0 = any free port). */
  readonly ports?: Partial<
    Record<'kinesis' | 'dynamodb' | 'bedrock' | 'deadLetters' | 'http' | 'websocket' | 'lambda', number>
  >;
}

/** A running local stack. */
export interface LocalStack {
  /** What `.local/stack.json` holds. */
  readonly info: StackFile;
  /** The handlers' configuration and clients (what tests and tools use to look inside). */
  readonly config: Config;
  readonly clients: AwsClients;
  readonly bedrock: BedrockStandIn;
  /** Present when `chunkStreamFaults` was asked for. */
  readonly chunkFaults: KinesisFaultProxy | undefined;
  /** Present when `dynamodbFaults` was asked for; `clients.dynamo` goes through it too. */
  readonly dynamodbFaults: DynamoFaultProxy | undefined;
  readonly mappings: { readonly input: EventSourceMapping; readonly chunks: EventSourceMapping };
  /** The WebSocket stage (connections, dropped connections, post counters). */
  readonly websocket: WebSocketGateway;
  /** The consumer's fan-out to viewers (delivery counters). */
  readonly fanout: Fanout;
  /** Where `.local/stack.json` was written. */
  readonly stackFile: string;
  /**
   * Stops every part. By default waits for the functions' in-flight invocations; with
   * `abandonInFlight` it only stops the mappings without waiting (their checkpoints saved) and
   * removes the stack file, leaving the rest to the process's exit, as a crash would (Ctrl-C on
   * `npm start`): the in-flight records are not checkpointed, and the next start delivers them
   * again.
   */
  stop(options?: { readonly abandonInFlight?: boolean }): Promise<void>;
}

const INPUT_STREAM = 'work-items';
const CHUNK_STREAM = 'chunks';
const DEAD_LETTER_QUEUE = 'dead-letters';
/** Names of the functions the mappings invoke (in on-failure letters' `functionArn`). */
const FUNCTIONS = { producer: 'producer', consumer: 'consumer' } as const;
/** Counters of the local mappings and the model stand-in, for people and tools watching a run. */
export const LOCAL_STATS_PATH = '/_local/stats';

/**
 * Starts every part of the system on loopback: Kinesis and DynamoDB emulators, the model and
 * dead-letter stand-ins, the real handlers behind local event source mappings, the HTTP query API
 * and the WebSocket gateway. Writes the stack file once everything is ready.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const dataDir = resolve(options.dataDir ?? '.local');
  if (options.fresh) rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  const persist = (name: string) => (options.inMemory ? undefined : join(dataDir, name));
  const stops: Array<() => Promise<void>> = [];
  let abandonInFlight = false;
  // Abandoning in-flight invocations is a crash for them: nothing else is stopped under them (a
  // closed store or model stream would make an abandoned generation record a failed attempt, and
  // the emulators do not survive requests in flight as their databases close); the process exits.
  const halts: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    if (abandonInFlight) {
      for (const halt of halts) await halt().catch(() => {});
      return;
    }
    for (const stop of stops.reverse()) await stop().catch(() => {});
    stops.length = 0;
  };

  try {
    const {
      kinesis,
      dynamodb,
      stop: stopEmulators,
    } = await startEmulators({
      kinesis: { path: persist('kinesis'), port: options.ports?.kinesis },
      dynamodb: { path: persist('dynamodb'), port: options.ports?.dynamodb },
      thread: options.emulatorThread === true,
    });
    stops.push(stopEmulators);
    const deadLetters = await startDeadLetterStore({
      dir: persist('dead-letters'),
      port: options.ports?.deadLetters,
    });
    stops.push(deadLetters.stop);
    const bedrock = await startBedrockStandIn({ ...options.bedrock, port: options.ports?.bedrock });
    stops.push(bedrock.stop);
    const chunkFaults = options.chunkStreamFaults
      ? await startKinesisFaultProxy({ target: kinesis.endpoint })
      : undefined;
    if (chunkFaults) stops.push(chunkFaults.stop);
    const dynamodbFaults = options.dynamodbFaults
      ? await startDynamoFaultProxy({ target: dynamodb.endpoint })
      : undefined;
    if (dynamodbFaults) stops.push(dynamodbFaults.stop);

    const secret = authSecret(dataDir, options.inMemory === true);
    const env: Record<string, string> = {
      [ENV.region]: LOCAL_REGION,
      [ENV.inputStream]: INPUT_STREAM,
      [ENV.chunkStream]: CHUNK_STREAM,
      [ENV.kinesisEndpoint]: chunkFaults?.endpoint ?? kinesis.endpoint,
      [ENV.dynamodbEndpoint]: dynamodbFaults?.endpoint ?? dynamodb.endpoint,
      [ENV.bedrockEndpoint]: bedrock.endpoint,
      [ENV.sqsEndpoint]: deadLetters.endpoint,
      [ENV.deadLetterQueueUrl]: deadLetters.queueUrl(DEAD_LETTER_QUEUE),
      [ENV.authSecret]: secret,
      // Every local tool (CLI, benchmarks, chaos runs, dashboards) shares the stack's one admin
      // token, so one subject holds hundreds of connections here; deployments keep the default 20.
      [ENV.maxConnectionsPerSubject]: '10000',
      ...options.env,
    };
    const config = loadConfig(env);
    const clients = createAwsClients(config);
    const direct = {
      kinesis: new KinesisClient({
        region: LOCAL_REGION,
        endpoint: kinesis.endpoint,
        credentials: { ...LOCAL_CREDENTIALS },
        requestHandler: new NodeHttpHandler(),
      }),
      dynamo: new DynamoDBClient({
        region: LOCAL_REGION,
        endpoint: dynamodb.endpoint,
        credentials: { ...LOCAL_CREDENTIALS },
      }),
    };
    await Promise.all([
      ensureStream(direct.kinesis, config.inputStream, options.inputShards ?? 1),
      ensureStream(direct.kinesis, config.chunkStream, options.chunkShards ?? 2),
      ensureTable(direct.dynamo, config.tables.items, TABLES.items),
      ensureTable(direct.dynamo, config.tables.text, TABLES.text),
      ensureTable(direct.dynamo, config.tables.connections, TABLES.connections),
      ensureTable(direct.dynamo, config.tables.coordination, TABLES.coordination),
      clients.sqs.send(new CreateQueueCommand({ QueueName: DEAD_LETTER_QUEUE })),
    ]);

    const logger = createLogger('local-stack');
    const deps = (name: string) => ({
      config,
      clients,
      logger: createLogger(name),
      metrics: createMetrics(name),
    });
    const sink = (name: string) =>
      sqsDeadLetterSink(clients.sqs, config.deadLetterQueueUrl, createLogger(name));

    const websocketHandlers = createWebSocketHandlers(deps('websocket'));
    const gateway = await startWebSocketGateway({
      handlers: websocketHandlers,
      port: options.ports?.websocket,
    });
    stops.push(gateway.stop);
    // The handlers post to viewers through the gateway's management API, as they would in AWS.
    const withManagement = loadConfig({
      ...env,
      [ENV.websocketManagementEndpoint]: gateway.managementEndpoint,
    });
    const deliveryClients = createAwsClients(withManagement);
    const publisher = createFanout({ ...deps('fanout'), config: withManagement, clients: deliveryClients });

    const producer = createGeneratorHandler({
      ...deps('producer'),
      deadLetters: sink('producer'),
      tuning: options.producerTuning,
    });
    const consumer = createReassemblerHandler({
      ...deps('consumer'),
      deadLetters: sink('consumer'),
      publisher,
    });
    const query = createQueryApiHandler(deps('query-api'));
    // Lambda's Invoke API for the two stream functions: dead letters are replayed through them.
    // Lambda hands a payload over unchecked too; the handlers validate every record's data.
    const invoke = await startLambdaInvoke({
      functions: {
        [FUNCTIONS.producer]: (event) => producer(event as KinesisStreamEvent, lambdaContext()),
        [FUNCTIONS.consumer]: (event) => consumer(event as KinesisStreamEvent),
      },
      port: options.ports?.lambda,
    });
    stops.push(invoke.stop);

    const onFailure = (name: string) => async (letter: unknown) => {
      await sink(name).send(letter as never);
    };
    const streamKinesis = direct.kinesis;
    const input = startEventSourceMapping({
      kinesis: streamKinesis,
      streamName: config.inputStream,
      functionName: FUNCTIONS.producer,
      handler: (event) => producer(event, lambdaContext()),
      ...mappingOptionsOf(INPUT_MAPPING),
      onFailure: onFailure('input-mapping'),
      checkpointFile: persist('checkpoints-input.json'),
      ...options.inputMapping,
    });
    stops.push(async () => {
      // Stop reading first, then release the items waiting for admission: the in-flight
      // invocations end with their running generations instead of their 15-minute budget.
      const stopped = input.stop({ abandonInFlight });
      producer.drain();
      await stopped;
    });
    halts.push(() => input.stop({ abandonInFlight: true }));
    const chunks = startEventSourceMapping({
      kinesis: streamKinesis,
      streamName: config.chunkStream,
      functionName: FUNCTIONS.consumer,
      handler: consumer,
      ...mappingOptionsOf(CHUNK_MAPPING),
      onFailure: onFailure('chunk-mapping'),
      checkpointFile: persist('checkpoints-chunks.json'),
      ...options.chunkMapping,
    });
    stops.push(() => chunks.stop({ abandonInFlight }));
    halts.push(() => chunks.stop({ abandonInFlight: true }));

    const dashboard = createDashboardRoutes({ websocketUrl: gateway.url });
    const http = await startHttpApi({
      handler: query,
      port: options.ports?.http,
      fallback: (req, res) => {
        if (dashboard(req, res)) return true;
        if (req.method !== 'GET' || req.url !== LOCAL_STATS_PATH) return false;
        const stats = {
          mappings: { input: input.stats(), chunks: chunks.stats() },
          bedrock: bedrock.stats(),
          websocket: { connections: gateway.connectionCount(), ...gateway.stats() },
          fanout: publisher.stats(),
        };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
        return true;
      },
    });
    stops.push(http.stop);
    const sweeper = startTtlSweeper({
      dynamo: clients.dynamo,
      tables: [config.tables.connections, config.tables.text],
      // DynamoDB deletes expired rows some time after expiry, never at it: kept a minute here, an
      // expired connection's row is still there for the expiry sweep, which closes its socket.
      graceMs: 60_000,
    });
    stops.push(() => sweeper.stop());
    // What the scheduled sweeper function does in AWS, on a timer.
    const stalls = startStallSweeper({ ...deps('sweeper'), publisher, ...options.stallSweeper });
    stops.push(() => stalls.stop());
    // The scheduled expiry sweep of AWS, on a timer: closes connections whose token expired
    // through the gateway's management API (DELETE), as the function does through API Gateway's.
    const expiries = startExpirySweeper({
      ...deps('expiry-sweep'),
      config: withManagement,
      clients: deliveryClients,
      ...options.expirySweeper,
    });
    stops.push(() => expiries.stop());

    // An admin token for every tenant, as long-lived as tokens may be.
    const token = await issueToken(secret, {
      subject: 'local-admin',
      tenant: ALL_TENANTS,
      scopes: ['admin'],
      ttlSeconds: config.auth.maxLifetimeSeconds,
      audience: config.auth.audience,
    });
    const info: StackFile = {
      region: LOCAL_REGION,
      credentials: {
        accessKeyId: LOCAL_CREDENTIALS.accessKeyId,
        secretAccessKey: LOCAL_CREDENTIALS.secretAccessKey,
      },
      kinesis: {
        endpoint: kinesis.endpoint,
        inputStream: config.inputStream,
        chunkStream: config.chunkStream,
      },
      dynamodb: { endpoint: dynamodb.endpoint, tables: { ...config.tables } },
      bedrock: { endpoint: bedrock.endpoint, modelId: config.defaultModelId },
      websocket: { url: gateway.url, managementEndpoint: gateway.managementEndpoint },
      http: { url: http.url },
      dashboard: { url: `${http.url}/dashboard/` },
      deadLetters: { endpoint: deadLetters.endpoint, queueUrl: deadLetters.queueUrl(DEAD_LETTER_QUEUE) },
      lambda: { endpoint: invoke.endpoint, functions: { ...FUNCTIONS } },
      token,
    };
    const stackFile = join(dataDir, 'stack.json');
    writeAtomically(stackFile, `${JSON.stringify(info, null, 2)}\n`);
    const removeStackFile = async () => rmSync(stackFile, { force: true });
    stops.unshift(removeStackFile);
    halts.push(removeStackFile);
    logger.debug('local stack ready', { info });

    return {
      info,
      config,
      clients,
      bedrock,
      chunkFaults,
      dynamodbFaults,
      mappings: { input, chunks },
      websocket: gateway,
      fanout: publisher,
      stackFile,
      stop: (stopOptions) => {
        abandonInFlight = stopOptions?.abandonInFlight === true;
        return stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** A Lambda-like context: the local mappings give each invocation Lambda's 15-minute maximum. */
function lambdaContext(timeoutMs = 15 * 60 * 1000) {
  const deadline = Date.now() + timeoutMs;
  return { getRemainingTimeInMillis: () => deadline - Date.now() };
}

/** The HMAC secret of local tokens, kept in the data folder so tokens survive a restart. */
function authSecret(dataDir: string, inMemory: boolean): string {
  const file = join(dataDir, 'auth-secret');
  if (!inMemory && existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('hex');
  if (!inMemory) writeAtomically(file, secret);
  return secret;
}

function writeAtomically(file: string, content: string): void {
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, content);
  renameSync(temp, file);
}
