import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import { KinesisEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENV } from '../../shared/env.js';
import { METRICS_NAMESPACE, SERVICE } from '../../shared/telemetry.js';
import type { BedrockModels } from './bedrock-models.js';
import type { DeadLetterQueue } from './dead-letters.js';
import { kinesisEventSourceProps, type StreamMappingProps } from './event-sources.js';
import { HandlerFunction, type HandlerLogLevel, handlerEntry } from './handler-function.js';
import { grantItemActions, grantTableAccess } from './tables.js';

/** The `function` dimension of the generator handler's metrics (its `createMetrics` name). */
const PRODUCER_METRICS_FUNCTION = 'producer';

export interface GeneratorProps {
  /** Work items, read by standard polling. */
  readonly inputStream: kinesis.IStream;
  /** Where chunk records are put. */
  readonly chunkStream: kinesis.IStream;
  /** Item heads: the generator claims an item, records its status and sees cancel requests. */
  readonly itemsTable: dynamodb.ITable;
  /** Shared model quota rows (read and updated) and the consumer's lag row (read). */
  readonly coordinationTable: dynamodb.ITable;
  readonly deadLetters: DeadLetterQueue;
  readonly models: BedrockModels;
  /** How the input stream is read. */
  readonly mapping: StreamMappingProps;
  /**
   * Memory of the function, in MB.
   * @default 1024
   */
  readonly memorySizeMb?: number;
  /**
   * Longest a batch of generations may run, in seconds.
   * @default 900
   */
  readonly timeoutSeconds?: number;
  /**
   * Concurrency reserved for (and capping) the generator. The input mapping polls Kinesis, which
   * has no maximum concurrency setting: without this the generator runs up to shards ×
   * parallelization factor invocations, and an on-demand stream's shard count changes by itself.
   * @default - unreserved
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Further environment: handler limits and the price table.
   * @default - the handlers' defaults
   */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default 'INFO' */
  readonly logLevel?: HandlerLogLevel;
}

/**
 * The producer: input stream → Bedrock response stream → chunk stream
 * (`producers/generator/handler.ts`), with exactly the permissions that path needs.
 */
export class Generator extends Construct {
  readonly handler: HandlerFunction;

  constructor(scope: Construct, id: string, props: GeneratorProps) {
    super(scope, id);
    this.handler = new HandlerFunction(this, 'Handler', {
      entry: handlerEntry('producers/generator/handler.ts'),
      description: 'Input stream to Bedrock to chunk stream',
      memorySizeMb: props.memorySizeMb ?? 1024,
      timeoutSeconds: props.timeoutSeconds ?? 900,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      logRetention: props.logRetention,
      logLevel: props.logLevel,
      environment: {
        [ENV.inputStream]: props.inputStream.streamName,
        [ENV.chunkStream]: props.chunkStream.streamName,
        [ENV.itemsTable]: props.itemsTable.tableName,
        [ENV.coordinationTable]: props.coordinationTable.tableName,
        [ENV.deadLetterQueueUrl]: props.deadLetters.queue.queueUrl,
        [ENV.defaultModelId]: props.models.defaultModelId,
        ...props.environment,
      },
    });
    const fn = this.handler.function;
    fn.addEventSource(
      new KinesisEventSource(
        props.inputStream,
        kinesisEventSourceProps(this, props.mapping, props.deadLetters.onFailureDestination),
      ),
    );
    props.chunkStream.grantWrite(fn);
    grantTableAccess(fn, props.itemsTable, { read: true, write: true });
    // Quota rows are read (GetItem) and settled with conditional updates (UpdateItem); the lag row
    // is only read. Nothing else touches the table.
    grantItemActions(fn, props.coordinationTable, ['GetItem', 'UpdateItem']);
    props.models.grantInvoke(fn);
    props.deadLetters.grantSendDeadLetters(fn);
  }

  /**
   * One of the generator's own metrics (namespace `KinesisModelStreams`, EMF from the handler),
   * e.g. `ModelThrottles`, `QuotaWaitExceeded`, `BreakerOpenings`; summed over the period.
   */
  metricProducer(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      // The dimensions Powertools puts on every metric of the handler: the service and the
      // handler's function name (`producers/generator/handler.ts`).
      dimensionsMap: { service: SERVICE, function: PRODUCER_METRICS_FUNCTION },
      statistic: 'Sum',
      period: Duration.minutes(5),
      ...props,
    });
  }

  /** Age of the oldest work item not yet processed (maximum over the period). */
  metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metric('IteratorAge', {
      statistic: 'Maximum',
      period: Duration.minutes(1),
      ...props,
    });
  }
}
