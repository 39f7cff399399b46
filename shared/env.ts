/**
 * Every environment variable the handlers read, by name. The CDK app sets function environments
 * from these same constants, and the local stack sets them for its in-process handlers.
 */
export const ENV = {
  region: 'AWS_REGION',
  inputStream: 'INPUT_STREAM_NAME',
  chunkStream: 'CHUNK_STREAM_NAME',
  itemsTable: 'ITEMS_TABLE',
  textTable: 'TEXT_TABLE',
  connectionsTable: 'CONNECTIONS_TABLE',
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  defaultModelId: 'DEFAULT_MODEL_ID',
  modelPrices: 'MODEL_PRICES',
  authSecret: 'AUTH_TOKEN_SECRET',
  kinesisEndpoint: 'KINESIS_ENDPOINT',
  dynamodbEndpoint: 'DYNAMODB_ENDPOINT',
  bedrockEndpoint: 'BEDROCK_ENDPOINT',
  sqsEndpoint: 'SQS_ENDPOINT',
  websocketManagementEndpoint: 'WEBSOCKET_MANAGEMENT_ENDPOINT',
  flushIntervalMs: 'FLUSH_INTERVAL_MS',
  flushMaxBytes: 'FLUSH_MAX_BYTES',
  maxBufferedBytesPerGeneration: 'MAX_BUFFERED_BYTES_PER_GENERATION',
  maxConcurrentGenerations: 'MAX_CONCURRENT_GENERATIONS',
  maxGenerationAttempts: 'MAX_GENERATION_ATTEMPTS',
  modelRequestsPerMinute: 'MODEL_REQUESTS_PER_MINUTE',
  modelTokensPerMinute: 'MODEL_TOKENS_PER_MINUTE',
  defaultMaxTokens: 'DEFAULT_MAX_TOKENS',
  bedrockConnectTimeoutMs: 'BEDROCK_CONNECT_TIMEOUT_MS',
  bedrockReadTimeoutMs: 'BEDROCK_READ_TIMEOUT_MS',
  cancelPollIntervalMs: 'CANCEL_POLL_INTERVAL_MS',
  fanoutConcurrency: 'FANOUT_CONCURRENCY',
  connectionTtlSeconds: 'CONNECTION_TTL_SECONDS',
  fanoutBudgetMs: 'FANOUT_BUDGET_MS',
  stallLimitSeconds: 'STALL_LIMIT_SECONDS',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];
