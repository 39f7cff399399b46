import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConnectionStore } from '../../consumers/viewers/connection-store.js';
import { type RunningEmulator, startDynamo } from '../../local/emulators.js';
import { ensureTable } from '../../local/resources.js';
import { startTtlSweeper } from '../../local/ttl-sweeper.js';
import { createAwsClients } from '../../shared/aws-clients.js';
import { loadConfig } from '../../shared/config.js';
import { TABLES } from '../../shared/tables.js';
import { waitUntil } from './websocket-helpers.js';

describe('TTL on the connections table (the local sweeper standing in for DynamoDB TTL)', () => {
  let dynalite: RunningEmulator;
  let dynamo: DynamoDBDocumentClient;
  const HOUR = 3600;
  const now = Date.UTC(2030, 0, 1);
  const nowSeconds = now / 1000;

  beforeAll(async () => {
    dynalite = await startDynamo();
    const raw = new DynamoDBClient({ region: 'us-east-1', endpoint: dynalite.endpoint });
    await ensureTable(raw, 'conns', TABLES.connections);
    await ensureTable(raw, 'text', TABLES.text);
    raw.destroy();
    dynamo = createAwsClients(loadConfig({ DYNAMODB_ENDPOINT: dynalite.endpoint })).dynamo;
  });
  afterAll(async () => {
    dynamo?.destroy();
    await dynalite?.stop();
  });

  const keysOf = async (table: string) =>
    ((await dynamo.send(new ScanCommand({ TableName: table }))).Items ?? [])
      .map((item) => `${item.pk ?? item.itemId}/${item.sk ?? item.key}`)
      .sort();

  it('deletes the rows whose expiresAt has passed, in every table, and keeps the rest', async () => {
    // Prepare: a connection (with a subscription) that expired, one that has not, a row with no TTL.
    const expired = createConnectionStore({
      dynamo,
      table: 'conns',
      ttlSeconds: HOUR,
      now: () => now - 2 * HOUR * 1000,
    });
    const live = createConnectionStore({ dynamo, table: 'conns', ttlSeconds: HOUR, now: () => now });
    await expired.putConnection({ connectionId: 'old=', subject: 's', connectedAtMs: now });
    await expired.subscribe('old=', { itemId: 'a' });
    await live.putConnection({ connectionId: 'new=', subject: 's', connectedAtMs: now });
    await live.subscribe('new=', { itemId: 'a' });
    await dynamo.send(new PutCommand({ TableName: 'conns', Item: { pk: 'no-ttl', sk: 'x' } }));
    await dynamo.send(
      new PutCommand({
        TableName: 'text',
        Item: { itemId: 'i', key: 'pending#1', expiresAt: nowSeconds - 1 },
      }),
    );
    const sweeper = startTtlSweeper({
      dynamo,
      tables: ['conns', 'text'],
      intervalMs: 60_000,
      now: () => now,
    });
    // Act
    const deleted = await sweeper.sweepOnce();
    await sweeper.stop();
    // Assess
    expect(deleted).toBe(5);
    expect(await keysOf('conns')).toEqual([
      'conn#new=/connection',
      'conn#new=/sub#a',
      'no-ttl/x',
      'subject#s/new=',
      'subs#a/new=',
    ]);
    expect(await keysOf('text')).toEqual([]);
  });

  it('an expired subscription is not a subscriber even before it is swept, as DynamoDB TTL requires', async () => {
    const writer = createConnectionStore({
      dynamo,
      table: 'conns',
      ttlSeconds: HOUR,
      now: () => now - 2 * HOUR * 1000,
    });
    await writer.subscribe('stale=', { itemId: 'b' });
    const reader = createConnectionStore({ dynamo, table: 'conns', ttlSeconds: HOUR, now: () => now });
    expect(await writer.subscribersOf({ itemId: 'b' })).toEqual(['stale=']);
    expect(await reader.subscribersOf({ itemId: 'b' })).toEqual([]);
  });

  it('sweeps on its interval until stopped', async () => {
    await dynamo.send(
      new PutCommand({ TableName: 'conns', Item: { pk: 'timed', sk: 'x', expiresAt: nowSeconds - 5 } }),
    );
    const sweeper = startTtlSweeper({ dynamo, tables: ['conns'], intervalMs: 20, now: () => now });
    await waitUntil('the timed row is swept', async () => !(await keysOf('conns')).includes('timed/x'));
    await sweeper.stop();
  });
});
