export { InjectedCrashError } from './lane.js';
export { startEventSourceMapping } from './mapping.js';
export type {
  BatchRetry,
  EventSourceMapping,
  EventSourceMappingOptions,
  EventSourceMappingStats,
  KinesisBatchHandler,
  StartingPosition,
} from './options.js';
export { InvalidBatchResponseError } from './outcome.js';
export { mappingOptionsOf } from './settings.js';
