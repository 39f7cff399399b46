import {
  type ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { type DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamEvent } from 'aws-lambda';
import type { ConnectionStore } from '../../consumers/viewers/connection-store.js';
import type { NaiveChunk } from './producer.js';

/** What a naive viewer receives: each chunk record as it is, one message per record. */
export type NaiveMessage =
  | { readonly type: 'chunk'; readonly itemId: string; readonly seq: number; readonly text: string }
  | { readonly type: 'end' | 'failed'; readonly itemId: string; readonly seq: number };

export interface NaiveConsumerDeps {
  readonly dynamo: DynamoDBDocumentClient;
  readonly table: string;
  readonly management: ApiGatewayManagementApiClient;
  /** The same subscriptions the pipeline's viewers make through the WebSocket routes. */
  readonly connections: ConnectionStore;
}

const encoder = new TextEncoder();

/**
 * The baseline consumer, as the tutorial writes it: for every chunk record, one `list_append`
 * update of the item, then one `PostToConnection` per viewer of the item. Generous where the
 * tutorial is not: items of a batch are handled in parallel (records of one item in order), and
 * an item's viewers are looked up once per batch rather than once per record.
 */
export function createNaiveConsumer(deps: NaiveConsumerDeps): (event: KinesisStreamEvent) => Promise<void> {
  const apply = (chunk: NaiveChunk) =>
    deps.dynamo.send(
      chunk.type === 'delta'
        ? new UpdateCommand({
            TableName: deps.table,
            Key: { itemId: chunk.itemId },
            UpdateExpression: 'SET chunks = list_append(if_not_exists(chunks, :empty), :chunk)',
            ExpressionAttributeValues: { ':empty': [], ':chunk': [chunk.text] },
          })
        : new UpdateCommand({
            TableName: deps.table,
            Key: { itemId: chunk.itemId },
            UpdateExpression: 'SET #status = :status',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':status': chunk.type === 'end' ? 'completed' : 'failed' },
          }),
    );

  const post = (connectionId: string, message: NaiveMessage) =>
    deps.management
      .send(
        new PostToConnectionCommand({
          ConnectionId: connectionId,
          Data: encoder.encode(JSON.stringify(message)),
        }),
      )
      .catch(() => {
        // A gone or failing viewer misses this record; the tutorial moves on.
      });

  return async (event) => {
    const byItem = new Map<string, NaiveChunk[]>();
    for (const record of event.Records) {
      const chunk = JSON.parse(Buffer.from(record.kinesis.data, 'base64').toString('utf8')) as NaiveChunk;
      const chunks = byItem.get(chunk.itemId) ?? [];
      chunks.push(chunk);
      byItem.set(chunk.itemId, chunks);
    }
    const everyItem = await deps.connections.subscribersOf('all');
    await Promise.all(
      [...byItem].map(async ([itemId, chunks]) => {
        const viewers = [...new Set([...(await deps.connections.subscribersOf({ itemId })), ...everyItem])];
        for (const chunk of chunks) {
          await apply(chunk);
          const message: NaiveMessage =
            chunk.type === 'delta'
              ? { type: 'chunk', itemId, seq: chunk.seq, text: chunk.text }
              : { type: chunk.type === 'end' ? 'end' : 'failed', itemId, seq: chunk.seq };
          await Promise.all(viewers.map((connectionId) => post(connectionId, message)));
        }
      }),
    );
  };
}
