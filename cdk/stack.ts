import { Aws, CfnOutput, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { ENV } from '../shared/env.js';
import { ApiGatewayLoggingRole } from './constructs/api-gateway-logging-role.js';
import { BedrockModels } from './constructs/bedrock-models.js';
import { DeadLetterQueue } from './constructs/dead-letters.js';
import { Generator } from './constructs/generator.js';
import { ItemsQueryApi } from './constructs/query-api.js';
import { Reassembler } from './constructs/reassembler.js';
import { StreamsMonitoring } from './constructs/monitoring.js';
import { ConnectionExpirySweeper } from './constructs/expiry-sweeper.js';
import { StallSweeper } from './constructs/sweeper.js';
import { WorkStreams } from './constructs/streams.js';
import { StreamsTables } from './constructs/tables.js';
import { TokenSecret } from './constructs/token-secret.js';
import { ViewerWebSocketApi } from './constructs/websocket-api.js';
import type { StreamsSettings } from './context.js';

/**
 * Names of the stack outputs. `cdk/stack-file.ts` turns them into the file the command line reads
 * (`--stack <file>`); they are part of that contract.
 */
export const OUTPUTS = {
  region: 'Region',
  inputStream: 'InputStreamName',
  httpUrl: 'HttpApiUrl',
  webSocketUrl: 'WebSocketUrl',
  tokenSecretArn: 'TokenSecretArn',
  deadLetterQueueUrl: 'DeadLetterQueueUrl',
  dashboardName: 'DashboardName',
  chunkStream: 'ChunkStreamName',
  producerFunction: 'ProducerFunctionName',
  consumerFunction: 'ConsumerFunctionName',
} as const;

export interface KinesisModelStreamsStackProps extends StackProps {
  /** Every setting, validated (see `cdk/context.ts`). */
  readonly settings: StreamsSettings;
}

/**
 * The whole system in one environment-agnostic stack: the same handlers as the local stack, wired to
 * Kinesis, Lambda, DynamoDB, API Gateway and Bedrock. Only wiring lives here; each piece is a
 * construct in `cdk/constructs/`.
 */
export class KinesisModelStreamsStack extends Stack {
  constructor(scope: Construct, id: string, props: KinesisModelStreamsStackProps) {
    super(scope, id, props);
    const s = props.settings;
    const removalPolicy = s.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const logRetention = s.logRetentionDays as logs.RetentionDays;
    const logging = { logRetention, logLevel: s.logLevel };
    const prices: Record<string, string> = s.modelPrices
      ? { [ENV.modelPrices]: JSON.stringify(s.modelPrices) }
      : {};

    const tokenSecret = new TokenSecret(this, 'TokenSecret', { removalPolicy });
    const streams = new WorkStreams(this, 'Streams', {
      inputShardCount: s.inputShardCount,
      chunkShardCount: s.chunkShardCount,
      retentionHours: s.streamRetentionHours,
      removalPolicy,
    });
    const tables = new StreamsTables(this, 'Tables', { removalPolicy });
    const deadLetters = new DeadLetterQueue(this, 'DeadLetters', { removalPolicy });
    // Fallback models are invoked like the configured ones, so IAM and the metrics cover them too.
    const fallbackIds = Object.values(s.modelFallbacks ?? {}).flat();
    const models = new BedrockModels(this, 'Models', {
      modelIds: [s.modelId, ...s.additionalModelIds, ...fallbackIds],
    });
    const flowControl: Record<string, string> = {
      ...(s.modelQuotas ? { [ENV.modelQuotas]: JSON.stringify(s.modelQuotas) } : {}),
      ...(s.modelFallbacks ? { [ENV.modelFallbacks]: JSON.stringify(s.modelFallbacks) } : {}),
    };

    const generator = new Generator(this, 'Generator', {
      inputStream: streams.inputStream,
      chunkStream: streams.chunkStream,
      itemsTable: tables.items,
      coordinationTable: tables.coordination,
      deadLetters,
      models,
      mapping: s.inputMapping,
      memorySizeMb: s.generator.memorySizeMb,
      timeoutSeconds: s.generator.timeoutSeconds,
      reservedConcurrentExecutions: s.generator.reservedConcurrency,
      environment: { ...s.producerEnvironment, ...flowControl, ...prices },
      ...logging,
    });

    const loggingRole = s.apiGatewayCloudWatchRole
      ? new ApiGatewayLoggingRole(this, 'ApiGatewayLogging')
      : undefined;
    const webSocket = new ViewerWebSocketApi(this, 'WebSocket', {
      connectionsTable: tables.connections,
      itemsTable: tables.items,
      textTable: tables.text,
      tokenSecret,
      authEnvironment: s.authEnvironment,
      throttleRatePerSecond: s.apiThrottleRatePerSecond,
      throttleBurst: s.apiThrottleBurst,
      memorySizeMb: s.api.memorySizeMb,
      timeoutSeconds: s.api.timeoutSeconds,
      environment: s.deliveryEnvironment,
      removalPolicy,
      stageDependency: loggingRole?.account,
      ...logging,
    });

    const reassembler = new Reassembler(this, 'Reassembler', {
      chunkStream: streams.chunkStream,
      itemsTable: tables.items,
      textTable: tables.text,
      connectionsTable: tables.connections,
      coordinationTable: tables.coordination,
      viewers: webSocket,
      deadLetters,
      mapping: s.chunkMapping,
      memorySizeMb: s.reassembler.memorySizeMb,
      timeoutSeconds: s.reassembler.timeoutSeconds,
      environment: { ...s.deliveryEnvironment, ...prices },
      ...logging,
    });

    const queryApi = new ItemsQueryApi(this, 'QueryApi', {
      itemsTable: tables.items,
      textTable: tables.text,
      tokenSecret,
      authEnvironment: s.authEnvironment,
      throttleRatePerSecond: s.apiThrottleRatePerSecond,
      throttleBurst: s.apiThrottleBurst,
      corsAllowOrigins: s.corsAllowOrigins,
      memorySizeMb: s.api.memorySizeMb,
      timeoutSeconds: s.api.timeoutSeconds,
      removalPolicy,
      ...logging,
    });

    const sweeper = new StallSweeper(this, 'Sweeper', {
      itemsTable: tables.items,
      intervalMinutes: s.sweeper.intervalMinutes,
      environment: s.sweeper.environment,
      ...logging,
    });

    const expirySweeper = new ConnectionExpirySweeper(this, 'ExpirySweeper', {
      webSocket,
      connectionsTable: tables.connections,
      ...logging,
    });

    const monitoring = new StreamsMonitoring(this, 'Monitoring', {
      inputStream: streams.inputStream,
      chunkStream: streams.chunkStream,
      generator,
      reassembler,
      sweeper,
      functions: {
        Generator: generator.handler,
        Reassembler: reassembler.handler,
        QueryApi: queryApi.handler,
        WebSocketConnect: webSocket.connectHandler,
        WebSocketDisconnect: webSocket.disconnectHandler,
        WebSocketMessage: webSocket.messageHandler,
        Sweeper: sweeper.handler,
        ExpirySweeper: expirySweeper.handler,
      },
      deadLetters,
      models,
      tables: {
        items: tables.items,
        text: tables.text,
        connections: tables.connections,
        coordination: tables.coordination,
      },
      webSocketApi: webSocket,
      queryApi,
      thresholds: s.alarms,
      alarmTopic: s.alarms.topicArn
        ? sns.Topic.fromTopicArn(this, 'AlarmTopic', s.alarms.topicArn)
        : undefined,
    });

    new CfnOutput(this, OUTPUTS.region, { value: Aws.REGION, description: 'Region of the stack' });
    new CfnOutput(this, OUTPUTS.inputStream, {
      value: streams.inputStream.streamName,
      description: 'Kinesis stream upstream systems put work items on (partition key = itemId)',
    });
    new CfnOutput(this, OUTPUTS.httpUrl, {
      value: queryApi.url,
      description: 'HTTP query API base URL (GET /items/{itemId}, GET /items)',
    });
    new CfnOutput(this, OUTPUTS.webSocketUrl, {
      value: webSocket.url,
      description: 'WebSocket URL (add ?token=)',
    });
    new CfnOutput(this, OUTPUTS.tokenSecretArn, {
      value: tokenSecret.secretArn,
      description: 'Secrets Manager secret holding the token signing key (see cdk/stack-file.ts)',
    });
    new CfnOutput(this, OUTPUTS.deadLetterQueueUrl, {
      value: deadLetters.queue.queueUrl,
      description: 'Dead letters: invalid work items, failed generations, records the mappings gave up on',
    });
    // Replaying dead letters invokes the mapped functions with records read back from the streams.
    new CfnOutput(this, OUTPUTS.chunkStream, {
      value: streams.chunkStream.streamName,
      description: 'Chunk stream (dead-letter replay reads records back from it)',
    });
    new CfnOutput(this, OUTPUTS.producerFunction, {
      value: generator.handler.function.functionName,
      description: 'Producer function (input stream); dead-letter replay invokes it',
    });
    new CfnOutput(this, OUTPUTS.consumerFunction, {
      value: reassembler.handler.function.functionName,
      description: 'Consumer function (chunk stream); dead-letter replay invokes it',
    });
    new CfnOutput(this, OUTPUTS.dashboardName, {
      value: monitoring.dashboard.dashboardName,
      description: 'CloudWatch dashboard of the pipeline (CloudWatch console, Dashboards)',
    });
  }
}
