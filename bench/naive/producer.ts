import {
  type BedrockRuntimeClient,
  InvokeModelWithResponseStreamCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { type KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamEvent } from 'aws-lambda';
import { adapterFor, resolveModel } from '../../producers/generator/models/index.js';
import { WorkItem } from '../../shared/contracts/work-item.js';

/** A record of the naive chunk stream: one per model delta, then one `end` (or `error`). */
export type NaiveChunk =
  | { readonly itemId: string; readonly seq: number; readonly type: 'delta'; readonly text: string }
  | {
      readonly itemId: string;
      readonly seq: number;
      readonly type: 'end' | 'error';
      readonly message?: string;
    };

export interface NaiveProducerDeps {
  readonly kinesis: KinesisClient;
  readonly bedrock: BedrockRuntimeClient;
  readonly dynamo: DynamoDBDocumentClient;
  readonly chunkStream: string;
  readonly table: string;
  readonly defaultModelId: string;
  readonly defaultMaxTokens: number;
}

/**
 * The baseline producer, written the way the common tutorial writes it: for each work item, mark
 * it streaming, call the model, and `PutRecord` every delta the moment it arrives, awaiting each
 * put before reading on (that keeps an item's records in order). No coalescing, no claim, no
 * retry: a failure is recorded and the item ends.
 */
export function createNaiveProducer(deps: NaiveProducerDeps): (event: KinesisStreamEvent) => Promise<void> {
  const put = (chunk: NaiveChunk) =>
    deps.kinesis.send(
      new PutRecordCommand({
        StreamName: deps.chunkStream,
        PartitionKey: chunk.itemId,
        Data: Buffer.from(JSON.stringify(chunk)),
      }),
    );

  const generate = async (item: WorkItem) => {
    await deps.dynamo.send(
      new PutCommand({
        TableName: deps.table,
        Item: { itemId: item.itemId, status: 'streaming', chunks: [], createdAt: new Date().toISOString() },
      }),
    );
    const model = resolveModel(item.modelId ?? deps.defaultModelId);
    const adapter = adapterFor(model.family);
    let seq = 0;
    try {
      const response = await deps.bedrock.send(
        new InvokeModelWithResponseStreamCommand({
          modelId: model.requested,
          contentType: 'application/json',
          accept: 'application/json',
          body: JSON.stringify(
            adapter.requestBody(item, { maxTokens: item.maxTokens ?? deps.defaultMaxTokens }),
          ),
        }),
      );
      for await (const event of response.body ?? []) {
        const bytes = event.chunk?.bytes;
        if (!bytes) continue;
        for (const parsed of adapter.parseEvent(JSON.parse(Buffer.from(bytes).toString('utf8'))))
          if (parsed.kind === 'text')
            await put({ itemId: item.itemId, seq: seq++, type: 'delta', text: parsed.text });
      }
      await put({ itemId: item.itemId, seq: seq++, type: 'end' });
    } catch (err) {
      await put({ itemId: item.itemId, seq: seq++, type: 'error', message: String(err) });
    }
  };

  return async (event) => {
    await Promise.all(
      event.Records.map((record) =>
        generate(WorkItem.parse(JSON.parse(Buffer.from(record.kinesis.data, 'base64').toString('utf8')))),
      ),
    );
  };
}
