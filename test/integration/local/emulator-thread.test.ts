import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient, ListStreamsCommand } from '@aws-sdk/client-kinesis';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmulators } from '../../../local/emulators.js';
import { ensureStream, ensureTable } from '../../../local/resources.js';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const dynamo = (endpoint: string) =>
  DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: 'us-east-1', endpoint, maxAttempts: 1, credentials }),
  );
const kinesis = (endpoint: string) =>
  new KinesisClient({
    region: 'us-east-1',
    endpoint,
    maxAttempts: 1,
    credentials,
    requestHandler: new NodeHttpHandler(),
  });

describe('emulators on a worker thread', () => {
  const dir = mkdtempSync(join(tmpdir(), 'emulator-thread-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const paths = { kinesis: { path: join(dir, 'kinesis') }, dynamodb: { path: join(dir, 'dynamodb') } };

  it('serve Kinesis and DynamoDB, keep their data across a restart, and free their ports on stop', async () => {
    // Prepare
    const first = await startEmulators({ ...paths, thread: true });
    const [db, streams] = [dynamo(first.dynamodb.endpoint), kinesis(first.kinesis.endpoint)];
    // Act
    await ensureTable(db, 'items', { partitionKey: 'id' });
    await ensureStream(streams, 'chunks', 1);
    await db.send(new PutCommand({ TableName: 'items', Item: { id: 'a', text: 'kept' } }));
    db.destroy();
    streams.destroy();
    await first.stop();
    // Assess: the ports are free again, and a second thread on the same folders finds the data.
    const again = await startEmulators({
      kinesis: { ...paths.kinesis, port: first.kinesis.port },
      dynamodb: { ...paths.dynamodb, port: first.dynamodb.port },
      thread: true,
    });
    const [db2, streams2] = [dynamo(again.dynamodb.endpoint), kinesis(again.kinesis.endpoint)];
    try {
      expect((await db2.send(new GetCommand({ TableName: 'items', Key: { id: 'a' } }))).Item).toEqual({
        id: 'a',
        text: 'kept',
      });
      expect((await streams2.send(new ListStreamsCommand({}))).StreamNames).toEqual(['chunks']);
    } finally {
      db2.destroy();
      streams2.destroy();
      await again.stop();
    }
  });

  it('reports an emulator that cannot start', async () => {
    const holder = await startEmulators({ kinesis: {}, dynamodb: {}, thread: false });
    try {
      await expect(
        startEmulators({ kinesis: {}, dynamodb: { port: holder.dynamodb.port }, thread: true }),
      ).rejects.toThrow(`port ${holder.dynamodb.port} on 127.0.0.1 is in use`);
    } finally {
      await holder.stop();
    }
  });
});
