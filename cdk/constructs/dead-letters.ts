import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { checkRange } from './handler-function.js';

export interface DeadLetterQueueProps {
  /**
   * How long a dead letter is kept, in days (1–14).
   * @default 14
   */
  readonly retentionDays?: number;
  /**
   * What happens to the queue when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The dead-letter store: one SQS queue for the handlers' own dead letters (records that failed
 * validation, generations that failed for good) and for the event source mappings' on-failure
 * destination (batch metadata of records given up on). Encrypted with the AWS managed SQS key;
 * only TLS requests are accepted.
 */
export class DeadLetterQueue extends Construct {
  readonly queue: sqs.IQueue;
  /** The event source mappings' on-failure destination. */
  readonly onFailureDestination: lambda.IEventSourceDlq;

  constructor(scope: Construct, id: string, props: DeadLetterQueueProps = {}) {
    super(scope, id);
    const retentionDays = props.retentionDays ?? 14;
    checkRange(this, 'retentionDays', retentionDays, 1, 14);
    const queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.KMS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(retentionDays),
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    Validations.of(queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        'This queue is itself the dead-letter store (the on-failure destination of the event source ' +
        'mappings and the target of handler-level dead letters); nothing consumes it automatically, ' +
        'so there is no failed receive to redrive. Its depth is alarmed on.',
    });
    this.queue = queue;
    this.onFailureDestination = new SqsDlq(queue);
  }

  /** Lets a handler send its own dead letters (DEAD_LETTER_QUEUE_URL). */
  grantSendDeadLetters(grantee: iam.IGrantable): iam.Grant {
    return this.queue.grantSendMessages(grantee);
  }

  /** Dead letters waiting in the queue (maximum over the period). */
  metricMessagesVisible(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', ...props });
  }
}
