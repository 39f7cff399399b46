import {
  DynamoDBClient,
  InternalServerError,
  ProvisionedThroughputExceededException,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DynamoFaultProxy, startDynamoFaultProxy } from '../../../local/dynamodb-faults.js';
import { type RunningEmulator, startDynamo } from '../../../local/emulators.js';
import { ensureTable } from '../../../local/resources.js';
import { classifyAwsError } from '../../../shared/errors.js';
import { seeded } from '../../support/random.js';

const TABLE = 'faults';
const client = (endpoint: string) =>
  DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: 'us-east-1',
      endpoint,
      maxAttempts: 1,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }),
  );

describe('DynamoDB fault proxy', () => {
  let dynalite: RunningEmulator;
  let proxy: DynamoFaultProxy;
  let direct: DynamoDBDocumentClient;
  let proxied: DynamoDBDocumentClient;

  beforeAll(async () => {
    dynalite = await startDynamo();
    direct = client(dynalite.endpoint);
    await ensureTable(direct, TABLE, { partitionKey: 'id' });
    proxy = await startDynamoFaultProxy({ target: dynalite.endpoint, random: seeded(3) });
    proxied = client(proxy.endpoint);
  });
  afterAll(async () => {
    proxied?.destroy();
    direct?.destroy();
    await proxy?.stop();
    await dynalite?.stop();
  });

  it('forwards every request unchanged while no fault is set', async () => {
    await proxied.send(new PutCommand({ TableName: TABLE, Item: { id: 'a', n: 1 } }));
    const { Item } = await direct.send(new GetCommand({ TableName: TABLE, Key: { id: 'a' } }));
    expect(Item).toEqual({ id: 'a', n: 1 });
  });

  it('answers an outage with AWS’s error shapes, which the SDK turns into typed, retryable errors, and applies nothing', async () => {
    // Prepare
    proxy.setFaults({
      errorRate: 1,
      errors: ['ProvisionedThroughputExceededException', 'InternalServerError'],
    });
    const before = proxy.stats().failed;
    // Act
    const first = await proxied.send(new PutCommand({ TableName: TABLE, Item: { id: 'b' } })).catch((e) => e);
    const second = await proxied.send(new GetCommand({ TableName: TABLE, Key: { id: 'a' } })).catch((e) => e);
    proxy.setFaults({ errorRate: 0 });
    // Assess
    expect(first).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(first.$metadata.httpStatusCode).toBe(400);
    expect(classifyAwsError(first)).toBe('throttling');
    expect(second).toBeInstanceOf(InternalServerError);
    expect(second.$metadata.httpStatusCode).toBe(500);
    expect(classifyAwsError(second)).toBe('transient');
    expect(proxy.stats().failed - before).toBe(2);
    const { Item } = await direct.send(new GetCommand({ TableName: TABLE, Key: { id: 'b' } }));
    expect(Item).toBeUndefined();
  });

  it('fails only the operations named, and a share of them by the rate given', async () => {
    proxy.setFaults({ errorRate: 1, errors: ['ThrottlingException'], operations: ['PutItem'] });
    await expect(proxied.send(new GetCommand({ TableName: TABLE, Key: { id: 'a' } }))).resolves.toBeDefined();
    const put = await proxied.send(new PutCommand({ TableName: TABLE, Item: { id: 'c' } })).catch((e) => e);
    expect(put.name).toBe('ThrottlingException');
    expect(classifyAwsError(put)).toBe('throttling');

    proxy.setFaults({ errorRate: 0.5, errors: ['ServiceUnavailable'], operations: [] });
    const results = await Promise.all(
      Array.from({ length: 200 }, () =>
        proxied.send(new GetCommand({ TableName: TABLE, Key: { id: 'a' } })).then(
          () => 'ok',
          (e: { name: string; $metadata: { httpStatusCode: number } }) =>
            `${e.name} ${e.$metadata.httpStatusCode}`,
        ),
      ),
    );
    proxy.setFaults({ errorRate: 0 });
    const failed = results.filter((r) => r !== 'ok');
    expect(new Set(failed)).toEqual(new Set(['ServiceUnavailable 503']));
    expect(failed.length).toBeGreaterThan(60);
    expect(failed.length).toBeLessThan(140);
  });

  it('refuses an out-of-range rate, an unknown error and an unknown fault, naming them', () => {
    expect(() => proxy.setFaults({ errorRate: 2 })).toThrow(/errorRate must be a number in \[0, 1\], got 2/);
    expect(() => proxy.setFaults({ errors: ['Nope' as never] })).toThrow(
      /errors must name at least one of .*got \["Nope"\]/,
    );
    expect(() => proxy.setFaults({ delayMs: 1 } as never)).toThrow(/unknown dynamodb fault "delayMs"/);
  });
});
