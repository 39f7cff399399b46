import { z } from 'zod';
import { DEFAULT_AUDIENCE, DEFAULT_CLOCK_SKEW_SECONDS, DEFAULT_MAX_LIFETIME_SECONDS } from './auth.js';
import { ENV } from './env.js';
import { ConfigError } from './errors.js';

/** Price of a model per 1,000 tokens, in USD. */
export const ModelPrice = z.object({
  inputPer1k: z.number().nonnegative(),
  outputPer1k: z.number().nonnegative(),
});
export type ModelPrice = z.infer<typeof ModelPrice>;

/** Default price table (on-demand prices per 1,000 tokens); override with MODEL_PRICES. */
export const DEFAULT_MODEL_PRICES: Record<string, ModelPrice> = {
  'anthropic.claude-3-5-haiku-20241022-v1:0': { inputPer1k: 0.0008, outputPer1k: 0.004 },
  'anthropic.claude-3-5-sonnet-20241022-v2:0': { inputPer1k: 0.003, outputPer1k: 0.015 },
  'anthropic.claude-3-haiku-20240307-v1:0': { inputPer1k: 0.00025, outputPer1k: 0.00125 },
  'meta.llama3-1-8b-instruct-v1:0': { inputPer1k: 0.00022, outputPer1k: 0.00022 },
  'meta.llama3-1-70b-instruct-v1:0': { inputPer1k: 0.00072, outputPer1k: 0.00072 },
  'amazon.nova-lite-v1:0': { inputPer1k: 0.00006, outputPer1k: 0.00024 },
  'amazon.nova-micro-v1:0': { inputPer1k: 0.000035, outputPer1k: 0.00014 },
};

/**
 * A model's Bedrock quota in the account and region, as the producers share it: requests and tokens
 * per minute, and how many quota tokens each output token costs when a request settles (some models
 * count each output token several times).
 */
export const ModelQuotaLimits = z.object({
  requestsPerMinute: z.number().int().min(0),
  tokensPerMinute: z.number().int().min(0),
  outputBurndown: z.number().min(1).max(100).default(1),
});
export type ModelQuotaLimits = z.infer<typeof ModelQuotaLimits>;

const url = z.string().url();
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const json = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((raw, ctx) => {
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not valid JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

/**
 * Every setting, its environment variable and its default. Names of AWS resources default to the
 * local stack's names; the CDK app always sets them.
 */
const Schema = z.object({
  [ENV.region]: z.string().min(1).default('us-east-1'),
  [ENV.inputStream]: z.string().min(1).default('work-items'),
  [ENV.chunkStream]: z.string().min(1).default('chunks'),
  [ENV.itemsTable]: z.string().min(1).default('items'),
  [ENV.textTable]: z.string().min(1).default('item-text'),
  [ENV.connectionsTable]: z.string().min(1).default('connections'),
  [ENV.coordinationTable]: z.string().min(1).default('coordination'),
  [ENV.deadLetterQueueUrl]: url.optional(),
  [ENV.defaultModelId]: z.string().min(1).default('anthropic.claude-3-5-haiku-20241022-v1:0'),
  [ENV.modelPrices]: json(z.record(z.string(), ModelPrice)).optional(),
  [ENV.authSecret]: z.string().min(32, 'must be at least 32 characters').optional(),
  [ENV.authSecretArn]: z.string().startsWith('arn:', 'must be a Secrets Manager ARN').optional(),
  [ENV.authAudience]: z.string().min(1).default(DEFAULT_AUDIENCE),
  [ENV.authMaxLifetimeSeconds]: int(60, 7 * 24 * 3600).default(DEFAULT_MAX_LIFETIME_SECONDS),
  [ENV.authClockSkewSeconds]: int(0, 300).default(DEFAULT_CLOCK_SKEW_SECONDS),
  [ENV.authOidcIssuer]: url.optional(),
  [ENV.authOidcJwksUrl]: url.optional(),
  [ENV.authOidcAlgorithms]: z
    .string()
    .regex(
      /^(RS|PS|ES)(256|384|512)(,(RS|PS|ES)(256|384|512))*$/,
      'must be a comma-separated list like RS256,ES256',
    )
    .default('RS256'),
  [ENV.authTenantClaim]: z.string().min(1).default('tenant'),
  [ENV.authScopeClaim]: z.string().min(1).default('scope'),
  [ENV.kinesisEndpoint]: url.optional(),
  [ENV.dynamodbEndpoint]: url.optional(),
  [ENV.bedrockEndpoint]: url.optional(),
  [ENV.sqsEndpoint]: url.optional(),
  [ENV.websocketManagementEndpoint]: url.optional(),
  [ENV.flushIntervalMs]: int(1, 10_000).default(50),
  [ENV.flushMaxBytes]: int(256, 16 * 1024).default(4096),
  [ENV.maxBufferedBytesPerGeneration]: int(1024, 64 * 1024 * 1024).default(256 * 1024),
  [ENV.maxConcurrentGenerations]: int(1, 10_000).default(200),
  [ENV.maxGenerationAttempts]: int(1, 10).default(3),
  [ENV.modelRequestsPerMinute]: int(1, 1_000_000).default(6_000),
  [ENV.modelTokensPerMinute]: int(1, 1_000_000_000).default(10_000_000),
  [ENV.modelQuotas]: json(z.record(z.string().min(1), ModelQuotaLimits)).optional(),
  [ENV.modelFallbacks]: json(
    z.record(z.string().min(1), z.array(z.string().min(1)).min(1).max(5)),
  ).optional(),
  [ENV.fallbackAfterMs]: int(0, 3_600_000).default(30_000),
  [ENV.maxQuotaWaitSeconds]: int(1, 7 * 24 * 3600).default(3_600),
  [ENV.consumerLagTargetMs]: int(50, 600_000).default(1_000),
  [ENV.defaultMaxTokens]: int(1, 200_000).default(1024),
  [ENV.bedrockConnectTimeoutMs]: int(100, 60_000).default(3_000),
  [ENV.bedrockReadTimeoutMs]: int(1_000, 900_000).default(60_000),
  [ENV.cancelPollIntervalMs]: int(50, 60_000).default(500),
  [ENV.fanoutConcurrency]: int(1, 1_000).default(32),
  [ENV.connectionTtlSeconds]: int(60, 7 * 24 * 3600).default(2 * 3600 + 600),
  // Time the fan-out of one consumer batch may take; a connection not served by then is dropped from it.
  [ENV.fanoutBudgetMs]: int(100, 60_000).default(1_500),
  // Per-connection and per-token-subject limits of the WebSocket API (answered with error codes).
  [ENV.maxSubscriptionsPerConnection]: int(1, 100_000).default(100),
  [ENV.maxConnectionsPerSubject]: int(1, 100_000).default(20),
  [ENV.clientMessagesPerSecond]: int(1, 10_000).default(20),
  // An item queued or streaming without progress this long is marked failed (`stalled`).
  [ENV.stallLimitSeconds]: int(60, 7 * 24 * 3600).default(15 * 60),
});

/** The typed configuration of every handler. */
export interface Config {
  readonly region: string;
  readonly inputStream: string;
  readonly chunkStream: string;
  readonly tables: {
    readonly items: string;
    readonly text: string;
    readonly connections: string;
    /** Rows every producer and consumer instance shares: model quotas, breakers, consumer lag. */
    readonly coordination: string;
  };
  /** Where handler-level dead letters go (SQS); unset means they are logged and counted only. */
  readonly deadLetterQueueUrl: string | undefined;
  readonly defaultModelId: string;
  readonly modelPrices: Readonly<Record<string, ModelPrice>>;
  /** How tokens are verified; used only by the functions that check tokens. */
  readonly auth: AuthConfig;
  /** Endpoint overrides; unset means the AWS default endpoint of the region. */
  readonly endpoints: {
    readonly kinesis: string | undefined;
    readonly dynamodb: string | undefined;
    readonly bedrock: string | undefined;
    readonly sqs: string | undefined;
    readonly websocketManagement: string | undefined;
  };
  readonly producer: {
    readonly flushIntervalMs: number;
    readonly flushMaxBytes: number;
    readonly maxBufferedBytesPerGeneration: number;
    readonly maxConcurrentGenerations: number;
    readonly maxGenerationAttempts: number;
    readonly modelRequestsPerMinute: number;
    readonly modelTokensPerMinute: number;
    /** Account quotas per model id; a model not listed is assumed to have the two limits above. */
    readonly modelQuotas: Readonly<Record<string, ModelQuotaLimits>>;
    /** Models to run instead of a model unavailable or out of quota for `fallbackAfterMs`. */
    readonly modelFallbacks: Readonly<Record<string, readonly string[]>>;
    readonly fallbackAfterMs: number;
    /** Longest an item may wait for quota or capacity before it fails with `quota_wait_exceeded`. */
    readonly maxQuotaWaitMs: number;
    /** Consumer lag above which producers admit fewer new generations. */
    readonly consumerLagTargetMs: number;
    readonly defaultMaxTokens: number;
    readonly bedrockConnectTimeoutMs: number;
    readonly bedrockReadTimeoutMs: number;
    readonly cancelPollIntervalMs: number;
  };
  readonly delivery: {
    readonly fanoutConcurrency: number;
    readonly connectionTtlSeconds: number;
    readonly fanoutBudgetMs: number;
    readonly stallLimitSeconds: number;
    /** Subscriptions one connection may hold (`too_many_subscriptions` beyond). */
    readonly maxSubscriptionsPerConnection: number;
    /** Open connections per token subject (`$connect` refused with 429 beyond). */
    readonly maxConnectionsPerSubject: number;
    /** Client messages per second per connection, averaged over a window (`rate_limited` beyond). */
    readonly clientMessagesPerSecond: number;
  };
}

/**
 * Token verification: OIDC when an issuer is set, else HMAC with the key itself (local, tests) or
 * the Secrets Manager secret holding it (AWS).
 */
export interface AuthConfig {
  readonly secret: string | undefined;
  readonly secretArn: string | undefined;
  readonly audience: string;
  readonly maxLifetimeSeconds: number;
  readonly clockSkewSeconds: number;
  readonly claims: { readonly tenant: string; readonly scope: string };
  readonly oidc:
    | { readonly issuer: string; readonly jwksUrl: string; readonly algorithms: readonly string[] }
    | undefined;
}

/**
 * Reads and validates the environment. Throws a `ConfigError` naming every bad variable, with the
 * value found and what was expected.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const present = Object.fromEntries(
    Object.keys(Schema.shape).flatMap((name) => {
      const value = env[name];
      return value === undefined || value === '' ? [] : [[name, value]];
    }),
  );
  const parsed = Schema.safeParse(present);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      return `${name}=${JSON.stringify(env[name])}: ${issue.message}`;
    });
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  const c = parsed.data;
  return {
    region: c[ENV.region],
    inputStream: c[ENV.inputStream],
    chunkStream: c[ENV.chunkStream],
    tables: {
      items: c[ENV.itemsTable],
      text: c[ENV.textTable],
      connections: c[ENV.connectionsTable],
      coordination: c[ENV.coordinationTable],
    },
    deadLetterQueueUrl: c[ENV.deadLetterQueueUrl],
    defaultModelId: c[ENV.defaultModelId],
    modelPrices: { ...DEFAULT_MODEL_PRICES, ...c[ENV.modelPrices] },
    auth: {
      secret: c[ENV.authSecret],
      secretArn: c[ENV.authSecretArn],
      audience: c[ENV.authAudience],
      maxLifetimeSeconds: c[ENV.authMaxLifetimeSeconds],
      clockSkewSeconds: c[ENV.authClockSkewSeconds],
      claims: { tenant: c[ENV.authTenantClaim], scope: c[ENV.authScopeClaim] },
      oidc: oidcOf(c[ENV.authOidcIssuer], c[ENV.authOidcJwksUrl], c[ENV.authOidcAlgorithms]),
    },
    endpoints: {
      kinesis: c[ENV.kinesisEndpoint],
      dynamodb: c[ENV.dynamodbEndpoint],
      bedrock: c[ENV.bedrockEndpoint],
      sqs: c[ENV.sqsEndpoint],
      websocketManagement: c[ENV.websocketManagementEndpoint],
    },
    producer: {
      flushIntervalMs: c[ENV.flushIntervalMs],
      flushMaxBytes: c[ENV.flushMaxBytes],
      maxBufferedBytesPerGeneration: c[ENV.maxBufferedBytesPerGeneration],
      maxConcurrentGenerations: c[ENV.maxConcurrentGenerations],
      maxGenerationAttempts: c[ENV.maxGenerationAttempts],
      modelRequestsPerMinute: c[ENV.modelRequestsPerMinute],
      modelTokensPerMinute: c[ENV.modelTokensPerMinute],
      modelQuotas: c[ENV.modelQuotas] ?? {},
      modelFallbacks: c[ENV.modelFallbacks] ?? {},
      fallbackAfterMs: c[ENV.fallbackAfterMs],
      maxQuotaWaitMs: c[ENV.maxQuotaWaitSeconds] * 1000,
      consumerLagTargetMs: c[ENV.consumerLagTargetMs],
      defaultMaxTokens: c[ENV.defaultMaxTokens],
      bedrockConnectTimeoutMs: c[ENV.bedrockConnectTimeoutMs],
      bedrockReadTimeoutMs: c[ENV.bedrockReadTimeoutMs],
      cancelPollIntervalMs: c[ENV.cancelPollIntervalMs],
    },
    delivery: {
      fanoutConcurrency: c[ENV.fanoutConcurrency],
      connectionTtlSeconds: c[ENV.connectionTtlSeconds],
      fanoutBudgetMs: c[ENV.fanoutBudgetMs],
      stallLimitSeconds: c[ENV.stallLimitSeconds],
      maxSubscriptionsPerConnection: c[ENV.maxSubscriptionsPerConnection],
      maxConnectionsPerSubject: c[ENV.maxConnectionsPerSubject],
      clientMessagesPerSecond: c[ENV.clientMessagesPerSecond],
    },
  };
}

/** OIDC settings when an issuer is configured; the JWKS defaults to `<issuer>/.well-known/jwks.json` (Cognito's). */
function oidcOf(
  issuer: string | undefined,
  jwksUrl: string | undefined,
  algorithms: string,
): AuthConfig['oidc'] {
  if (!issuer) {
    if (jwksUrl) throw new ConfigError(`${ENV.authOidcJwksUrl} is set but ${ENV.authOidcIssuer} is not`);
    return undefined;
  }
  return {
    issuer,
    jwksUrl: jwksUrl ?? `${issuer.replace(/\/$/, '')}/.well-known/jwks.json`,
    algorithms: algorithms.split(','),
  };
}

/** Returns a setting that only some functions need, or fails loudly naming its variable. */
export function required<T>(value: T | undefined, name: string): T {
  if (value === undefined) throw new ConfigError(`${name} is required by this function but is not set`);
  return value;
}

/** Estimated cost in USD of `usage` on `modelId`, or undefined when the model has no price. */
export function estimateCostUsd(
  prices: Readonly<Record<string, ModelPrice>>,
  modelId: string,
  usage: { inputTokens: number; outputTokens: number },
): number | undefined {
  const price = prices[modelId] ?? prices[modelId.replace(/^[a-z]{2,4}\./, '')];
  if (!price) return undefined;
  return (usage.inputTokens / 1000) * price.inputPer1k + (usage.outputTokens / 1000) * price.outputPer1k;
}
