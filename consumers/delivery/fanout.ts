import type { UpdatePublisher } from '../../shared/delivery.js';

/** Placeholder publisher until live delivery lands: delivers nothing. */
export function createFanout(_deps: unknown): UpdatePublisher {
  return { publish: async () => {} };
}
