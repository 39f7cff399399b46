export type { BedrockStandInStats } from './control.js';
export { STREAM_EXCEPTIONS, type StreamException } from './event-stream.js';
export {
  FAULTS_ENV,
  type FaultRule,
  type Faults,
  faultsFromEnv,
  parseFaults,
  type StreamFaultRule,
} from './faults.js';
export { type Generation, type GenerationInput, generate } from './generator.js';
export { type ModelFamily, resolveModelId } from './model-id.js';
export {
  type ModelQuota,
  type ModelUsage,
  parseQuotas,
  QUOTA_WINDOW_MS,
  QUOTAS_ENV,
  type Quotas,
  type QuotasReport,
  type QuotaWindow,
  quotasFromEnv,
} from './quotas.js';
export {
  type BedrockStandIn,
  type BedrockStandInOptions,
  standInOptionsFromEnv,
  startBedrockStandIn,
} from './server.js';
export {
  DEFAULT_TIMING,
  TIME_TO_FIRST_TOKEN_ENV,
  TOKENS_PER_SECOND_ENV,
  type Timing,
  type TimingUpdate,
  timingFromEnv,
} from './timing.js';
