import { ApiGatewayManagementApiClient } from '@aws-sdk/client-apigatewaymanagementapi';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient } from '@aws-sdk/client-kinesis';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { Config } from './config.js';

/**
 * The one place AWS clients are built. Endpoints are overridden only where configured; everything
 * else is the SDK's default, so the same code runs in Lambda and against the local stand-ins.
 */
export interface AwsClients {
  readonly kinesis: KinesisClient;
  readonly dynamo: DynamoDBDocumentClient;
  /** For `InvokeModelWithResponseStream`: SDK retries off, explicit timeouts. */
  readonly bedrock: BedrockRuntimeClient;
  readonly sqs: SQSClient;
  /** Secrets Manager (the token signing key), built on first use. */
  secrets(): SecretsManagerClient;
  /** A management API client for a WebSocket stage's callback URL. */
  management(endpoint?: string): ApiGatewayManagementApiClient;
}

const plainHttp = (endpoint: string | undefined) => endpoint?.startsWith('http://') === true;

/** Builds the clients for `config`. Cheap to call; call it once per cold start. */
export function createAwsClients(config: Config): AwsClients {
  const region = config.region;
  const { endpoints } = config;
  // One retry layer per call: every DynamoDB, Kinesis and SQS call is wrapped in `withRetry` (or the
  // chunk sink's own retries), with jittered backoff and a bound; SDK retries inside it would multiply
  // the sends of one logical call in a brownout.
  const kinesis = new KinesisClient({
    region,
    endpoint: endpoints.kinesis,
    maxAttempts: 1,
    // The default HTTP/2 handler fails against a plain-HTTP/1.1 endpoint (ERR_HTTP2_ERROR).
    ...(plainHttp(endpoints.kinesis) ? { requestHandler: new NodeHttpHandler() } : {}),
  });
  const dynamo = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region, endpoint: endpoints.dynamodb, maxAttempts: 1 }),
    {
      marshallOptions: { removeUndefinedValues: true },
    },
  );
  // A response stream holds its socket for the whole generation: the SDK's default of 50 sockets
  // would queue every generation beyond the 50th.
  const modelSockets = { maxSockets: Math.max(50, config.producer.maxConcurrentGenerations) };
  const bedrock = new BedrockRuntimeClient({
    region,
    endpoint: endpoints.bedrock,
    // A retry inside a response stream would restart the text: retries are new attempts, made by us.
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: config.producer.bedrockConnectTimeoutMs,
      requestTimeout: config.producer.bedrockReadTimeoutMs,
      httpAgent: modelSockets,
      httpsAgent: modelSockets,
    }),
  });
  const sqs = new SQSClient({ region, endpoint: endpoints.sqs, maxAttempts: 1 });
  let secrets: SecretsManagerClient | undefined;
  const managementClients = new Map<string, ApiGatewayManagementApiClient>();
  return {
    kinesis,
    dynamo,
    bedrock,
    sqs,
    secrets() {
      secrets ??= new SecretsManagerClient({ region });
      return secrets;
    },
    management(endpoint = config.endpoints.websocketManagement) {
      if (!endpoint) throw new Error('no WebSocket management endpoint: set WEBSOCKET_MANAGEMENT_ENDPOINT');
      let client = managementClients.get(endpoint);
      if (!client) {
        // Fan-out retries throttling itself, within a bound per connection; SDK retries would multiply it.
        client = new ApiGatewayManagementApiClient({ region, endpoint, maxAttempts: 1 });
        managementClients.set(endpoint, client);
      }
      return client;
    },
  };
}
