/**
 * The consumer's world for integration tests: dynalite with the items and item-text tables, the
 * real AWS clients from configuration, and a head row as the producer's claim leaves it.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { type AwsClients, createAwsClients } from '../../shared/aws-clients.js';
import { type Config, loadConfig } from '../../shared/config.js';
import type { ItemUpdate, UpdatePublisher } from '../../shared/delivery.js';
import { ENV } from '../../shared/env.js';
import { createLogger, createMetrics } from '../../shared/telemetry.js';
import { TABLES, TENANT_STATUS_ATTRIBUTE } from '../../shared/tables.js';
import { DEFAULT_TENANT, tenantStatusKey } from '../../shared/tenancy.js';
import { type RunningEmulator, startDynamo } from '../../local/emulators.js';
import { ensureTable } from '../../local/resources.js';

// Handlers log and emit metrics through Powertools; keep test output to failures.
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

export const TEST_SECRET = 'test-secret-of-at-least-thirty-two-characters';

export interface ConsumerWorld {
  readonly dynalite: RunningEmulator;
  readonly config: Config;
  readonly clients: AwsClients;
  readonly dynamo: DynamoDBDocumentClient;
  stop(): Promise<void>;
}

/** Starts dynalite and creates the tables. */
export async function startConsumerWorld(env: Record<string, string> = {}): Promise<ConsumerWorld> {
  const dynalite = await startDynamo();
  const config = loadConfig({
    [ENV.dynamodbEndpoint]: dynalite.endpoint,
    [ENV.authSecret]: TEST_SECRET,
    ...env,
  });
  const raw = new DynamoDBClient({ region: config.region, endpoint: dynalite.endpoint });
  await ensureTable(raw, config.tables.items, TABLES.items);
  await ensureTable(raw, config.tables.text, TABLES.text);
  await ensureTable(raw, config.tables.coordination, TABLES.coordination);
  raw.destroy();
  const clients = createAwsClients(config);
  return {
    dynalite,
    config,
    clients,
    dynamo: clients.dynamo,
    async stop() {
      clients.dynamo.destroy();
      await dynalite.stop();
    },
  };
}

/** Writes the head row a producer's claim creates: status `queued`, attempt 1 claimed. */
export async function putClaimedHead(
  world: ConsumerWorld,
  itemId: string,
  fields: { modelId?: string; createdAt?: string; metadata?: Record<string, unknown>; tenant?: string } = {},
): Promise<void> {
  const tenant = fields.tenant ?? DEFAULT_TENANT;
  await world.dynamo.send(
    new PutCommand({
      TableName: world.config.tables.items,
      Item: {
        itemId,
        status: 'queued',
        version: 0,
        claimedAttempt: 1,
        claimState: 'running',
        modelId: fields.modelId ?? 'anthropic.claude-3-5-haiku-20241022-v1:0',
        createdAt: fields.createdAt ?? new Date().toISOString(),
        metadata: fields.metadata ?? null,
        tenant,
        [TENANT_STATUS_ATTRIBUTE]: tenantStatusKey(tenant, 'queued', itemId),
      },
    }),
  );
}

/** The keys of an item's rows in the text table. */
export async function textRowKeys(world: ConsumerWorld, itemId: string): Promise<string[]> {
  const { Items = [] } = await world.dynamo.send(
    new QueryCommand({
      TableName: world.config.tables.text,
      KeyConditionExpression: 'itemId = :id',
      ExpressionAttributeValues: { ':id': itemId },
      ConsistentRead: true,
    }),
  );
  return Items.map((row) => String(row.key));
}

/** A publisher that keeps what it is given (live delivery is tested on its own). */
export function recordingPublisher(): UpdatePublisher & { readonly published: ItemUpdate[][] } {
  const published: ItemUpdate[][] = [];
  return {
    published,
    async publish(updates) {
      published.push([...updates]);
    },
  };
}

/** Logger and metrics as the handler factories take them. */
export function telemetry(name: string) {
  return { logger: createLogger(name), metrics: createMetrics(name) };
}

/** Decides whether a DynamoDB call fails: the operation (`UpdateItem`, ...) and its wire-format input. */
export type FaultRule = (operation: string, input: Record<string, unknown>) => Error | undefined;

/**
 * A document client on the same dynalite that fails the calls `rule` picks before they are sent,
 * as a crashed or throttled call would look to the caller.
 */
export function faultyDynamo(world: ConsumerWorld, rule: FaultRule): DynamoDBDocumentClient {
  const client = new DynamoDBClient({ region: world.config.region, endpoint: world.dynalite.endpoint });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const operation = String(context.commandName ?? '').replace(/Command$/, '');
      // The consumer's lag reports are advisory and written in the background: never faulted here.
      if ((args.input as { TableName?: string }).TableName === world.config.tables.coordination)
        return next(args);
      const error = rule(operation, args.input as Record<string, unknown>);
      if (error) throw error;
      return next(args);
    },
    { step: 'initialize', name: 'injectFaults' },
  );
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

/** An error as the SDK raises it for a DynamoDB failure of the named kind. */
export function awsError(name: string, httpStatusCode = 500): Error {
  return Object.assign(new Error(`injected ${name}`), { name, $metadata: { httpStatusCode } });
}
