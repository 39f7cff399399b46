import type { StreamMappingSettings } from '../../shared/mappings.js';
import type { EventSourceMappingOptions } from './options.js';

/**
 * The local mapping options that run `settings` (shared with the CDK app) as Lambda does, with
 * everything the batch handlers rely on: partial batch responses and bisect on error.
 */
export function mappingOptionsOf(
  settings: StreamMappingSettings,
): Pick<
  EventSourceMappingOptions,
  | 'batchSize'
  | 'maximumBatchingWindowMs'
  | 'parallelizationFactor'
  | 'maximumRetryAttempts'
  | 'maximumRecordAgeSeconds'
  | 'reportBatchItemFailures'
  | 'bisectBatchOnFunctionError'
> {
  return {
    batchSize: settings.batchSize,
    maximumBatchingWindowMs: settings.maxBatchingWindowSeconds * 1000,
    parallelizationFactor: settings.parallelizationFactor,
    maximumRetryAttempts: settings.retryAttempts,
    maximumRecordAgeSeconds: settings.maxRecordAgeSeconds,
    reportBatchItemFailures: true,
    bisectBatchOnFunctionError: true,
  };
}
