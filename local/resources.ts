import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ResourceInUseException,
} from '@aws-sdk/client-dynamodb';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  type KinesisClient,
  ResourceInUseException as StreamInUseException,
} from '@aws-sdk/client-kinesis';
import { sleep } from '../shared/retry.js';
import type { TableSpec } from '../shared/tables.js';

const ACTIVE_DEADLINE_MS = 10_000;

async function waitFor(what: string, isReady: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ACTIVE_DEADLINE_MS;
  while (!(await isReady())) {
    if (Date.now() > deadline)
      throw new Error(`${what} did not become ACTIVE within ${ACTIVE_DEADLINE_MS} ms`);
    await sleep(50);
  }
}

/** Creates a stream unless it exists, then waits until it is ACTIVE. */
export async function ensureStream(kinesis: KinesisClient, name: string, shardCount: number): Promise<void> {
  try {
    await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shardCount }));
  } catch (err) {
    if (!(err instanceof StreamInUseException)) throw err;
  }
  await waitFor(`stream ${name}`, async () => {
    const { StreamDescriptionSummary: s } = await kinesis.send(
      new DescribeStreamSummaryCommand({ StreamName: name }),
    );
    return s?.StreamStatus === 'ACTIVE';
  });
}

/** Creates a table from its spec unless it exists (indexes must be declared here), then waits until ACTIVE. */
export async function ensureTable(dynamo: DynamoDBClient, name: string, spec: TableSpec): Promise<void> {
  const keyNames = new Set([spec.partitionKey, ...(spec.sortKey ? [spec.sortKey] : [])]);
  for (const index of spec.indexes ?? []) keyNames.add(index.partitionKey).add(index.sortKey);
  try {
    await dynamo.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [...keyNames].map((AttributeName) => ({ AttributeName, AttributeType: 'S' })),
        KeySchema: [
          { AttributeName: spec.partitionKey, KeyType: 'HASH' },
          ...(spec.sortKey ? [{ AttributeName: spec.sortKey, KeyType: 'RANGE' as const }] : []),
        ],
        GlobalSecondaryIndexes: spec.indexes?.length
          ? spec.indexes.map((index) => ({
              IndexName: index.name,
              KeySchema: [
                { AttributeName: index.partitionKey, KeyType: 'HASH' as const },
                { AttributeName: index.sortKey, KeyType: 'RANGE' as const },
              ],
              Projection: { ProjectionType: 'INCLUDE' as const, NonKeyAttributes: [...index.projected] },
            }))
          : undefined,
      }),
    );
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw err;
    await checkIndexes(dynamo, name, spec);
  }
  await waitFor(`table ${name}`, async () => {
    const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: name }));
    return Table?.TableStatus === 'ACTIVE';
  });
}

/**
 * A table kept from an older version may lack an index this version queries, and dynalite cannot
 * add one to an existing table: say so, and how to start over, instead of failing on first use.
 */
async function checkIndexes(dynamo: DynamoDBClient, name: string, spec: TableSpec): Promise<void> {
  const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: name }));
  const present = new Set((Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName));
  const missing = (spec.indexes ?? []).filter((index) => !present.has(index.name)).map((i) => i.name);
  if (missing.length > 0) {
    throw new Error(
      `table ${name} was created by an older version without index ${missing.join(', ')}, which cannot be ` +
        'added to an existing local table: start over with `npm start -- --fresh` (this deletes the local data)',
    );
  }
}
