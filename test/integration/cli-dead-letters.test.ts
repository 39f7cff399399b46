/**
 * `dead-letters list | replay` against the real local stack: the event source mappings write real
 * on-failure entries while a brownout makes their function fail (crash injection with no retries),
 * the producer writes real invalid-record letters, and replay goes through the local Lambda Invoke
 * stand-in to the very handlers the mappings run.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as deadLetters from '../../cli/commands/dead-letters.js';
import { expectedText } from '../../local/expected-text.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { readItem } from '../../shared/items.js';
import { waitFor } from '../support/wait.js';

const exec = promisify(execFile);

/** Runs the command in this process, capturing what it writes. */
async function cli(args: string[]) {
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
    return { code: await deadLetters.run(args), stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

interface Listed {
  id: string;
  kind: 'invalid-record' | 'on-failure' | 'unparseable';
  reason?: string;
  body?: string;
  letter?: {
    reason?: string;
    record?: { data: string; shardId?: string; sequenceNumber: string; partitionKey: string };
    requestContext?: { functionArn: string; condition: string };
    KinesisBatchInfo?: {
      shardId: string;
      startSequenceNumber: string;
      endSequenceNumber: string;
      batchSize: number;
    };
  };
}

describe('dead-letters list | replay on the local stack', () => {
  let dir: string;
  let stack: LocalStack;
  let stackArgs: string[];
  // Brownouts: while on, every invocation of that mapping's function fails before it sees a record,
  // and with no retries the mapping hands the batch to its on-failure destination at once.
  const brownout = { input: false, chunks: false };
  const failing = (which: keyof typeof brownout) => ({
    maximumRetryAttempts: 0,
    bisectBatchOnFunctionError: false,
    crash: { probability: 1, random: () => (brownout[which] ? 0 : 1) },
    onError: () => {},
  });

  const submit = async (records: Array<WorkItem | string>) => {
    await stack.clients.kinesis.send(
      new PutRecordsCommand({
        StreamName: stack.info.kinesis.inputStream,
        Records: records.map((r, i) => ({
          PartitionKey: typeof r === 'string' ? `raw-${i}` : r.itemId,
          Data: Buffer.from(typeof r === 'string' ? r : JSON.stringify(r)),
        })),
      }),
    );
  };
  const settle = async () => {
    await stack.mappings.input.idle({ timeoutMs: 60_000 });
    await stack.mappings.chunks.idle({ timeoutMs: 60_000 });
  };
  const listed = async (): Promise<Listed[]> => {
    const result = await cli(['list', '--json', ...stackArgs]);
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as Listed[];
  };
  const expected = (item: WorkItem) =>
    expectedText(stack.clients.bedrock, item, {
      modelId: stack.config.defaultModelId,
      maxTokens: stack.config.producer.defaultMaxTokens,
    });
  const item = (itemId: string) => readItem(stack.clients.dynamo, stack.config.tables, itemId);
  /** Every stored row (item heads and text) of some items, to compare before and after. */
  const rowsOf = async (itemIds: readonly string[]) => {
    const rows: unknown[] = [];
    for (const table of [stack.config.tables.items, stack.config.tables.text]) {
      const { Items = [] } = await stack.clients.dynamo.send(new ScanCommand({ TableName: table }));
      rows.push(...Items.filter((row) => itemIds.some((id) => JSON.stringify(row).includes(`"${id}`))));
    }
    return rows.map((row) => JSON.stringify(row)).sort();
  };
  const send = (body: string) =>
    stack.clients.sqs.send(
      new SendMessageCommand({ QueueUrl: stack.info.deadLetters.queueUrl, MessageBody: body }),
    );

  const batchItem: WorkItem = { itemId: 'dl-batch-1', prompt: 'Chunks to replay', maxTokens: 24 };
  const inputItem: WorkItem = { itemId: 'dl-input-1', prompt: 'A skipped work item', maxTokens: 16 };
  const nowValid: WorkItem = { itemId: 'dl-now-valid', prompt: 'Rejected by an older rule', maxTokens: 12 };
  /** The letter an older producer wrote for a work item it rejected, which this one accepts. */
  const nowValidLetter = JSON.stringify({
    kind: 'invalid-record',
    source: 'producer',
    reason: 'modelId: this model is not enabled',
    record: {
      shardId: 'shardId-000000000000',
      partitionKey: nowValid.itemId,
      sequenceNumber: '49650000000000000000000000000000000000000000000000000001',
      approximateArrivalTimestamp: Date.now() / 1000,
      data: Buffer.from(JSON.stringify(nowValid)).toString('base64'),
    },
    failedAt: new Date().toISOString(),
  });
  /** The on-failure entries of the first brownout, as the mapping wrote them. */
  let batchLetters: Listed[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cli-dead-letters-'));
    stack = await startLocalStack({
      dataDir: dir,
      inMemory: true,
      inputMapping: failing('input'),
      chunkMapping: failing('chunks'),
      // The stall sweeper would fail the items this test leaves streaming on purpose.
      stallSweeper: { intervalMs: 3_600_000 },
    });
    stackArgs = ['--stack', stack.stackFile];
  }, 60_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists rejected records with their reasons, on-failure entries with their ranges, and unparseable messages', async () => {
    brownout.chunks = true;
    await submit([batchItem, '{"itemId": "bad id!", "prompt": "x"}']);
    await settle();
    brownout.chunks = false;
    await send('{"not": "a dead letter"}');

    const result = await cli(['list', ...stackArgs]);
    const entries = await listed();
    batchLetters = entries.filter((e) => e.kind === 'on-failure');

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      / {2}invalid-record {2}producer {2}shardId-000000000000:\d+ {2}key raw-1 {2}\d{4}-/,
    );
    expect(result.stdout).toMatch(
      /\n {4}reason: work item does not match the schema: .*itemId must be .* → at itemId\n/,
    );
    expect(result.stdout).toMatch(
      / {2}on-failure {2}consumer {2}chunks\/shardId-\d+ {2}\d+\.\.\d+ {2}\d+ record\(s\)/,
    );
    expect(result.stdout).toContain(
      'reason: RetryAttemptsExhausted after 1 invocation(s) (Unhandled); records arrived',
    );
    expect(result.stdout).toMatch(
      / {2}unparseable {2}.*\n {4}reason: neither a rejected record nor an on-failure entry/,
    );
    expect(batchLetters.length).toBeGreaterThan(0);
    expect(result.stdout).toContain(
      `${entries.length} entries: 1 invalid-record, ${batchLetters.length} on-failure, 1 unparseable`,
    );
    // Listing hands every message back: the store still holds them all, under the same ids.
    expect((await listed()).map((e) => e.id).sort()).toEqual(entries.map((e) => e.id).sort());
    expect((await item(batchItem.itemId))?.status).not.toBe('completed');
  });

  it('replays the chosen on-failure entries only: reads their records back from the stream and the item completes exactly', async () => {
    const before = await listed();
    const ids = batchLetters.map((e) => e.id);

    const result = await cli(['replay', ...ids.flatMap((id) => ['--id', id]), ...stackArgs]);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /read \d+ record\(s\) back from chunks\/shardId-\d+ and fed them to arn:aws:lambda:/,
    );
    expect(result.stdout).toContain(
      `replayed ${ids.length} of ${ids.length}; 0 left in the store; 0 rejected again`,
    );
    const stored = await item(batchItem.itemId);
    expect(stored?.status).toBe('completed');
    expect(stored?.text === (await expected(batchItem))).toBe(true);
    // Only the chosen went: the rejected record and the unparseable message are still there.
    const after = await listed();
    expect(after.map((e) => e.id).sort()).toEqual(
      before
        .filter((e) => !ids.includes(e.id))
        .map((e) => e.id)
        .sort(),
    );
  });

  it('replays a skipped work item (an input on-failure entry): one generation, the exact text', async () => {
    brownout.input = true;
    await submit([inputItem]);
    await settle();
    brownout.input = false;
    const letter = (await listed()).find(
      (e) => e.kind === 'on-failure' && e.letter?.requestContext?.functionArn.endsWith(':function:producer'),
    );
    expect(letter).toBeDefined();
    expect(await item(inputItem.itemId)).toBeUndefined();

    const result = await cli(['replay', '--id', letter?.id ?? '', ...stackArgs]);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    await settle();
    const stored = await waitFor(
      async () => {
        const found = await item(inputItem.itemId);
        return found?.status === 'completed' ? found : undefined;
      },
      { what: `${inputItem.itemId} to complete`, timeoutMs: 30_000 },
    );
    expect(stored.text === (await expected(inputItem))).toBe(true);
    expect((await listed()).some((e) => e.id === letter?.id)).toBe(false);
  });

  it('returns a record that is still invalid to the store with its reason, and exits 1', async () => {
    const rejected = (await listed()).find((e) => e.kind === 'invalid-record');
    expect(rejected).toBeDefined();

    const result = await cli(['replay', '--id', rejected?.id ?? '', ...stackArgs]);

    expect(result.code).toBe(1);
    const place = `${rejected?.letter?.record?.shardId}:${rejected?.letter?.record?.sequenceNumber}`;
    expect(result.stderr).toMatch(
      new RegExp(
        `rejected again: ${place} is back in the store as \\S+: work item does not match the schema: .*itemId.*\n`,
      ),
    );
    expect(result.stdout).toContain('replayed 1 of 1; 0 left in the store; 1 rejected again');
    const again = (await listed()).filter((e) => e.kind === 'invalid-record');
    expect(again).toHaveLength(1);
    expect(again[0]?.id).not.toBe(rejected?.id);
    expect(again[0]?.letter?.record).toEqual(rejected?.letter?.record);
    expect(again[0]?.letter?.reason).toBe(rejected?.letter?.reason);
  });

  it('replays a rejected record that is now valid through the producer: claimed, generated, completed', async () => {
    await send(nowValidLetter);
    const id = (await listed()).find((e) => e.letter?.record?.partitionKey === nowValid.itemId)?.id;

    const result = await cli(['replay', '--id', id ?? '', ...stackArgs]);

    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('fed 1 record to producer');
    await settle();
    const stored = await waitFor(
      async () => {
        const found = await item(nowValid.itemId);
        return found?.status === 'completed' ? found : undefined;
      },
      { what: `${nowValid.itemId} to complete`, timeoutMs: 30_000 },
    );
    expect(stored.text === (await expected(nowValid))).toBe(true);
  });

  it('replaying the same entries again changes nothing: same rows, no second generation, the store emptied', async () => {
    const ids = [batchItem.itemId, inputItem.itemId, nowValid.itemId];
    const rowsBefore = await rowsOf(ids);
    const requestsBefore = stack.bedrock.stats();
    // The same letters once more (as a second replay of what was replayed would see them).
    for (const e of batchLetters) await send(JSON.stringify(e.letter));
    await send(nowValidLetter);
    const leftovers = (await listed()).filter(
      (e) => e.kind !== 'on-failure' && e.letter?.record?.partitionKey !== nowValid.itemId,
    );

    const result = await cli(['replay', ...stackArgs]);
    await settle();

    // The leftovers (the still-invalid record, the unparseable message) fail; everything else goes.
    expect(result.stdout).toContain(
      `replayed ${batchLetters.length + 1 + 1} of ${batchLetters.length + 1 + leftovers.length}`,
    );
    expect(await rowsOf(ids)).toEqual(rowsBefore);
    expect(stack.bedrock.stats()).toEqual(requestsBefore);
    const remaining = await listed();
    expect(remaining.every((e) => e.kind !== 'on-failure')).toBe(true);
    expect(remaining.some((e) => e.letter?.record?.partitionKey === nowValid.itemId)).toBe(false);
  });

  it('leaves an on-failure entry whose records the stream no longer holds, saying why', async () => {
    const [first] = batchLetters;
    const batch = first?.letter?.KinesisBatchInfo;
    expect(batch).toBeDefined();
    // Records older than the shard's oldest one: what a range past the retention period looks like.
    const letter = {
      ...first?.letter,
      KinesisBatchInfo: { ...batch, startSequenceNumber: '1', endSequenceNumber: '2' },
    };
    await send(JSON.stringify(letter));
    const id = (await listed()).find((e) => e.letter?.KinesisBatchInfo?.startSequenceNumber === '1')?.id;

    const result = await cli(['replay', '--id', id ?? '', ...stackArgs]);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`not replayed ${id} (on-failure), left in the store`);
    expect(result.stderr).toContain('past its retention period (trim horizon)');
    expect((await listed()).some((e) => e.id === id)).toBe(true);
  });

  it('prints its help on stdout with exit 0, and the usage with exit 2 for a bad command line', async () => {
    const help = await cli(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('usage: npm run cli -- dead-letters list');
    for (const [args, message] of [
      [[], 'give list or replay'],
      [['purge'], 'unknown action: purge'],
      [['list', '--colour'], "Unknown option '--colour'"],
      [['replay', '--json'], '--json is for list'],
      [['replay', '--id'], "Option '--id <value>' argument missing"],
      [['list', 'extra'], 'unexpected argument: extra'],
    ] as const) {
      const result = await cli([...stackArgs, ...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain('usage: npm run cli -- dead-letters');
      expect(result.stdout).toBe('');
    }
  });

  it('says which --id is not in the store, with exit 1', async () => {
    const result = await cli(['replay', '--id', 'no-such-entry', ...stackArgs]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('no entry no-such-entry in the store');
  });

  it('refuses a stack file without a dead-letter store, or without functions to replay through', async () => {
    const file = join(dir, 'old-stack.json');
    const { deadLetters: _dropped, ...old } = stack.info;
    writeFileSync(file, JSON.stringify(old));
    const result = await cli(['list', '--stack', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('names no dead-letter store');
    const { lambda: _none, ...older } = stack.info;
    writeFileSync(file, JSON.stringify(older));
    const replay = await cli(['replay', '--stack', file]);
    expect(replay.code).toBe(2);
    expect(replay.stderr).toContain('names no functions to replay through');
  });

  it('is a command of the CLI program (help on stdout, exit 0)', async () => {
    const { stdout } = await exec(join('node_modules', '.bin', 'tsx'), ['cli/main.ts', '--help'], {
      env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    expect(stdout).toMatch(/dead-letters +rejected records and on-failure entries/);
  });
});
