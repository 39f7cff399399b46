import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as get from '../../cli/commands/get.js';
import * as submit from '../../cli/commands/submit.js';
import { expectedText } from '../../local/expected-text.js';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../local/stack.js';
import { ApiError, StoredItem } from '../../shared/contracts/stored-item.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { waitFor } from '../support/wait.js';
import { seeded } from '../support/random.js';

/** Runs a command line, keeping its output out of the test report. */
async function cli(command: { run(args: string[]): Promise<number> }, args: string[]) {
  let stdout = '';
  let stderr = '';
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { code: await command.run(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** Starts a local stack in memory, in its own folder. */
async function localStack(options: LocalStackOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'consumer-e2e-'));
  const stack = await startLocalStack({
    dataDir: dir,
    inMemory: true,
    bedrock: { timeToFirstTokenMs: 5, tokensPerSecond: 0 },
    ...options,
  });
  return {
    stack,
    async stop() {
      await stack.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Submits work items with the command line, waits for each to finish at `GET /items/{id}`, and compares with InvokeModel. */
async function submitAndCheck(stack: LocalStack, items: WorkItem[]) {
  for (const item of items) {
    const args = [item.prompt ?? '', '--id', item.itemId, '--stack', stack.stackFile];
    if (item.maxTokens) args.push('--max-tokens', String(item.maxTokens));
    if (item.modelId) args.push('--model', item.modelId);
    expect(await cli(submit, args)).toMatchObject({ code: 0, stdout: `${item.itemId}\n` });
  }
  const defaults = {
    modelId: stack.config.defaultModelId,
    maxTokens: stack.config.producer.defaultMaxTokens,
  };
  for (const item of items) {
    const stored = await waitFor(
      async () => {
        const response = await fetch(`${stack.info.http.url}/items/${item.itemId}`, {
          headers: { authorization: `Bearer ${stack.info.token}` },
        });
        if (response.status !== 200) return undefined;
        const found = StoredItem.parse(await response.json());
        return found.status === 'completed' || found.status === 'failed' ? found : undefined;
      },
      { what: `${item.itemId} to finish`, timeoutMs: 60_000, intervalMs: 50 },
    );
    const expected = await expectedText(stack.clients.bedrock, item, defaults);
    expect(stored.status).toBe('completed');
    expect(stored.text.length).toBe(expected.length);
    expect(stored.text === expected).toBe(true);
  }
}

describe('end to end on the local stack: submit → completed → GET /items/{id}', () => {
  let running: Awaited<ReturnType<typeof localStack>>;

  beforeAll(async () => {
    // The largest records the producer makes: a 1 MB output then needs about 100 of them.
    running = await localStack({ env: { FLUSH_MAX_BYTES: String(16 * 1024) } });
  });
  afterAll(async () => {
    await running?.stop();
  });

  it('stores exactly the text InvokeModel returns for the same body, for each model family', async () => {
    await submitAndCheck(running.stack, [
      { itemId: 'e2e-c-claude', prompt: 'Explain exactly-once delivery', maxTokens: 700 },
      {
        itemId: 'e2e-c-llama',
        prompt: 'Describe a river',
        modelId: 'meta.llama3-1-8b-instruct-v1:0',
        maxTokens: 300,
      },
      {
        itemId: 'e2e-c-nova',
        prompt: 'List three colours',
        modelId: 'amazon.nova-lite-v1:0',
        maxTokens: 200,
      },
    ]);
  });

  it('stores a 1 MB output whole', async () => {
    const item: WorkItem = {
      itemId: 'e2e-c-1mb',
      prompt: 'Tell everything about streams',
      maxTokens: 200_000,
    };
    const defaults = { modelId: running.stack.config.defaultModelId, maxTokens: 1024 };
    expect(
      Buffer.byteLength(await expectedText(running.stack.clients.bedrock, item, defaults)),
    ).toBeGreaterThan(1024 * 1024);

    await submitAndCheck(running.stack, [item]);
  });

  it('answers an unknown id with a JSON 404 and a malformed id with a JSON 400', async () => {
    const headers = { authorization: `Bearer ${running.stack.info.token}` };
    const unknown = await fetch(`${running.stack.info.http.url}/items/e2e-never`, { headers });
    const malformed = await fetch(`${running.stack.info.http.url}/items/not%20valid!`, { headers });

    expect(unknown.status).toBe(404);
    expect(ApiError.parse(await unknown.json()).error.code).toBe('item_not_found');
    expect(malformed.status).toBe(400);
    expect(ApiError.parse(await malformed.json()).error.code).toBe('invalid_item_id');
    expect(await cli(get, ['e2e-never', '--stack', running.stack.stackFile])).toMatchObject({ code: 1 });
  });
});

describe('end to end with the chunk poller crashing the consumer in the middle of batches', () => {
  let running: Awaited<ReturnType<typeof localStack>>;

  beforeAll(async () => {
    running = await localStack({
      chunkMapping: { crash: { probability: 0.3, random: seeded(7) }, batchSize: 50 },
    });
  });
  afterAll(async () => {
    await running?.stop();
  });

  it('still stores exactly the model’s text for every item', async () => {
    await submitAndCheck(
      running.stack,
      Array.from({ length: 6 }, (_, i) => ({
        itemId: `e2e-crash-${i}`,
        prompt: `Write part ${i} of a long report on durable streams`,
        maxTokens: 1500 + 500 * i,
      })),
    );

    expect(running.stack.mappings.chunks.stats().crashes).toBeGreaterThan(0);
  });
});
