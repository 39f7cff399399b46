import type { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import type { ModelPrice } from '../../shared/config.js';
import type { BackoffOptions } from '../../shared/retry.js';
import type { Logger, Metrics } from '../../shared/telemetry.js';
import type { ChunkSink } from './chunk-sink.js';
import type { ClaimStore } from './claims.js';
import type { Admission } from './flow/admission.js';
import type { CircuitBreaker } from './flow/breaker.js';
import type { FleetQuota } from './flow/fleet-quota.js';
import type { ModelAdapter, ResolvedModel } from './models/index.js';
import type { GeneratorStats } from './stats.js';

/** Steps of a generation's ending at which tests and chaos runs may simulate a crash. */
export type CrashPoint = 'before-ending' | 'ending-recorded' | 'end-put';

/** Settings of every generation of a producer. */
export interface GenerationSettings {
  readonly flushIntervalMs: number;
  readonly flushMaxBytes: number;
  readonly maxBufferedBytes: number;
  /** Attempts per claim that may fail mid-stream, the first included. */
  readonly maxAttempts: number;
  readonly defaultMaxTokens: number;
  /** Delay before a new attempt after a failed one. */
  readonly attemptBackoff: BackoffOptions;
  /** A claim's lease while its item waits for quota or capacity (renewed at half of it). */
  readonly waitLeaseMs: number;
  /** Longest an item waits for quota, capacity or an available model. */
  readonly maxWaitMs: number;
  /** Models to fall back to, per model id. */
  readonly fallbacks: Readonly<Record<string, readonly string[]>>;
  readonly prices: Readonly<Record<string, ModelPrice>>;
}

/** What generations use; shared by every generation of a producer instance. */
export interface GenerationEnv {
  readonly bedrock: BedrockRuntimeClient;
  readonly sink: ChunkSink;
  readonly claims: ClaimStore;
  readonly admission: Admission;
  readonly quota: FleetQuota;
  readonly breakerOf: (model: string) => CircuitBreaker;
  readonly resolve: (modelId: string) => { readonly model: ResolvedModel; readonly adapter: ModelAdapter };
  readonly settings: GenerationSettings;
  readonly stats: GeneratorStats;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now: () => number;
  /** Throws `SimulatedCrashError` where a crash is injected; a no-op otherwise. */
  readonly crashAt: (point: CrashPoint, itemId: string) => void;
}
