import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import { Construct } from 'constructs';
import { checkRange } from './handler-function.js';

export interface WorkStreamsProps {
  /**
   * Shards of the input stream (work items); 0 means on-demand capacity.
   * @default 0
   */
  readonly inputShardCount?: number;
  /**
   * Shards of the chunk stream (model output); 0 means on-demand capacity.
   * @default 0
   */
  readonly chunkShardCount?: number;
  /**
   * How long records stay readable, in hours (24–8,760).
   * @default 24
   */
  readonly retentionHours?: number;
  /**
   * What happens to the streams when the stack is deleted.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The two Kinesis data streams, both partitioned by item id: work items in, chunk records out.
 * Encrypted at rest with the AWS managed key `aws/kinesis`, which needs no key policy or grants and
 * is what the AWS Solutions checks recommend over a customer managed key for streams.
 */
export class WorkStreams extends Construct {
  readonly inputStream: kinesis.IStream;
  readonly chunkStream: kinesis.IStream;

  constructor(scope: Construct, id: string, props: WorkStreamsProps = {}) {
    super(scope, id);
    const retentionHours = props.retentionHours ?? 24;
    checkRange(this, 'retentionHours', retentionHours, 24, 8760);
    const create = (streamId: string, shardProp: string, shardCount: number) => {
      checkRange(this, `${shardProp} (0 = on-demand)`, shardCount, 0, 10_000);
      return new kinesis.Stream(this, streamId, {
        streamMode: shardCount === 0 ? kinesis.StreamMode.ON_DEMAND : kinesis.StreamMode.PROVISIONED,
        shardCount: shardCount === 0 ? undefined : shardCount,
        encryption: kinesis.StreamEncryption.MANAGED,
        retentionPeriod: Duration.hours(retentionHours),
        removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
      });
    };
    this.inputStream = create('InputStream', 'inputShardCount', props.inputShardCount ?? 0);
    this.chunkStream = create('ChunkStream', 'chunkShardCount', props.chunkShardCount ?? 0);
  }
}
