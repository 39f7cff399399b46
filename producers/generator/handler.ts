import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';

/** Input stream → Bedrock → chunk stream. */
export async function handler(_event: KinesisStreamEvent): Promise<KinesisStreamBatchResponse> {
  throw new Error('producer handler is not implemented yet');
}
