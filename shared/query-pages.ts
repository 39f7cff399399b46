import { type DynamoDBDocumentClient, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { type RetryOptions, withRetry } from './retry.js';

/**
 * The items of a DynamoDB Query, page by page, each page read with its own bounded retries. A caller
 * that has enough stops iterating, and no further page is read.
 */
export async function* queryPages(
  dynamo: DynamoDBDocumentClient,
  input: Omit<QueryCommandInput, 'ExclusiveStartKey'>,
  retry: RetryOptions,
): AsyncGenerator<Array<Record<string, unknown>>> {
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await withRetry(
      () => dynamo.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey })),
      retry,
    );
    yield page.Items ?? [];
    startKey = page.LastEvaluatedKey;
  } while (startKey);
}
