import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENV } from '../../shared/env.js';
import { CONNECTIONS_BY_EXPIRY_INDEX } from '../../shared/tables.js';
import { METRICS_NAMESPACE, SERVICE } from '../../shared/telemetry.js';
import { checkRange, HandlerFunction, type HandlerLogLevel, handlerEntry } from './handler-function.js';
import { grantIndexQuery, grantItemActions } from './tables.js';
import type { ViewerWebSocketApi } from './websocket-api.js';

/** The `function` dimension of the sweep's metrics (its `createMetrics` name). */
const EXPIRY_SWEEP_METRICS_FUNCTION = 'expiry-sweep';

export interface ConnectionExpirySweeperProps {
  /** The viewers' WebSocket API whose expired connections are closed (DELETE only). */
  readonly webSocket: Pick<ViewerWebSocketApi, 'managementEndpoint' | 'grantCloseConnections'>;
  /** Connection rows: found on the `byExpiry` index, then removed with their subscriptions. */
  readonly connectionsTable: dynamodb.ITable;
  /**
   * Minutes between two sweeps (1–10). A connection is closed at most this long after its token
   * expires (plus the run's own time).
   * @default 1
   */
  readonly intervalMinutes?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default 'INFO' */
  readonly logLevel?: HandlerLogLevel;
}

/**
 * The connection expiry sweep (`sweepExpired` in `consumers/viewers/handler.ts`), run by an
 * EventBridge schedule: WebSocket connections whose token expired are closed through the
 * management API and their rows removed, even when they send nothing and would receive nothing.
 */
export class ConnectionExpirySweeper extends Construct {
  readonly handler: HandlerFunction;
  readonly rule: events.Rule;

  constructor(scope: Construct, id: string, props: ConnectionExpirySweeperProps) {
    super(scope, id);
    const intervalMinutes = props.intervalMinutes ?? 1;
    checkRange(this, 'intervalMinutes', intervalMinutes, 1, 10);
    this.handler = new HandlerFunction(this, 'Handler', {
      entry: handlerEntry('consumers/viewers/handler.ts'),
      handler: 'sweepExpired',
      description: 'Closes WebSocket connections whose token expired',
      memorySizeMb: 256,
      // One run closes at most 500 connections and starts none in its last 2 s; the next run
      // takes the rest, so a run never overlaps the next one.
      timeoutSeconds: Math.min(60 * intervalMinutes, 300) - 10,
      logRetention: props.logRetention,
      logLevel: props.logLevel,
      environment: {
        [ENV.connectionsTable]: props.connectionsTable.tableName,
        [ENV.websocketManagementEndpoint]: props.webSocket.managementEndpoint,
      },
    });
    // Expired connection rows through the sparse index; a connection's rows by one Query of its
    // partition, deleted 25 at a time. Nothing else of the table, and no Scan.
    grantIndexQuery(this.handler, props.connectionsTable, CONNECTIONS_BY_EXPIRY_INDEX);
    grantItemActions(this.handler, props.connectionsTable, ['Query', 'BatchWriteItem']);
    // Closing only: DELETE on the stage's connections, never POST or GET.
    props.webSocket.grantCloseConnections(this.handler);
    this.rule = new events.Rule(this, 'Schedule', {
      description: 'Runs the WebSocket connection expiry sweep',
      schedule: events.Schedule.rate(Duration.minutes(intervalMinutes)),
      // A failed run is not retried: the next one comes within the interval and looks back 15 min.
      targets: [new targets.LambdaFunction(this.handler.function, { retryAttempts: 0 })],
    });
  }

  /** Connections the sweep closed (or found gone) because their token expired (sum over the period). */
  metricConnectionsClosed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: 'ExpiredConnectionsClosed',
      dimensionsMap: { service: SERVICE, function: EXPIRY_SWEEP_METRICS_FUNCTION },
      statistic: 'Sum',
      period: Duration.minutes(5),
      ...props,
    });
  }
}
