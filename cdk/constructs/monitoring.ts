import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { BedrockModels } from './bedrock-models.js';
import type { DeadLetterQueue } from './dead-letters.js';
import type { Generator } from './generator.js';
import { checkRange, type HandlerFunction } from './handler-function.js';
import type { ItemsQueryApi } from './query-api.js';
import type { Reassembler } from './reassembler.js';
import type { StallSweeper } from './sweeper.js';
import type { ViewerWebSocketApi } from './websocket-api.js';

/** When each alarm fires. */
export interface AlarmThresholds {
  /**
   * Period each alarm aggregates over, in minutes (1–60).
   * @default 5
   */
  readonly periodMinutes?: number;
  /**
   * Oldest unprocessed work item, in seconds.
   * @default 300
   */
  readonly inputIteratorAgeSeconds?: number;
  /**
   * Oldest unreassembled chunk record, in seconds: viewers see text this late.
   * @default 30
   */
  readonly chunkIteratorAgeSeconds?: number;
  /**
   * Dead letters waiting in the queue.
   * @default 1
   */
  readonly deadLetterMessages?: number;
  /**
   * Errors of one function in a period.
   * @default 1
   */
  readonly functionErrors?: number;
  /**
   * Bedrock invocations throttled in a period, over all configured models.
   * @default 10
   */
  readonly bedrockThrottles?: number;
  /**
   * Kinesis reads and writes throttled in a period, over both streams.
   * @default 1
   */
  readonly kinesisThrottles?: number;
  /**
   * Model requests the generator saw throttled or refused (`ModelThrottles` +
   * `ModelRequestsRefused`) in each period, for `sustainedPeriods` periods in a row: the shared
   * quota is set above what the account really has, or another client uses it.
   * @default 10
   */
  readonly modelThrottles?: number;
  /**
   * Waiting items released for a redelivery (`WaitingReleased`) in each period, for
   * `sustainedPeriods` periods in a row: work waits for quota longer than an invocation lasts.
   * @default 1
   */
  readonly waitingReleased?: number;
  /**
   * Longest an item waited for quota or capacity (`QueueWait`, its maximum in a period), in
   * seconds: reported when the item is admitted, and when an invocation ends with it still waiting.
   * @default 300
   */
  readonly queueWaitSeconds?: number;
  /**
   * Items the stall sweeper marked `failed` (`stalled`) in a period.
   * @default 1
   */
  readonly itemsStalled?: number;
  /**
   * Consecutive periods the two sustained alarms above need (1–60).
   * @default 3
   */
  readonly sustainedPeriods?: number;
}

export interface StreamsMonitoringProps {
  readonly inputStream: kinesis.IStream;
  readonly chunkStream: kinesis.IStream;
  readonly generator: Generator;
  readonly reassembler: Reassembler;
  readonly sweeper: StallSweeper;
  /** Every function, by a short name used in alarm and widget titles. */
  readonly functions: Readonly<Record<string, HandlerFunction>>;
  readonly deadLetters: DeadLetterQueue;
  readonly models: BedrockModels;
  readonly tables: Readonly<Record<string, dynamodb.ITable>>;
  readonly webSocketApi: ViewerWebSocketApi;
  readonly queryApi: ItemsQueryApi;
  /** @default - the defaults of each threshold */
  readonly thresholds?: AlarmThresholds;
  /**
   * Topic notified when an alarm fires and when it recovers.
   * @default - no notification; alarms show on the dashboard
   */
  readonly alarmTopic?: sns.ITopic;
}

/**
 * The operator's view: alarms on what stops or delays the pipeline (iterator age of both event
 * source mappings, dead letters, Bedrock and Kinesis throttling, function errors, items the
 * sweeper found stalled, and the generator's flow control: sustained model throttling, items
 * waiting too long, an open breaker)
 * and one CloudWatch dashboard from input to viewers.
 */
export class StreamsMonitoring extends Construct {
  readonly alarms: readonly cloudwatch.Alarm[];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: StreamsMonitoringProps) {
    super(scope, id);
    const t = props.thresholds ?? {};
    const periodMinutes = t.periodMinutes ?? 5;
    checkRange(this, 'thresholds.periodMinutes', periodMinutes, 1, 60);
    const period = Duration.minutes(periodMinutes);
    const alarms: cloudwatch.Alarm[] = [];
    const sustainedPeriods = t.sustainedPeriods ?? 3;
    checkRange(this, 'thresholds.sustainedPeriods', sustainedPeriods, 1, 60);
    const alarm = (
      alarmId: string,
      metric: cloudwatch.IMetric,
      threshold: number,
      description: string,
      evaluationPeriods = 1,
    ) => {
      checkRange(this, `threshold of ${alarmId}`, threshold, 1, Number.MAX_SAFE_INTEGER);
      const created = new cloudwatch.Alarm(this, alarmId, {
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      if (props.alarmTopic) {
        created.addAlarmAction(new actions.SnsAction(props.alarmTopic));
        created.addOkAction(new actions.SnsAction(props.alarmTopic));
      }
      alarms.push(created);
      return created;
    };

    const inputAge = props.generator.metricIteratorAge({ period });
    const chunkAge = props.reassembler.metricIteratorAge({ period });
    alarm(
      'InputIteratorAge',
      inputAge,
      (t.inputIteratorAgeSeconds ?? 300) * 1000,
      'Work items wait too long before a generation starts: the generator is failing, throttled or short of concurrency.',
    );
    alarm(
      'ChunkIteratorAge',
      chunkAge,
      (t.chunkIteratorAgeSeconds ?? 30) * 1000,
      'Viewers see text late: the reassembler falls behind the chunk stream.',
    );
    const deadLetters = props.deadLetters.metricMessagesVisible({ period });
    alarm(
      'DeadLetters',
      deadLetters,
      t.deadLetterMessages ?? 1,
      'Records or generations were given up on; inspect the dead-letter queue.',
    );
    const bedrockThrottles = props.models.metricInvocationThrottles({ period });
    alarm(
      'BedrockThrottles',
      bedrockThrottles,
      t.bedrockThrottles ?? 10,
      'Bedrock throttles the generator: raise the model quota or lower MODEL_REQUESTS_PER_MINUTE / concurrency.',
    );
    const kinesisThrottles = new cloudwatch.MathExpression({
      expression: 'FILL(inWrite, 0) + FILL(inRead, 0) + FILL(chunkWrite, 0)',
      usingMetrics: {
        inWrite: props.inputStream.metricWriteProvisionedThroughputExceeded({ statistic: 'Sum', period }),
        inRead: props.inputStream.metricReadProvisionedThroughputExceeded({ statistic: 'Sum', period }),
        chunkWrite: props.chunkStream.metricWriteProvisionedThroughputExceeded({ statistic: 'Sum', period }),
      },
      label: 'Kinesis throttled requests',
      period,
    });
    alarm(
      'KinesisThrottles',
      kinesisThrottles,
      t.kinesisThrottles ?? 1,
      'Kinesis throttles puts or reads: add shards (or use on-demand) or coalesce chunk records more.',
    );
    const stalled = props.sweeper.metricItemsStalled({ period });
    alarm(
      'ItemsStalled',
      stalled,
      t.itemsStalled ?? 1,
      'Items made no progress for longer than STALL_LIMIT_SECONDS and were marked failed (stalled): look for records retrying on the mappings, dead letters or producer errors; a resend starts a new attempt.',
    );
    const flow = flowControlAlarms(props.generator, period, sustainedPeriods, t);
    for (const a of flow) alarm(a.id, a.metric, a.threshold, a.description, a.evaluationPeriods);
    for (const [name, handler] of Object.entries(props.functions)) {
      alarm(
        `${name}Errors`,
        handler.function.metricErrors({ statistic: 'Sum', period }),
        t.functionErrors ?? 1,
        `The ${name} function failed (errors, timeouts or crashes); see its logs.`,
      );
    }
    this.alarms = alarms;

    const fns = Object.entries(props.functions);
    const perFunction = (title: string, metric: (h: HandlerFunction) => cloudwatch.Metric) =>
      new cloudwatch.GraphWidget({
        title,
        width: 6,
        left: fns.map(([name, h]) => metric(h).with({ label: name })),
      });
    const tables = Object.entries(props.tables);
    const ws = props.webSocketApi;

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(3),
      widgets: [
        [new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms, width: 24, height: 4 })],
        [
          new cloudwatch.GraphWidget({
            title: 'Records in (per minute)',
            width: 6,
            left: [
              props.inputStream.metricIncomingRecords({
                statistic: 'Sum',
                period: Duration.minutes(1),
                label: 'work items',
              }),
              props.chunkStream.metricIncomingRecords({
                statistic: 'Sum',
                period: Duration.minutes(1),
                label: 'chunk records',
              }),
            ],
          }),
          new cloudwatch.GraphWidget({
            title: 'Iterator age (ms)',
            width: 6,
            left: [inputAge.with({ label: 'generator' }), chunkAge.with({ label: 'reassembler' })],
          }),
          new cloudwatch.GraphWidget({
            title: 'Kinesis throttled requests',
            width: 6,
            left: [kinesisThrottles],
          }),
          new cloudwatch.GraphWidget({
            title: 'Dead letters waiting; items stalled',
            width: 6,
            left: [deadLetters],
            right: [stalled.with({ label: 'items stalled' })],
          }),
        ],
        [
          perFunction('Invocations', (h) => h.function.metricInvocations({ statistic: 'Sum' })),
          perFunction('Errors', (h) => h.function.metricErrors({ statistic: 'Sum' })),
          perFunction('Duration p99 (ms)', (h) => h.function.metricDuration({ statistic: 'p99' })),
          perFunction('Concurrent executions', (h) =>
            h.function.metric('ConcurrentExecutions', { statistic: 'Maximum' }),
          ),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Bedrock invocations',
            width: 6,
            left: props.models.models.map((m) =>
              props.models.metric('Invocations', m.id, { statistic: 'Sum', label: m.id }),
            ),
          }),
          new cloudwatch.GraphWidget({
            title: 'Bedrock throttles; generator flow control',
            width: 6,
            left: [bedrockThrottles, ...flow.map((a) => a.metric)],
          }),
          new cloudwatch.GraphWidget({
            title: 'Bedrock output tokens',
            width: 6,
            left: props.models.models.map((m) =>
              props.models.metric('OutputTokenCount', m.id, { statistic: 'Sum', label: m.id }),
            ),
          }),
          new cloudwatch.GraphWidget({
            title: 'Bedrock latency p90 (ms)',
            width: 6,
            left: props.models.models.map((m) =>
              props.models.metric('InvocationLatency', m.id, { statistic: 'p90', label: m.id }),
            ),
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'DynamoDB write units',
            width: 8,
            left: tables.map(([name, table]) =>
              table.metricConsumedWriteCapacityUnits({ statistic: 'Sum', label: name }),
            ),
          }),
          new cloudwatch.GraphWidget({
            title: 'DynamoDB read units',
            width: 8,
            left: tables.map(([name, table]) =>
              table.metricConsumedReadCapacityUnits({ statistic: 'Sum', label: name }),
            ),
          }),
          new cloudwatch.GraphWidget({
            title: 'DynamoDB conditional check failures (duplicates refused)',
            width: 8,
            left: tables.map(([name, table]) =>
              table.metricConditionalCheckFailedRequests({ statistic: 'Sum', label: name }),
            ),
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'WebSocket connections and messages',
            width: 8,
            left: [
              ws.metric('ConnectCount', { label: 'connects' }),
              ws.metric('MessageCount', { label: 'messages' }),
            ],
          }),
          new cloudwatch.GraphWidget({
            title: 'WebSocket errors',
            width: 8,
            left: [
              ws.metric('ClientError', { label: 'client errors' }),
              ws.metric('ExecutionError', { label: 'execution errors' }),
              ws.metric('IntegrationError', { label: 'integration errors' }),
            ],
          }),
          new cloudwatch.GraphWidget({
            title: 'HTTP query API',
            width: 8,
            left: [
              props.queryApi.api.metricCount({ statistic: 'Sum', label: 'requests' }),
              props.queryApi.metricClientErrors({ label: '4xx' }),
              props.queryApi.metricServerErrors({ label: '5xx' }),
            ],
            right: [props.queryApi.api.metricLatency({ statistic: 'p90', label: 'latency p90 (ms)' })],
          }),
        ],
      ],
    });
  }
}

/** One flow-control alarm of the generator, before it is created. */
interface FlowControlAlarm {
  readonly id: string;
  readonly metric: cloudwatch.IMetric;
  readonly threshold: number;
  readonly description: string;
  readonly evaluationPeriods: number;
}

/**
 * The generator's flow-control alarms, on its own metrics. Throttling and releases are expected in
 * bursts (the quota and AIMD absorb them), so those two alarm only when sustained; an item given
 * up after waiting its longest, one that waited past the threshold, or a breaker opening, is worth
 * a look every time.
 */
function flowControlAlarms(
  generator: Generator,
  period: Duration,
  sustainedPeriods: number,
  t: AlarmThresholds,
): FlowControlAlarm[] {
  const m = (name: string) => generator.metricProducer(name, { period });
  const throttled = new cloudwatch.MathExpression({
    expression: 'FILL(throttles, 0) + FILL(refused, 0)',
    usingMetrics: { throttles: m('ModelThrottles'), refused: m('ModelRequestsRefused') },
    label: 'Model requests throttled or refused',
    period,
  });
  return [
    {
      id: 'ModelThrottles',
      metric: throttled,
      threshold: t.modelThrottles ?? 10,
      evaluationPeriods: sustainedPeriods,
      description:
        'Model requests keep being throttled or refused: lower MODEL_QUOTAS to what the account really has, or raise the account quota.',
    },
    {
      id: 'QuotaWaitExceeded',
      metric: m('QuotaWaitExceeded'),
      threshold: 1,
      evaluationPeriods: 1,
      description:
        'Work items failed after waiting MAX_QUOTA_WAIT_SECONDS for model quota or capacity: offered load exceeds the quota.',
    },
    {
      id: 'WaitingReleased',
      metric: m('WaitingReleased'),
      threshold: t.waitingReleased ?? 1,
      evaluationPeriods: sustainedPeriods,
      description:
        'Waiting work items keep being released for redelivery: they wait for quota longer than an invocation lasts.',
    },
    {
      id: 'QueueWait',
      metric: generator.metricProducer('QueueWait', { period, statistic: 'Maximum' }),
      threshold: (t.queueWaitSeconds ?? 300) * 1000,
      evaluationPeriods: 1,
      description:
        'A work item waited longer than the threshold for model quota or capacity: offered load exceeds what the quota or the pipeline carries.',
    },
    {
      id: 'BreakerOpen',
      metric: m('BreakerOpenings'),
      threshold: 1,
      evaluationPeriods: 1,
      description:
        'A model circuit breaker opened: the model failed or throttled repeatedly; requests go to fallbacks or wait.',
    },
  ];
}
