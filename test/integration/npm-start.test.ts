import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { StackFile } from '../../shared/contracts/stack-file.js';
import { StoredItem } from '../../shared/contracts/stored-item.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
const TSX = join('node_modules', '.bin', 'tsx');

/** Starts `npm start`'s program the way the script does, on its own data folder. */
function start(dataDir: string, ...args: string[]): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(TSX, ['local/main.ts', '--data-dir', dataDir, ...args], {
    env: { ...process.env, BEDROCK_TOKENS_PER_SECOND: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  return { child, output: () => output };
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

async function getItem(stack: StackFile, itemId: string) {
  const response = await fetch(`${stack.http.url}/items/${itemId}`, {
    headers: { authorization: `Bearer ${stack.token}` },
  });
  return response.status === 200 ? StoredItem.parse(await response.json()) : undefined;
}

describe('npm start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'npm-start-'));
  const stackFile = join(dataDir, 'stack.json');
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('comes up, takes a record from an SDK client, stops on SIGINT, and resumes after a restart', async () => {
    // Prepare: a fresh stack without the demo
    const first = start(dataDir, '--fresh', '--no-demo');
    const stack = await waitFor(
      () => existsSync(stackFile) && StackFile.parse(JSON.parse(readFileSync(stackFile, 'utf8'))),
      {
        what: `the stack file (output so far: ${first.output()})`,
        timeoutMs: 30_000,
      },
    );

    // Act: an upstream system writes a work item with the AWS SDK (the CLI's submit)
    const submitted = await run(TSX, [
      'cli/main.ts',
      'submit',
      'Persist me',
      '--id',
      'restart-1',
      '--stack',
      stackFile,
    ]);
    expect(submitted.stdout.trim()).toBe('restart-1');
    const completed = await waitFor(
      async () => {
        const item = await getItem(stack, 'restart-1');
        return item?.status === 'completed' ? item : undefined;
      },
      { what: 'restart-1 to complete', timeoutMs: 30_000 },
    );

    first.child.kill('SIGINT');
    expect(await exitOf(first.child)).toBe(0);
    expect(first.output()).toContain('stopped');
    expect(existsSync(stackFile)).toBe(false);
    expect(existsSync(join(dataDir, 'stack.pid'))).toBe(false);

    // Assess: a restart on the same folder keeps the item and does not generate it again
    const second = start(dataDir, '--no-demo');
    const restarted = await waitFor(
      () => existsSync(stackFile) && StackFile.parse(JSON.parse(readFileSync(stackFile, 'utf8'))),
      {
        what: 'the stack file after restart',
        timeoutMs: 30_000,
      },
    );
    try {
      const again = await getItem(restarted, 'restart-1');
      expect(again?.text).toBe(completed.text);
      expect(again?.attempt).toBe(completed.attempt);
      // The input stream's checkpoint survived: the work item is not read (let alone generated) again.
      const stats = (await (await fetch(`${restarted.http.url}/_local/stats`)).json()) as {
        mappings: { input: { records: number } };
        bedrock: { streams: number };
      };
      expect(stats.mappings.input.records).toBe(0);
      expect(stats.bedrock.streams).toBe(0);
    } finally {
      second.child.kill('SIGTERM');
      expect(await exitOf(second.child)).toBe(0);
    }
  });

  it('refuses to start beside a running stack on the same folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'npm-start-twice-'));
    const first = start(dir, '--no-demo');
    try {
      await waitFor(() => existsSync(join(dir, 'stack.pid')), { what: 'the first stack', timeoutMs: 30_000 });
      const second = start(dir, '--no-demo');
      expect(await exitOf(second.child)).toBe(1);
      expect(second.output()).toContain('already running');
    } finally {
      first.child.kill('SIGINT');
      await exitOf(first.child);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
