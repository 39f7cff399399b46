import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
} from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import * as get from '../../cli/commands/get.js';
import * as submit from '../../cli/commands/submit.js';
import { createQueryApiHandler } from '../../consumers/query-api/handler.js';
import { createReassemblerHandler } from '../../consumers/reassembler/handler.js';
import { type RunningEmulator, startKinesis } from '../../local/emulators.js';
import { type RunningHttpApi, startHttpApi } from '../../local/http-api.js';
import { ensureStream } from '../../local/resources.js';
import { issueToken } from '../../shared/auth.js';
import { StoredItem } from '../../shared/contracts/stored-item.js';
import { WorkItem } from '../../shared/contracts/work-item.js';
import { attemptRecords } from '../factories/chunk-records.js';
import { kinesisEvent, TestShard } from '../factories/kinesis-events.js';
import {
  type ConsumerWorld,
  putClaimedHead,
  recordingPublisher,
  startConsumerWorld,
  TEST_SECRET,
  telemetry,
} from './consumer-fixture.js';

const INPUT_STREAM = 'work-items';

/** Runs a command, capturing what it writes. */
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

describe('command line: submit and get', () => {
  let kinesalite: RunningEmulator;
  let kinesis: KinesisClient;
  let world: ConsumerWorld;
  let api: RunningHttpApi;
  let dir: string;
  let stack: string;

  beforeAll(async () => {
    kinesalite = await startKinesis();
    kinesis = new KinesisClient({
      region: 'us-east-1',
      endpoint: kinesalite.endpoint,
      requestHandler: new NodeHttpHandler(),
    });
    await ensureStream(kinesis, INPUT_STREAM, 1);
    world = await startConsumerWorld();
    api = await startHttpApi({
      handler: createQueryApiHandler({
        config: world.config,
        clients: world.clients,
        ...telemetry('query-api'),
      }),
    });
    dir = mkdtempSync(join(tmpdir(), 'cli-'));
    stack = join(dir, 'stack.json');
    writeFileSync(
      stack,
      JSON.stringify({
        region: 'us-east-1',
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
        kinesis: { endpoint: kinesalite.endpoint, inputStream: INPUT_STREAM },
        http: { url: api.url },
        websocket: { url: 'ws://127.0.0.1:1' },
        token: await issueToken(TEST_SECRET, {
          subject: 'cli',
          tenant: '*',
          scopes: ['admin'],
          ttlSeconds: 600,
        }),
      }),
    );
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    kinesis.destroy();
    await api.stop();
    await world.stop();
    await kinesalite.stop();
  });

  /** Every record on the input stream, as partition key and parsed work item. */
  async function inputRecords() {
    const { Shards = [] } = await kinesis.send(new ListShardsCommand({ StreamName: INPUT_STREAM }));
    const out: { partitionKey: string; item: WorkItem }[] = [];
    for (const shard of Shards) {
      const { ShardIterator } = await kinesis.send(
        new GetShardIteratorCommand({
          StreamName: INPUT_STREAM,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      const { Records = [] } = await kinesis.send(new GetRecordsCommand({ ShardIterator, Limit: 1000 }));
      for (const r of Records) {
        out.push({
          partitionKey: r.PartitionKey ?? '',
          item: WorkItem.parse(JSON.parse(Buffer.from(r.Data!).toString())),
        });
      }
    }
    return out;
  }

  describe('submit', () => {
    it('puts a prompt on the input stream, keyed by its item id, and prints the id', async () => {
      const result = await cli(submit, [
        'Write',
        'a haiku',
        '--id',
        'cli-1',
        '--max-tokens',
        '64',
        '--stack',
        stack,
      ]);

      expect(result).toEqual({ code: 0, stdout: 'cli-1\n', stderr: '' });
      expect((await inputRecords()).find((r) => r.item.itemId === 'cli-1')).toEqual({
        partitionKey: 'cli-1',
        item: { itemId: 'cli-1', prompt: 'Write a haiku', maxTokens: 64 },
      });
    });

    it('submits a work item file, with options overriding its fields, and a new id when it has none', async () => {
      const file = join(dir, 'item.json');
      writeFileSync(
        file,
        JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], metadata: { team: 'x' } }),
      );

      const result = await cli(submit, [
        '--file',
        file,
        '--model',
        'amazon.nova-lite-v1:0',
        '--system',
        'Be brief',
        '--stack',
        stack,
      ]);

      expect(result.code).toBe(0);
      const id = result.stdout.trim();
      expect(id).toMatch(/^cli-[a-z0-9]+-[0-9a-f]{8}$/);
      expect((await inputRecords()).find((r) => r.item.itemId === id)?.item).toEqual({
        itemId: id,
        messages: [{ role: 'user', content: 'Hi' }],
        metadata: { team: 'x' },
        modelId: 'amazon.nova-lite-v1:0',
        system: 'Be brief',
      });
    });

    it.each([
      ['no prompt', ['--stack'], 'give a prompt, or a work item with --file'],
      ['a malformed id', ['hi', '--id', 'bad id', '--stack'], 'itemId: itemId must be 1–128 characters'],
      [
        'a token limit that is not a number',
        ['hi', '--max-tokens', 'lots', '--stack'],
        '--max-tokens must be a whole number',
      ],
      ['an unknown option', ['hi', '--temperature', '2', '--stack'], "Unknown option '--temperature'"],
    ])('refuses %s with exit code 2 and says why', async (_case, args, message) => {
      const before = (await inputRecords()).length;

      const result = await cli(submit, [...args, stack]);

      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect((await inputRecords()).length).toBe(before);
    });

    it('fails with exit code 2 when there is no stack file', async () => {
      const result = await cli(submit, ['hi', '--stack', join(dir, 'missing.json')]);

      expect(result.code).toBe(2);
      expect(result.stderr).toContain('no stack file at');
    });
  });

  describe('get', () => {
    beforeAll(async () => {
      await putClaimedHead(world, 'cli-done');
      const consumer = createReassemblerHandler({
        config: world.config,
        clients: world.clients,
        deadLetters: { send: async () => {} },
        publisher: recordingPublisher(),
        ...telemetry('consumer'),
      });
      await consumer(
        kinesisEvent(
          new TestShard().records(attemptRecords('cli-done', 1, ['Hello ', '世界'], { type: 'end' })),
        ),
      );
    });

    it('prints the stored item as JSON', async () => {
      const result = await cli(get, ['cli-done', '--stack', stack]);

      expect(result.code).toBe(0);
      expect(StoredItem.parse(JSON.parse(result.stdout))).toMatchObject({
        itemId: 'cli-done',
        status: 'completed',
        text: 'Hello 世界',
      });
    });

    it('prints only the text with --text', async () => {
      const result = await cli(get, ['cli-done', '--text', '--stack', stack]);

      expect(result).toEqual({ code: 0, stdout: 'Hello 世界\n', stderr: '' });
    });

    it('exits non-zero with the API’s message for an unknown id', async () => {
      const result = await cli(get, ['nobody', '--stack', stack]);

      expect(result.code).toBe(1);
      expect(result.stderr).toBe('get: no item with id "nobody" (item_not_found) [HTTP 404]\n');
    });

    it('exits non-zero with the API’s message for a malformed id', async () => {
      const result = await cli(get, ['bad id', '--stack', stack]);

      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(
        /^get: the item id "bad id" is malformed.*\(invalid_item_id\) \[HTTP 400\]\n$/,
      );
    });

    it('exits with code 2 without exactly one item id', async () => {
      const result = await cli(get, ['--stack', stack]);

      expect(result.code).toBe(2);
      expect(result.stderr).toContain('give exactly one item id');
    });
  });
});
