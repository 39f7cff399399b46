import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';

/** Service name in logs and the metrics namespace. */
export const SERVICE = 'kinesis-model-streams';
export const METRICS_NAMESPACE = 'KinesisModelStreams';

/** A structured JSON logger for one function (Powertools). */
export function createLogger(functionName: string): Logger {
  return new Logger({ serviceName: SERVICE, persistentKeys: { function: functionName } });
}

/**
 * Puts the invocation's Lambda context (`function_request_id`, `cold_start`, function name, ARN,
 * memory) on every line the loggers write until the next invocation. Call it first thing in a
 * Lambda entry point. A context without a request id (a test's or the local stack's stand-in that
 * only gives the remaining time) is ignored.
 */
export function addLambdaContext(context: unknown, ...loggers: readonly Logger[]): void {
  if (!isLambdaContext(context)) return;
  for (const logger of loggers) logger.addContext(context);
}

function isLambdaContext(context: unknown): context is Context {
  if (typeof context !== 'object' || context === null) return false;
  const c = context as Partial<Context>;
  return typeof c.awsRequestId === 'string' && typeof c.functionName === 'string';
}

/** The keys that tie a log line to one item: `itemId`, and `traceparent` when the item has one. */
export type ItemLogKeys = { readonly itemId: string; readonly traceparent?: string };

/**
 * The keys of a line about `item`. Every line about an item carries them (per call, not appended to
 * the logger: one invocation works on many items at once), so that one Logs Insights query by
 * `itemId` or `traceparent` finds the item's whole path through producer, consumer and delivery.
 */
export function itemKeys(item: { readonly itemId: string; readonly traceparent?: string }): ItemLogKeys {
  return item.traceparent === undefined
    ? { itemId: item.itemId }
    : { itemId: item.itemId, traceparent: item.traceparent };
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
