import { Duration } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import { KinesisConsumerEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { ENV } from '../../shared/env.js';
import type { DeadLetterQueue } from './dead-letters.js';
import { kinesisEventSourceProps, type StreamMappingProps } from './event-sources.js';
import { HandlerFunction, type HandlerLogLevel, handlerEntry } from './handler-function.js';
import { grantItemActions, grantTableAccess } from './tables.js';
import type { IViewerConnections } from './websocket-api.js';

export interface ReassemblerProps {
  /** Chunk records, read through an enhanced fan-out consumer. */
  readonly chunkStream: kinesis.IStream;
  readonly itemsTable: dynamodb.ITable;
  readonly textTable: dynamodb.ITable;
  /** Subscriptions: who receives each item's deltas. */
  readonly connectionsTable: dynamodb.ITable;
  /** Where the consumer reports its lag (one row, updated) for the producers' admission. */
  readonly coordinationTable: dynamodb.ITable;
  /** The WebSocket stage the deltas are posted to. */
  readonly viewers: IViewerConnections;
  readonly deadLetters: DeadLetterQueue;
  /** How the chunk stream is read. */
  readonly mapping: StreamMappingProps;
  /**
   * Name of the stream consumer (unique per stream).
   * @default 'reassembler'
   */
  readonly consumerName?: string;
  /**
   * Memory of the function, in MB.
   * @default 1024
   */
  readonly memorySizeMb?: number;
  /**
   * Longest a batch may take, in seconds.
   * @default 120
   */
  readonly timeoutSeconds?: number;
  /**
   * Further environment: delivery limits and the price table.
   * @default - the handlers' defaults
   */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** @default 'INFO' */
  readonly logLevel?: HandlerLogLevel;
}

/**
 * The consumer: chunk stream → items and item-text tables → viewers
 * (`consumers/reassembler/handler.ts`). It reads through an enhanced fan-out consumer: records are
 * pushed within about 70 ms of being put, where standard polling reads each shard about once a
 * second — too slow for live text — and shares the shard's read throughput with every other reader.
 */
export class Reassembler extends Construct {
  readonly handler: HandlerFunction;
  readonly streamConsumer: kinesis.IStreamConsumer;

  constructor(scope: Construct, id: string, props: ReassemblerProps) {
    super(scope, id);
    this.handler = new HandlerFunction(this, 'Handler', {
      entry: handlerEntry('consumers/reassembler/handler.ts'),
      description: 'Chunk stream to items and item-text tables to WebSocket viewers',
      memorySizeMb: props.memorySizeMb ?? 1024,
      timeoutSeconds: props.timeoutSeconds ?? 120,
      logRetention: props.logRetention,
      logLevel: props.logLevel,
      environment: {
        [ENV.chunkStream]: props.chunkStream.streamName,
        [ENV.itemsTable]: props.itemsTable.tableName,
        [ENV.textTable]: props.textTable.tableName,
        [ENV.connectionsTable]: props.connectionsTable.tableName,
        [ENV.coordinationTable]: props.coordinationTable.tableName,
        [ENV.deadLetterQueueUrl]: props.deadLetters.queue.queueUrl,
        [ENV.websocketManagementEndpoint]: props.viewers.managementEndpoint,
        ...props.environment,
      },
    });
    const fn = this.handler.function;
    this.streamConsumer = new kinesis.StreamConsumer(this, 'StreamConsumer', {
      stream: props.chunkStream,
      streamConsumerName: props.consumerName ?? 'reassembler',
    });
    fn.addEventSource(
      new KinesisConsumerEventSource(
        this.streamConsumer,
        kinesisEventSourceProps(this, props.mapping, props.deadLetters.onFailureDestination),
      ),
    );
    grantTableAccess(fn, props.itemsTable, { read: true, write: true });
    grantTableAccess(fn, props.textTable, { read: true, write: true });
    // Deltas go to an item's subscribers; connections found gone (410) are removed.
    grantTableAccess(fn, props.connectionsTable, { read: true, write: true });
    // It only writes its lag row; the quota rows are the producers'.
    grantItemActions(fn, props.coordinationTable, ['UpdateItem']);
    props.viewers.grantPostToConnections(fn);
    props.deadLetters.grantSendDeadLetters(fn);
  }

  /** Age of the oldest chunk record not yet reassembled (maximum over the period). */
  metricIteratorAge(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.handler.function.metric('IteratorAge', {
      statistic: 'Maximum',
      period: Duration.minutes(1),
      ...props,
    });
  }
}
