import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENV } from '../../shared/env.js';
import { ITEMS_BY_STATUS_INDEX } from '../../shared/tables.js';
import { METRICS_NAMESPACE, SERVICE } from '../../shared/telemetry.js';
import { checkRange, HandlerFunction, type HandlerLogLevel, handlerEntry } from './handler-function.js';
import { grantIndexQuery, grantItemActions } from './tables.js';

/** The `function` dimension of the sweeper handler's metrics (its `createMetrics` name). */
const SWEEPER_METRICS_FUNCTION = 'sweeper';

export interface StallSweeperProps {
  /** Item heads: queried by status on the `byStatus` index, read, and marked `failed`. */
  readonly itemsTable: dynamodb.ITable;
  /**
   * Minutes between two sweeps (1–60). An item is marked at most this long after its stall limit.
   * @default 1
   */
  readonly intervalMinutes?: number;
  /**
   * Further environment: `STALL_LIMIT_SECONDS`.
   * @default - the handler's default stall limit (15 min)
   */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default 'INFO' */
  readonly logLevel?: HandlerLogLevel;
}

/**
 * The stall sweeper (`consumers/sweeper/handler.ts`), run by an EventBridge schedule: items left
 * `queued` or `streaming` without progress beyond the stall limit (a batch given up on, a producer
 * gone) are marked `failed` with code `stalled`, so a resend starts a new attempt.
 */
export class StallSweeper extends Construct {
  readonly handler: HandlerFunction;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: StallSweeperProps) {
    super(scope, id);
    const intervalMinutes = props.intervalMinutes ?? 1;
    checkRange(this, 'intervalMinutes', intervalMinutes, 1, 60);
    this.handler = new HandlerFunction(this, 'Handler', {
      entry: handlerEntry('consumers/sweeper/handler.ts'),
      description: 'Marks items stalled in queued or streaming as failed (stalled)',
      memorySizeMb: 256,
      // One sweep examines at most 500 items per status; the next sweep takes the rest.
      timeoutSeconds: Math.min(60 * intervalMinutes, 300),
      logRetention: props.logRetention,
      logLevel: props.logLevel,
      environment: {
        [ENV.itemsTable]: props.itemsTable.tableName,
        ...props.environment,
      },
    });
    // Oldest candidates first on the status index, a consistent read of each, a conditional update.
    grantIndexQuery(this.handler, props.itemsTable, ITEMS_BY_STATUS_INDEX);
    grantItemActions(this.handler, props.itemsTable, ['GetItem', 'UpdateItem']);
    this.rule = new events.Rule(this, 'Schedule', {
      description: 'Runs the stall sweeper',
      schedule: events.Schedule.rate(Duration.minutes(intervalMinutes)),
      // A failed sweep is not retried: the next one comes within the interval and redoes it all.
      targets: [new targets.LambdaFunction(this.handler.function, { retryAttempts: 0 })],
    });
  }

  /** Items marked `failed` (`stalled`) by the sweeper (sum over the period). */
  metricItemsStalled(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: 'ItemsStalled',
      // The dimensions Powertools puts on every metric of the handler (`createMetrics('sweeper')`).
      dimensionsMap: { service: SERVICE, function: SWEEPER_METRICS_FUNCTION },
      statistic: 'Sum',
      period: Duration.minutes(5),
      ...props,
    });
  }
}
