import { createAwsClients } from '../../shared/aws-clients.js';
import { loadConfig } from '../../shared/config.js';
import { createLogger, createMetrics } from '../../shared/telemetry.js';
import { createSweeper, type SweepResult } from './sweeper.js';

export { createSweeper, type SweeperDeps, type SweepResult } from './sweeper.js';

let instance: (() => Promise<SweepResult>) | undefined;

/** Scheduled (EventBridge rule): marks stalled items `failed` with code `stalled`. */
export async function handler(): Promise<SweepResult> {
  if (!instance) {
    const config = loadConfig();
    instance = createSweeper({
      config,
      clients: createAwsClients(config),
      logger: createLogger('sweeper'),
      metrics: createMetrics('sweeper'),
      stallLimitMs: config.delivery.stallLimitSeconds * 1000,
    });
  }
  return instance();
}
