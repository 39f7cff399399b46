/**
 * The operator's commands against the real local stack: `list` through the query API, `cancel`
 * through the WebSocket API's `cancel` action, and the exit codes and help of every program.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as cancel from '../../cli/commands/cancel.js';
import * as list from '../../cli/commands/list.js';
import { runSmoke } from '../../cli/smoke.js';
import { loadTarget } from '../../cli/target.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { readItem } from '../../shared/items.js';
import { waitFor } from '../support/wait.js';

const exec = promisify(execFile);
const TSX = join('node_modules', '.bin', 'tsx');

/** Runs a command in this process, capturing what it writes. */
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

/** Runs a program as a user would; resolves with its exit code and output (never rejects). */
async function program(file: string, ...args: string[]) {
  try {
    const { stdout, stderr } = await exec(file, args, { env: { ...process.env, NODE_NO_WARNINGS: '1' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failed = err as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe('operator commands on the local stack', () => {
  let dir: string;
  let stack: LocalStack;
  let stackArgs: string[];

  const submit = async (items: WorkItem[]) => {
    await stack.clients.kinesis.send(
      new PutRecordsCommand({
        StreamName: stack.info.kinesis.inputStream,
        Records: items.map((item) => ({
          PartitionKey: item.itemId,
          Data: Buffer.from(JSON.stringify(item)),
        })),
      }),
    );
  };
  const status = async (itemId: string) =>
    (await readItem(stack.clients.dynamo, stack.config.tables, itemId))?.status;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cli-operator-'));
    // Slow enough that a long generation is still streaming when it is cancelled.
    stack = await startLocalStack({ dataDir: dir, inMemory: true, bedrock: { tokensPerSecond: 100 } });
    stackArgs = ['--stack', stack.stackFile];
    await submit([
      { itemId: 'op-short-1', prompt: 'One line', maxTokens: 8 },
      { itemId: 'op-short-2', prompt: 'Another line', maxTokens: 8 },
    ]);
    await waitFor(
      async () =>
        (await status('op-short-1')) === 'completed' && (await status('op-short-2')) === 'completed',
      {
        what: 'the short items to complete',
        timeoutMs: 60_000,
      },
    );
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('list', () => {
    it('prints one line per item through GET /items, newest first, filtered by status', async () => {
      await submit([{ itemId: 'op-list-long', prompt: 'A long tale', maxTokens: 4000 }]);
      await waitFor(async () => (await status('op-list-long')) === 'streaming', {
        what: 'op-list-long to stream',
      });

      const completed = await waitFor(
        async () => {
          const result = await cli(list, ['--status', 'completed', ...stackArgs]);
          return result.stdout.split('\n').filter(Boolean).length === 2 ? result : undefined;
        },
        { what: 'both completed items in the list (the index is eventually consistent)' },
      );
      expect(completed.code).toBe(0);
      expect(completed.stderr).toBe('');
      const lines = completed.stdout.trimEnd().split('\n');
      for (const line of lines)
        expect(line).toMatch(/^op-short-[12] {2}completed {2}default {2}\S+ {2}\d{4}-/);
      expect(lines.map((line) => line.split('  ')[0]).sort()).toEqual(['op-short-1', 'op-short-2']);
      // Newest first: both were claimed from one batch, so either may be the newer.
      const createdAt = lines.map((line) => line.split('  ').at(-1) ?? '');
      expect([...createdAt].sort().reverse()).toEqual(createdAt);

      const streaming = await cli(list, ['--status', 'streaming', '--json', ...stackArgs]);
      expect(streaming.code).toBe(0);
      const entries = JSON.parse(streaming.stdout) as Array<{
        itemId: string;
        status: string;
        text?: string;
      }>;
      expect(entries.map((e) => [e.itemId, e.status])).toEqual([['op-list-long', 'streaming']]);
      expect(entries[0]).not.toHaveProperty('text');
    });

    it('keeps the items of one tenant and at most --limit of them', async () => {
      const limited = await cli(list, ['--limit', '1', '--tenant', 'default', ...stackArgs]);
      expect(limited.code).toBe(0);
      expect(limited.stdout.trimEnd().split('\n')).toHaveLength(1);
      const other = await cli(list, ['--tenant', 'someone-else', ...stackArgs]);
      expect(other).toEqual({ code: 0, stdout: '', stderr: '' });
    });

    it.each([
      [['--status', 'done'], '--status must be one of queued, streaming, completed, failed; got "done"'],
      [['--limit', '0'], '--limit must be a whole number from 1 to 100; got "0"'],
      [['--limit', 'ten'], '--limit must be a whole number from 1 to 100; got "ten"'],
      [['--tenant', 'a b'], '--tenant must be 1-64 characters'],
      [['--colour'], "Unknown option '--colour'"],
      [['extra'], "Unexpected argument 'extra'"],
    ])('rejects %j with the usage and exit code 2', async (args, message) => {
      const result = await cli(list, [...args, ...stackArgs]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain('usage: npm run cli -- list');
      expect(result.stdout).toBe('');
    });

    it('prints its help on stdout with exit code 0', async () => {
      const result = await cli(list, ['--help']);
      expect(result).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout).toContain('usage: npm run cli -- list');
    });
  });

  describe('cancel', () => {
    it('stops a streaming item through the WebSocket cancel action; it ends failed / cancelled with its text so far', async () => {
      await submit([{ itemId: 'op-cancel-1', prompt: 'An endless saga', maxTokens: 4000 }]);
      await waitFor(async () => (await status('op-cancel-1')) === 'streaming', {
        what: 'op-cancel-1 to stream',
      });

      const result = await cli(cancel, ['op-cancel-1', ...stackArgs]);

      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^op-cancel-1 cancelled \(failed \/ cancelled, \d+ characters kept\)\n$/);
      const stored = await readItem(stack.clients.dynamo, stack.config.tables, 'op-cancel-1');
      expect(stored?.status).toBe('failed');
      expect(stored?.error?.code).toBe('cancelled');
      expect(stored?.text.length).toBeGreaterThan(0);
    });

    it('refuses an item that already ended, and one that does not exist, with exit code 1', async () => {
      const ended = await cli(cancel, ['op-short-1', ...stackArgs]);
      expect(ended.code).toBe(1);
      expect(ended.stderr).toContain('op-short-1 was not cancelled: it had already completed');
      expect(await status('op-short-1')).toBe('completed');

      const unknown = await cli(cancel, ['op-nowhere', ...stackArgs]);
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('op-nowhere');
    });

    it('says so when the WebSocket API cannot be reached', async () => {
      const outcome = await cancel.cancelItem({
        url: 'ws://127.0.0.1:1/local',
        token: stack.info.token,
        itemId: 'op-cancel-1',
        waitMs: 1_000,
      });
      expect(outcome.kind).toBe('unreachable');
    });

    it.each([
      [[], 'give exactly one item id'],
      [['a', 'b'], 'give exactly one item id'],
      [['bad id!'], 'is not an item id'],
      [['x', '--wait', 'soon'], '--wait must be a whole number'],
      [['x', '--force'], "Unknown option '--force'"],
    ])('rejects %j with the usage and exit code 2', async (args, message) => {
      const result = await cli(cancel, [...args, ...stackArgs]);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain('usage: npm run cli -- cancel');
    });
  });
});

describe('npm run smoke on the local stack', () => {
  let dir: string;
  let stack: LocalStack;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'smoke-'));
    stack = await startLocalStack({ dataDir: dir, inMemory: true, bedrock: { tokensPerSecond: 0 } });
  }, 120_000);
  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('passes every check: stored texts equal InvokeModel’s, the viewer ends with the stored text, GET /items lists them', async () => {
    const checks = await runSmoke(loadTarget(['--stack', stack.stackFile]), { items: 3, timeoutMs: 60_000 });
    expect(checks.filter((c) => !c.ok)).toEqual([]);
    expect(checks.map((c) => c.name)).toEqual([
      'submit',
      expect.stringMatching(/^item smoke-.*-0$/),
      expect.stringMatching(/^item smoke-.*-1$/),
      expect.stringMatching(/^item smoke-.*-2$/),
      'viewer',
      'list',
    ]);
    expect(checks[1]?.detail).toMatch(/text equals InvokeModel's/);
  });

  it('fails when the stack does not answer as it should (a token it does not accept)', async () => {
    const target = { ...loadTarget(['--stack', stack.stackFile]), token: 'not-a-token' };
    const checks = await runSmoke(target, { items: 1, timeoutMs: 5_000 });
    expect(checks.find((c) => c.name === 'submit')?.ok).toBe(true);
    expect(checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^item smoke-/), 'viewer', 'list']),
    );
  });
});

describe('command lines of every program', () => {
  it('cli: --help lists every command on stdout with exit code 0; --version prints the package version', async () => {
    const help = await program(TSX, 'cli/main.ts', '--help');
    expect(help.code).toBe(0);
    expect(help.stderr).toBe('');
    for (const command of ['cancel', 'get', 'list', 'submit', 'watch']) {
      expect(help.stdout).toMatch(new RegExp(`^ {2}${command} +\\S`, 'm'));
    }
    const version = await program(TSX, 'cli/main.ts', '--version');
    expect(version).toMatchObject({ code: 0, stdout: '0.1.0\n' });
  });

  it('cli: an unknown command or option prints the usage on stderr with exit code 2', async () => {
    for (const args of [['frobnicate'], ['--verbose']]) {
      const result = await program(TSX, 'cli/main.ts', ...args);
      expect(result.code, JSON.stringify(args)).toBe(2);
      expect(result.stderr).toContain('usage: npm run cli -- <command>');
      expect(result.stdout).toBe('');
    }
  });

  it('the installed bin runs the command line', async () => {
    const result = await program('cli/bin.mjs', '--version');
    expect(result).toMatchObject({ code: 0, stdout: '0.1.0\n' });
  });

  it.each([
    ['npm start', 'local/main.ts', ['--frsh'], "Unknown option '--frsh'", 'usage: npm start'],
    ['bench', 'bench/main.ts', ['--only', 'load-7'], '--only: no scenario load-7', 'usage: npm run bench'],
    ['chaos', 'bench/chaos.ts', ['--seed', 'abc'], '--seed must be a whole number', 'usage: npm run chaos'],
    ['bench:quota', 'bench/quota.ts', ['--fast'], "Unknown option '--fast'", 'usage: npm run bench:quota'],
  ])(
    '%s %j prints what is wrong and the usage, exit code 2, no stack trace',
    async (_name, file, args, message, usage) => {
      const result = await program(TSX, file, ...args);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(message);
      expect(result.stderr).toContain(usage);
      expect(result.stderr).not.toMatch(/^\s+at /m);
      expect(result.stdout).toBe('');
    },
  );

  it.each([
    ['local/main.ts', 'usage: npm start'],
    ['bench/main.ts', 'usage: npm run bench'],
    ['bench/chaos.ts', 'usage: npm run chaos'],
    ['bench/quota.ts', 'usage: npm run bench:quota'],
  ])('%s --help prints the usage on stdout with exit code 0', async (file, usage) => {
    const result = await program(TSX, file, '--help');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain(usage);
  });
});
