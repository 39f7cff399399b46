import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** Service name in logs and the metrics namespace. */
export const SERVICE = 'kinesis-model-streams';
export const METRICS_NAMESPACE = 'KinesisModelStreams';

/** A structured JSON logger for one function (Powertools). */
export function createLogger(functionName: string): Logger {
  return new Logger({ serviceName: SERVICE, persistentKeys: { function: functionName } });
}

/**
 * CloudWatch metrics in Embedded Metric Format (Powertools). Set `POWERTOOLS_METRICS_DISABLED=true`
 * to silence them (the local stack does, and counts in process instead).
 */
export function createMetrics(functionName: string): Metrics {
  return new Metrics({
    namespace: METRICS_NAMESPACE,
    serviceName: SERVICE,
    defaultDimensions: { function: functionName },
  });
}

export { MetricUnit };
export type { Logger, Metrics };
