import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { issueToken } from '../../shared/auth.js';
import { StackFile } from '../../shared/contracts/stack-file.js';
import { StoredItem } from '../../shared/contracts/stored-item.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { readItem } from '../../shared/items.js';
import { expectedText } from '../../local/expected-text.js';
import { ensureTable } from '../../local/resources.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import { TABLES } from '../../shared/tables.js';
import { createTokenVerifier } from '../../shared/token-verifier.js';
import { waitFor } from '../support/wait.js';

describe('the local stack', () => {
  let dir: string;
  let stack: LocalStack;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stack-'));
    stack = await startLocalStack({ dataDir: dir, bedrock: { timeToFirstTokenMs: 5, tokensPerSecond: 0 } });
  });
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a stack file that matches the contract', () => {
    const file = StackFile.parse(JSON.parse(readFileSync(join(dir, 'stack.json'), 'utf8')));
    expect(file.kinesis.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(file.token).toBe(stack.info.token);
  });

  it('gives the stack file an admin token for every tenant, and keeps its key beside it for `cli token`', async () => {
    const verifier = createTokenVerifier(stack.config.auth, stack.clients.secrets);
    await expect(verifier.verify(stack.info.token)).resolves.toMatchObject({
      tenant: '*',
      scopes: new Set(['admin']),
    });
    expect(readFileSync(join(dir, 'auth-secret'), 'utf8').trim()).toBe(stack.config.auth.secret);
  });

  it('closes a connection whose token expires, idle and without subscriptions, on the expiry sweep timer', async () => {
    // Prepare: a token valid for 1 s; the connection sends nothing and subscribes to nothing.
    const token = await issueToken(stack.config.auth.secret ?? '', {
      subject: 'short-lived',
      tenant: 'acme',
      scopes: ['read'],
      ttlSeconds: 1,
    });
    const socket = new WebSocket(`${stack.info.websocket.url}?token=${token}`);
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    // Assess: closed by the server (the gateway's DELETE) within the sweep interval (5 s) of expiry.
    await expect(
      Promise.race([
        closed,
        new Promise((_, reject) => setTimeout(() => reject(new Error('not closed')), 9_000)),
      ]),
    ).resolves.toBe(1000);
  });

  it('refuses a table from an older version that lacks an index, saying how to start over', async () => {
    const raw = new DynamoDBClient({
      region: 'us-east-1',
      endpoint: stack.info.dynamodb.endpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      await ensureTable(raw, 'old-items', { partitionKey: 'itemId' });
      await expect(ensureTable(raw, 'old-items', TABLES.items)).rejects.toThrow(
        /table old-items was created by an older version without index .*byTenantStatus.*npm start -- --fresh/,
      );
    } finally {
      raw.destroy();
    }
  });

  it('turns work items written to the input stream into completed items with the model text', async () => {
    // Prepare: three families, one multi-message conversation
    const items: WorkItem[] = [
      { itemId: 'e2e-claude', prompt: 'Tell a story about rivers', maxTokens: 400 },
      {
        itemId: 'e2e-llama',
        prompt: 'Summarize Kinesis',
        modelId: 'meta.llama3-1-8b-instruct-v1:0',
        maxTokens: 150,
      },
      {
        itemId: 'e2e-nova',
        system: 'Be brief.',
        messages: [
          { role: 'user', content: 'Hi' },
          { role: 'assistant', content: 'Hello' },
          { role: 'user', content: [{ type: 'text', text: 'Describe DynamoDB' }] },
        ],
        modelId: 'amazon.nova-lite-v1:0',
        maxTokens: 200,
      },
    ];
    // Act: write them as an upstream system would
    await stack.clients.kinesis.send(
      new PutRecordsCommand({
        StreamName: stack.info.kinesis.inputStream,
        Records: items.map((item) => ({
          PartitionKey: item.itemId,
          Data: Buffer.from(JSON.stringify(item)),
        })),
      }),
    );
    // Assess: each completes with exactly InvokeModel's text, through the HTTP API too
    const defaults = {
      modelId: stack.config.defaultModelId,
      maxTokens: stack.config.producer.defaultMaxTokens,
    };
    for (const item of items) {
      const stored = await waitFor(
        async () => {
          const found = await readItem(stack.clients.dynamo, stack.config.tables, item.itemId);
          return found?.status === 'completed' || found?.status === 'failed' ? found : undefined;
        },
        { what: `${item.itemId} to finish`, timeoutMs: 30_000 },
      );
      const expected = await expectedText(stack.clients.bedrock, item, defaults);
      expect(stored.status).toBe('completed');
      expect(stored.text).toBe(expected);
      const response = await fetch(`${stack.info.http.url}/items/${item.itemId}`, {
        headers: { authorization: `Bearer ${stack.info.token}` },
      });
      expect(response.status).toBe(200);
      expect(StoredItem.parse(await response.json()).text).toBe(expected);
    }
  });
});
