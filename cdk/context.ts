import { loadConfig, ModelPrice, ModelQuotaLimits } from '../shared/config.js';
import { ENV } from '../shared/env.js';
import {
  CHUNK_MAPPING,
  INPUT_MAPPING,
  REPLAY_WINDOW_HOURS,
  RETRY_UNTIL_RECORD_AGE,
  type StreamMappingSettings,
} from '../shared/mappings.js';
import { parseModelId } from './constructs/bedrock-models.js';

/**
 * The deployment's settings, read from CDK context (`cdk.json`, or `-c key=value` on the command
 * line) and validated before any construct is created, so a bad value fails the synth at once with
 * the value given and the values allowed. Nothing here is meant to be edited in code: change
 * `cdk.json` or pass `-c`.
 */

/** A context value is missing, malformed or out of range. */
export class ContextError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContextError';
  }
}

export type { StreamMappingSettings };

/** Memory and time of one group of functions. */
export interface FunctionSettings {
  readonly memorySizeMb: number;
  readonly timeoutSeconds: number;
}

/** Thresholds of the CloudWatch alarms. */
export interface AlarmSettings {
  /** Period over which each alarm's metric is aggregated, in minutes. */
  readonly periodMinutes: number;
  /** Alarm when the generator's oldest unread work item is older than this. */
  readonly inputIteratorAgeSeconds: number;
  /** Alarm when the reassembler's oldest unread chunk record is older than this. */
  readonly chunkIteratorAgeSeconds: number;
  /** Alarm when at least this many dead letters wait in the queue. */
  readonly deadLetterMessages: number;
  /** Alarm when a function reports at least this many errors in a period. */
  readonly functionErrors: number;
  /** Alarm when Bedrock throttles at least this many invocations in a period. */
  readonly bedrockThrottles: number;
  /** Alarm when Kinesis throttles at least this many reads or writes in a period. */
  readonly kinesisThrottles: number;
  /** Alarm when the generator sees at least this many model requests throttled or refused per period, sustained. */
  readonly modelThrottles: number;
  /** Alarm when at least this many waiting items are released for redelivery per period, sustained. */
  readonly waitingReleased: number;
  /** Alarm when an item has waited at least this many seconds for quota or capacity. */
  readonly queueWaitSeconds: number;
  /** Consecutive periods the two sustained alarms need. */
  readonly sustainedPeriods: number;
  /** Alarm when the sweeper marks at least this many items stalled in a period. */
  readonly itemsStalled: number;
  /** SNS topic the alarms notify; undefined means the alarms only show on the dashboard. */
  readonly topicArn: string | undefined;
}

/** Every setting of the deployed system. */
export interface StreamsSettings {
  readonly stackName: string;
  /** The model used when a work item names none (DEFAULT_MODEL_ID). */
  readonly modelId: string;
  /** Further models work items may name; the generator may invoke only these and `modelId`. */
  readonly additionalModelIds: readonly string[];
  /** Prices per 1,000 tokens merged over the built-in table (MODEL_PRICES); undefined keeps it. */
  readonly modelPrices: Readonly<Record<string, ModelPrice>> | undefined;
  /** The account's quota per model id (MODEL_QUOTAS); undefined keeps the per-instance limits. */
  readonly modelQuotas: Readonly<Record<string, ModelQuotaLimits>> | undefined;
  /** Models to run instead of each model, in order (MODEL_FALLBACKS); the generator may invoke them. */
  readonly modelFallbacks: Readonly<Record<string, readonly string[]>> | undefined;
  /** Shards of the input stream; 0 means on-demand capacity. */
  readonly inputShardCount: number;
  /** Shards of the chunk stream; 0 means on-demand capacity. */
  readonly chunkShardCount: number;
  readonly streamRetentionHours: number;
  readonly inputMapping: StreamMappingSettings;
  readonly chunkMapping: StreamMappingSettings;
  readonly generator: FunctionSettings & {
    /** Concurrency reserved for (and capping) the generator; undefined leaves it unreserved. */
    readonly reservedConcurrency: number | undefined;
  };
  readonly reassembler: FunctionSettings;
  /** The query and WebSocket route functions. */
  readonly api: FunctionSettings;
  /** Steady-state requests per second of each API stage. */
  readonly apiThrottleRatePerSecond: number;
  /** Burst of requests each API stage accepts above the steady rate. */
  readonly apiThrottleBurst: number;
  /** Origins allowed to call the HTTP API from a browser. */
  readonly corsAllowOrigins: readonly string[];
  /** Handler limits for the generator (environment variable name → value); unset ones keep their defaults. */
  readonly producerEnvironment: Readonly<Record<string, string>>;
  /** Handler limits for delivery to viewers (environment variable name → value). */
  readonly deliveryEnvironment: Readonly<Record<string, string>>;
  /** The stall sweeper: minutes between sweeps, and its limits (environment variable name → value). */
  readonly sweeper: {
    readonly intervalMinutes: number;
    readonly environment: Readonly<Record<string, string>>;
  };
  /** Token verification settings (environment variable name → value); see `AUTH_SETTINGS`. */
  readonly authEnvironment: Readonly<Record<string, string>>;
  readonly logRetentionDays: number;
  readonly logLevel: LogLevel;
  /** Whether stateful resources (streams, tables, queue, secret, logs) outlive the stack. */
  readonly removalPolicy: 'retain' | 'destroy';
  /** Whether the stack sets the account's API Gateway CloudWatch Logs role (WebSocket access logs need one). */
  readonly apiGatewayCloudWatchRole: boolean;
  readonly alarms: AlarmSettings;
}

export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Retention periods CloudWatch Logs accepts, in days. */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/**
 * Handler limits settable from context: context key → the environment variable the handlers read.
 * Their ranges and defaults live in `shared/config.ts`, the one place the handlers validate them.
 */
export const PRODUCER_LIMITS = {
  flushIntervalMs: ENV.flushIntervalMs,
  flushMaxBytes: ENV.flushMaxBytes,
  maxBufferedBytesPerGeneration: ENV.maxBufferedBytesPerGeneration,
  maxConcurrentGenerations: ENV.maxConcurrentGenerations,
  maxGenerationAttempts: ENV.maxGenerationAttempts,
  modelRequestsPerMinute: ENV.modelRequestsPerMinute,
  modelTokensPerMinute: ENV.modelTokensPerMinute,
  defaultMaxTokens: ENV.defaultMaxTokens,
  bedrockConnectTimeoutMs: ENV.bedrockConnectTimeoutMs,
  bedrockReadTimeoutMs: ENV.bedrockReadTimeoutMs,
  cancelPollIntervalMs: ENV.cancelPollIntervalMs,
  fallbackAfterMs: ENV.fallbackAfterMs,
  maxQuotaWaitSeconds: ENV.maxQuotaWaitSeconds,
  consumerLagTargetMs: ENV.consumerLagTargetMs,
} as const;

export const DELIVERY_LIMITS = {
  fanoutConcurrency: ENV.fanoutConcurrency,
  connectionTtlSeconds: ENV.connectionTtlSeconds,
  fanoutBudgetMs: ENV.fanoutBudgetMs,
  maxSubscriptionsPerConnection: ENV.maxSubscriptionsPerConnection,
  maxConnectionsPerSubject: ENV.maxConnectionsPerSubject,
  clientMessagesPerSecond: ENV.clientMessagesPerSecond,
} as const;

/** The stall sweeper's limit: how long an item may go without progress before it is marked `stalled`. */
export const SWEEPER_LIMITS = {
  stallLimitSeconds: ENV.stallLimitSeconds,
} as const;

/**
 * Token verification settings: context key → environment variable of the functions that verify
 * tokens. With `oidcIssuer` set, tokens come from that identity provider (and the HTTP API adds a
 * JWT authorizer); without it, they are HS256 tokens signed with the stack's secret.
 */
export const AUTH_SETTINGS = {
  authAudience: ENV.authAudience,
  authMaxTokenLifetimeSeconds: ENV.authMaxLifetimeSeconds,
  authClockSkewSeconds: ENV.authClockSkewSeconds,
  oidcIssuer: ENV.authOidcIssuer,
  oidcJwksUrl: ENV.authOidcJwksUrl,
  oidcAlgorithms: ENV.authOidcAlgorithms,
  oidcTenantClaim: ENV.authTenantClaim,
  oidcScopeClaim: ENV.authScopeClaim,
} as const;

/** Default of every context key but the handler limits, whose defaults are the handlers' own. */
export const CONTEXT_DEFAULTS = {
  stackName: 'KinesisModelStreams',
  modelId: 'anthropic.claude-3-5-haiku-20241022-v1:0',
  additionalModelIds: [] as string[],
  modelPrices: undefined,
  modelQuotas: undefined,
  modelFallbacks: undefined,
  inputShardCount: 0,
  chunkShardCount: 0,
  streamRetentionHours: 24,
  // The mappings' defaults are the settings the local stack runs (shared/mappings.ts).
  inputBatchSize: INPUT_MAPPING.batchSize,
  inputBatchingWindowSeconds: INPUT_MAPPING.maxBatchingWindowSeconds,
  inputParallelizationFactor: INPUT_MAPPING.parallelizationFactor,
  inputRetryAttempts: INPUT_MAPPING.retryAttempts,
  inputMaxRecordAgeSeconds: INPUT_MAPPING.maxRecordAgeSeconds,
  chunkBatchSize: CHUNK_MAPPING.batchSize,
  chunkBatchingWindowSeconds: CHUNK_MAPPING.maxBatchingWindowSeconds,
  chunkParallelizationFactor: CHUNK_MAPPING.parallelizationFactor,
  chunkRetryAttempts: CHUNK_MAPPING.retryAttempts,
  chunkMaxRecordAgeSeconds: CHUNK_MAPPING.maxRecordAgeSeconds,
  generatorMemoryMb: 1024,
  generatorTimeoutSeconds: 900,
  generatorReservedConcurrency: undefined,
  reassemblerMemoryMb: 1024,
  reassemblerTimeoutSeconds: 120,
  apiMemoryMb: 512,
  apiTimeoutSeconds: 10,
  apiThrottleRatePerSecond: 200,
  apiThrottleBurst: 400,
  corsAllowOrigins: ['*'] as string[],
  logRetentionDays: 30,
  logLevel: 'INFO',
  removalPolicy: 'retain',
  apiGatewayCloudWatchRole: true,
  alarmPeriodMinutes: 5,
  inputIteratorAgeAlarmSeconds: 300,
  chunkIteratorAgeAlarmSeconds: 30,
  deadLetterAlarmMessages: 1,
  functionErrorsAlarmThreshold: 1,
  bedrockThrottlesAlarmThreshold: 10,
  kinesisThrottlesAlarmThreshold: 1,
  modelThrottlesAlarmThreshold: 10,
  waitingReleasedAlarmThreshold: 1,
  queueWaitAlarmSeconds: 300,
  flowControlAlarmPeriods: 3,
  itemsStalledAlarmThreshold: 1,
  sweepIntervalMinutes: 1,
  alarmTopicArn: undefined,
} as const;

/** Every context key this app reads: the settings above and the handler limits. */
export const CONTEXT_KEYS: readonly string[] = [
  ...Object.keys(CONTEXT_DEFAULTS),
  ...Object.keys(PRODUCER_LIMITS),
  ...Object.keys(DELIVERY_LIMITS),
  ...Object.keys(SWEEPER_LIMITS),
  ...Object.keys(AUTH_SETTINGS),
];

/** The longest a WebSocket route may run: API Gateway's integration timeout. */
const API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS = 29;

/**
 * Reads and validates every setting. `context` is the app's whole context
 * (`app.node.getAllContext()`); a key that looks like one of ours but is not known is refused, so
 * a misspelt setting cannot be silently ignored.
 */
export function readSettings(context: Readonly<Record<string, unknown>>): StreamsSettings {
  const known = new Set(CONTEXT_KEYS);
  const unknown = Object.keys(context).filter((key) => /^[a-z][A-Za-z0-9]*$/.test(key) && !known.has(key));
  if (unknown.length > 0) {
    throw new ContextError(
      `unknown context key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; ` +
        `known keys: ${[...known].join(', ')}`,
    );
  }
  const read = new ContextReader(context);

  const mapping = (prefix: 'input' | 'chunk'): StreamMappingSettings => ({
    batchSize: read.integer(`${prefix}BatchSize`, 1, 10_000),
    maxBatchingWindowSeconds: read.integer(`${prefix}BatchingWindowSeconds`, 0, 300),
    parallelizationFactor: read.integer(`${prefix}ParallelizationFactor`, 1, 10),
    retryAttempts: read.integer(
      `${prefix}RetryAttempts`,
      RETRY_UNTIL_RECORD_AGE,
      10_000,
      ' (-1 = until the record age)',
    ),
    maxRecordAgeSeconds: read.integer(`${prefix}MaxRecordAgeSeconds`, 60, 604_800),
  });

  const streamRetentionHours = read.integer('streamRetentionHours', 24, 8760);
  const inputMapping = mapping('input');
  const chunkMapping = mapping('chunk');
  // An on-failure entry holds only shard and sequence ranges: its records can be replayed only
  // while the stream still has them.
  for (const [prefix, m] of [
    ['input', inputMapping],
    ['chunk', chunkMapping],
  ] as const) {
    const limit = (streamRetentionHours - REPLAY_WINDOW_HOURS) * 3600;
    if (m.maxRecordAgeSeconds > limit)
      throw new ContextError(
        `context "${prefix}MaxRecordAgeSeconds"=${m.maxRecordAgeSeconds} leaves less than ${REPLAY_WINDOW_HOURS} h ` +
          `of the stream's ${streamRetentionHours} h retention to replay dead letters: at most ${limit}`,
      );
  }

  const producerEnvironment = read.handlerLimits(PRODUCER_LIMITS);
  const deliveryEnvironment = read.handlerLimits(DELIVERY_LIMITS);
  const authEnvironment = read.handlerLimits(AUTH_SETTINGS);
  try {
    loadConfig(authEnvironment);
  } catch (err) {
    throw new ContextError(`token settings are not valid: ${(err as Error).message}`);
  }

  const generator = {
    memorySizeMb: read.integer('generatorMemoryMb', 128, 10_240),
    timeoutSeconds: read.integer('generatorTimeoutSeconds', 1, 900),
    reservedConcurrency: read.optionalInteger('generatorReservedConcurrency', 1, 100_000),
  };
  // The generator streams a whole generation inside one invocation: it must outlive one silent
  // model read, or every slow model response would time the function out mid-text.
  const readTimeoutMs = loadConfig(producerEnvironment).producer.bedrockReadTimeoutMs;
  if (generator.timeoutSeconds * 1000 <= readTimeoutMs) {
    throw new ContextError(
      `context "generatorTimeoutSeconds"=${generator.timeoutSeconds} must exceed the model read timeout ` +
        `(bedrockReadTimeoutMs=${readTimeoutMs}): allowed ${Math.floor(readTimeoutMs / 1000) + 1} to 900`,
    );
  }

  const inputShardCount = read.integer('inputShardCount', 0, 10_000, ' (0 = on-demand)');
  checkGeneratorConcurrency(generator.reservedConcurrency, inputShardCount, inputMapping);

  const stackName = read.string('stackName');
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(stackName)) {
    throw new ContextError(
      `context "stackName"=${JSON.stringify(stackName)} is not valid: expected a letter then up to 127 letters, digits or hyphens`,
    );
  }

  const modelId = read.string('modelId');
  const additionalModelIds = read.stringList('additionalModelIds');
  const { modelQuotas, modelFallbacks } = readFlowControl(read, [modelId, ...additionalModelIds]);

  return {
    stackName,
    modelId,
    additionalModelIds,
    modelPrices: read.modelPrices('modelPrices'),
    modelQuotas,
    modelFallbacks,
    inputShardCount,
    chunkShardCount: read.integer('chunkShardCount', 0, 10_000, ' (0 = on-demand)'),
    streamRetentionHours,
    inputMapping,
    chunkMapping,
    generator,
    reassembler: {
      memorySizeMb: read.integer('reassemblerMemoryMb', 128, 10_240),
      timeoutSeconds: read.integer('reassemblerTimeoutSeconds', 1, 900),
    },
    api: {
      memorySizeMb: read.integer('apiMemoryMb', 128, 10_240),
      timeoutSeconds: read.integer('apiTimeoutSeconds', 1, API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS),
    },
    apiThrottleRatePerSecond: read.integer('apiThrottleRatePerSecond', 1, 1_000_000),
    apiThrottleBurst: read.integer('apiThrottleBurst', 1, 1_000_000),
    corsAllowOrigins: read.stringList('corsAllowOrigins'),
    producerEnvironment,
    deliveryEnvironment,
    sweeper: {
      intervalMinutes: read.integer('sweepIntervalMinutes', 1, 60),
      environment: read.handlerLimits(SWEEPER_LIMITS),
    },
    authEnvironment,
    logRetentionDays: read.oneOf('logRetentionDays', LOG_RETENTION_DAYS, (v) => Number(v)),
    logLevel: read.oneOf('logLevel', LOG_LEVELS, (v) => String(v).toUpperCase()),
    removalPolicy: read.oneOf('removalPolicy', ['retain', 'destroy'] as const, (v) =>
      String(v).toLowerCase(),
    ),
    apiGatewayCloudWatchRole: read.boolean('apiGatewayCloudWatchRole'),
    alarms: {
      periodMinutes: read.integer('alarmPeriodMinutes', 1, 60),
      inputIteratorAgeSeconds: read.integer('inputIteratorAgeAlarmSeconds', 1, 604_800),
      chunkIteratorAgeSeconds: read.integer('chunkIteratorAgeAlarmSeconds', 1, 604_800),
      deadLetterMessages: read.integer('deadLetterAlarmMessages', 1, 1_000_000),
      functionErrors: read.integer('functionErrorsAlarmThreshold', 1, 1_000_000),
      bedrockThrottles: read.integer('bedrockThrottlesAlarmThreshold', 1, 1_000_000),
      kinesisThrottles: read.integer('kinesisThrottlesAlarmThreshold', 1, 1_000_000),
      modelThrottles: read.integer('modelThrottlesAlarmThreshold', 1, 1_000_000),
      waitingReleased: read.integer('waitingReleasedAlarmThreshold', 1, 1_000_000),
      queueWaitSeconds: read.integer('queueWaitAlarmSeconds', 1, 86_400),
      sustainedPeriods: read.integer('flowControlAlarmPeriods', 1, 60),
      itemsStalled: read.integer('itemsStalledAlarmThreshold', 1, 1_000_000),
      topicArn: read.optionalSnsTopicArn('alarmTopicArn'),
    },
  };
}

/**
 * A Kinesis mapping runs up to shards × parallelization factor invocations and has no maximum
 * concurrency of its own (SQS mappings do). On a provisioned stream that product is already the
 * generator's bound; a reservation below it would leave shards' batches throttled behind each
 * other, so it is refused in favour of a lower parallelization factor. On an on-demand stream the
 * shard count grows by itself and the reservation is the only cap.
 */
function checkGeneratorConcurrency(
  reserved: number | undefined,
  inputShardCount: number,
  inputMapping: StreamMappingSettings,
): void {
  const pollers = inputShardCount * inputMapping.parallelizationFactor;
  if (reserved === undefined || inputShardCount === 0 || reserved >= pollers) return;
  throw new ContextError(
    `context "generatorReservedConcurrency"=${reserved} is below what the input mapping runs at once ` +
      `(inputShardCount ${inputShardCount} × inputParallelizationFactor ${inputMapping.parallelizationFactor} = ` +
      `${pollers}): allowed ${pollers} or more, or lower inputParallelizationFactor to bound the generator`,
  );
}

/**
 * Quotas and fallbacks, checked against the configured models: a fallback list must belong to a
 * configured model, and a quota to a model the generator may invoke (configured or a fallback),
 * so a misspelt model id fails here rather than leaving a model without its quota.
 */
function readFlowControl(read: ContextReader, configured: readonly string[]) {
  const modelFallbacks = read.modelFallbacks('modelFallbacks');
  const modelQuotas = read.modelQuotas('modelQuotas');
  for (const modelId of Object.keys(modelFallbacks ?? {})) {
    if (!configured.includes(modelId)) {
      throw new ContextError(
        `context "modelFallbacks" names model ${JSON.stringify(modelId)}, which is not configured: ` +
          `expected one of modelId / additionalModelIds (${configured.join(', ')})`,
      );
    }
  }
  const invocable = [...configured, ...Object.values(modelFallbacks ?? {}).flat()];
  for (const modelId of Object.keys(modelQuotas ?? {})) {
    if (!invocable.includes(modelId)) {
      throw new ContextError(
        `context "modelQuotas" names model ${JSON.stringify(modelId)}, which the generator never invokes: ` +
          `expected one of ${[...new Set(invocable)].join(', ')}`,
      );
    }
  }
  return { modelQuotas, modelFallbacks };
}

type Key = keyof typeof CONTEXT_DEFAULTS;

/** Typed access to context values, which arrive as JSON from cdk.json or as strings from `-c`. */
class ContextReader {
  constructor(private readonly context: Readonly<Record<string, unknown>>) {}

  private raw(key: Key): unknown {
    const value = this.context[key];
    return value === undefined || value === null ? CONTEXT_DEFAULTS[key] : value;
  }

  private fail(key: string, value: unknown, expected: string): never {
    throw new ContextError(`context "${key}"=${JSON.stringify(value)} is not valid: expected ${expected}`);
  }

  string(key: Key): string {
    const value = this.raw(key);
    if (typeof value !== 'string' || value.trim() === '') this.fail(key, value, 'a non-empty string');
    return value.trim();
  }

  integer(key: Key, min: number, max: number, note = ''): number {
    const value = this.raw(key);
    const parsed = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : value;
    if (typeof parsed !== 'number' || !Number.isInteger(parsed) || parsed < min || parsed > max) {
      this.fail(key, value, `an integer from ${min} to ${max}${note}`);
    }
    return parsed;
  }

  optionalInteger(key: Key, min: number, max: number): number | undefined {
    const value = this.raw(key);
    if (value === undefined || value === '') return undefined;
    return this.integer(key, min, max);
  }

  boolean(key: Key): boolean {
    const value = this.raw(key);
    if (value === true || value === 'true') return true;
    if (value === false || value === 'false') return false;
    return this.fail(key, value, 'true or false');
  }

  oneOf<T extends string | number>(
    key: Key,
    allowed: readonly T[],
    normalize: (value: unknown) => unknown,
  ): T {
    const value = this.raw(key);
    const normalized = normalize(value);
    const match = allowed.find((a) => a === normalized);
    if (match === undefined) this.fail(key, value, `one of ${allowed.join(', ')}`);
    return match;
  }

  /** A JSON array of strings, or (from `-c`) a comma-separated list. */
  stringList(key: Key): string[] {
    const value = this.raw(key);
    const list =
      typeof value === 'string'
        ? value.trim().startsWith('[')
          ? parseJson(value)
          : value
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
        : value;
    if (!Array.isArray(list) || !list.every((s) => typeof s === 'string' && s.trim() !== '')) {
      this.fail(key, value, 'a list of non-empty strings (a JSON array, or comma-separated)');
    }
    return list.map((s: string) => s.trim());
  }

  modelPrices(key: Key): Record<string, ModelPrice> | undefined {
    const value = this.raw(key);
    if (value === undefined) return undefined;
    const object = typeof value === 'string' ? parseJson(value) : value;
    const expected = 'an object of model id → { "inputPer1k": number ≥ 0, "outputPer1k": number ≥ 0 } (USD)';
    if (typeof object !== 'object' || object === null || Array.isArray(object))
      this.fail(key, value, expected);
    const prices: Record<string, ModelPrice> = {};
    for (const [modelId, price] of Object.entries(object)) {
      const parsed = ModelPrice.safeParse(price);
      if (!parsed.success) this.fail(`${key}.${modelId}`, price, expected);
      prices[modelId] = parsed.data;
    }
    return prices;
  }

  private object(key: Key, expected: string): Record<string, unknown> | undefined {
    const value = this.raw(key);
    if (value === undefined || value === '') return undefined;
    const object = typeof value === 'string' ? parseJson(value) : value;
    if (typeof object !== 'object' || object === null || Array.isArray(object))
      this.fail(key, value, expected);
    return object as Record<string, unknown>;
  }

  modelQuotas(key: Key): Record<string, ModelQuotaLimits> | undefined {
    const expected =
      'an object of model id → { "requestsPerMinute": integer ≥ 0, "tokensPerMinute": integer ≥ 0, ' +
      '"outputBurndown"?: number 1–100 } (the account quota)';
    const object = this.object(key, expected);
    if (object === undefined) return undefined;
    const quotas: Record<string, ModelQuotaLimits> = {};
    for (const [modelId, limits] of Object.entries(object)) {
      this.modelIdOf(key, modelId);
      const parsed = ModelQuotaLimits.strict().safeParse(limits);
      if (!parsed.success) this.fail(`${key}.${modelId}`, limits, expected);
      quotas[modelId] = parsed.data;
    }
    return quotas;
  }

  modelFallbacks(key: Key): Record<string, string[]> | undefined {
    const expected = 'an object of model id → a list of 1 to 5 other model ids, tried in order';
    const object = this.object(key, expected);
    if (object === undefined) return undefined;
    const fallbacks: Record<string, string[]> = {};
    for (const [modelId, list] of Object.entries(object)) {
      this.modelIdOf(key, modelId);
      const valid =
        Array.isArray(list) &&
        list.length >= 1 &&
        list.length <= 5 &&
        list.every((id) => typeof id === 'string' && id !== modelId);
      if (!valid) this.fail(`${key}.${modelId}`, list, expected);
      fallbacks[modelId] = (list as string[]).map((id) => this.modelIdOf(`${key}.${modelId}`, id));
    }
    return fallbacks;
  }

  /** A model id as Bedrock knows it (foundation model or cross-region profile), or a ContextError. */
  private modelIdOf(key: string, id: string): string {
    try {
      return parseModelId(id).id;
    } catch (err) {
      throw new ContextError(`context "${key}": ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  optionalSnsTopicArn(key: Key): string | undefined {
    const value = this.raw(key);
    if (value === undefined || value === '') return undefined;
    if (typeof value !== 'string' || !/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$/.test(value)) {
      this.fail(key, value, 'an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)');
    }
    return value;
  }

  /**
   * Handler limits as environment variables, each checked by the handlers' own configuration
   * schema so the deployed functions can never start with a value they would refuse.
   */
  handlerLimits(keys: Readonly<Record<string, string>>): Record<string, string> {
    const environment: Record<string, string> = {};
    for (const [key, envName] of Object.entries(keys)) {
      const value = this.context[key];
      if (value === undefined || value === null || value === '') continue;
      const text = String(value);
      try {
        loadConfig({ [envName]: text });
      } catch (err) {
        const reason =
          err instanceof Error ? err.message.replace(/^invalid configuration: /, '') : String(err);
        throw new ContextError(`context "${key}"=${JSON.stringify(value)} is not valid: ${reason}`);
      }
      environment[envName] = text;
    }
    return environment;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
