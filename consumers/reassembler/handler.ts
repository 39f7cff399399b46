import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';

/** Chunk stream → DynamoDB items → viewers. */
export async function handler(_event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
  throw new Error('consumer handler is not implemented yet');
}
