import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, describe, expect, it } from 'vitest';
import { expectedText } from '../../local/expected-text.js';
import { StackFile } from '../../shared/contracts/stack-file.js';
import { StoredItem } from '../../shared/contracts/stored-item.js';
import { waitFor } from '../support/wait.js';

const run = promisify(execFile);
const TSX = join('node_modules', '.bin', 'tsx');

/** Every program started, so none outlives a failed test. */
const children: ChildProcess[] = [];

/** Starts `npm start`'s program the way the script does, on its own data folder. */
function start(dataDir: string, ...args: string[]): { child: ChildProcess; output: () => string } {
  let output = '';
  // As `npm start` runs it: node itself gets the signals, with no launcher relaying them.
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'local/main.ts', '--data-dir', dataDir, ...args],
    {
      env: { ...process.env, BEDROCK_TOKENS_PER_SECOND: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
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

/** Slows the running stack's model stand-in so a long generation stays in flight. */
async function slowModel(stack: StackFile): Promise<void> {
  const response = await fetch(`${stack.bedrock.endpoint}/_control/timing`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tokensPerSecond: 40 }),
  });
  expect(response.status).toBe(200);
}

/** Submits a long item with the CLI and waits until its text is streaming. */
async function submitInFlight(stack: StackFile, stackFile: string, itemId: string): Promise<void> {
  await run(TSX, [
    'cli/main.ts',
    'submit',
    'A long story',
    '--id',
    itemId,
    '--max-tokens',
    '3000',
    '--stack',
    stackFile,
  ]);
  await waitFor(
    async () => {
      const item = await getItem(stack, itemId);
      return item?.status === 'streaming' && item.text.length > 0;
    },
    { what: `${itemId} to stream`, timeoutMs: 30_000 },
  );
}

/** Sends `signal` and returns the exit code and how long the process took to exit. */
async function stopTimed(
  child: ChildProcess,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; ms: number }> {
  const sent = Date.now();
  child.kill(signal);
  const code = await exitOf(child);
  return { code, ms: Date.now() - sent };
}

describe('npm start', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'npm-start-'));
  const stackFile = join(dataDir, 'stack.json');
  afterAll(() => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('comes up, takes a record from an SDK client, stops within 2 s of SIGINT or SIGTERM with a generation in flight, and resumes it after a restart', async () => {
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

    // Act: Ctrl-C while a generation streams
    await slowModel(stack);
    await submitInFlight(stack, stackFile, 'in-flight-1');
    const firstStop = await stopTimed(first.child, 'SIGINT');
    expect(firstStop.code, first.output().slice(-3000)).toBe(0);
    expect(firstStop.ms).toBeLessThan(2_000);
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
    let secondStopped = false;
    try {
      const again = await getItem(restarted, 'restart-1');
      expect(again?.text).toBe(completed.text);
      expect(again?.attempt).toBe(completed.attempt);
      // The generation cut off by the stop resumes as after a crash: its work item was not
      // checkpointed, so it is read again, and a new attempt ends with exactly the model's text.
      const resumed = await waitFor(
        async () => {
          const item = await getItem(restarted, 'in-flight-1');
          return item?.status === 'completed' ? item : undefined;
        },
        { what: 'in-flight-1 to complete after the restart', timeoutMs: 45_000 },
      );
      const bedrock = new BedrockRuntimeClient({
        region: restarted.region,
        endpoint: restarted.bedrock.endpoint,
        credentials: restarted.credentials,
        // The stand-in speaks HTTP/1.1; the client's default for Bedrock is HTTP/2.
        requestHandler: new NodeHttpHandler(),
      });
      const expected = await expectedText(
        bedrock,
        { itemId: 'in-flight-1', prompt: 'A long story', maxTokens: 3000 },
        { modelId: restarted.bedrock.modelId, maxTokens: 3000 },
      );
      bedrock.destroy();
      expect(resumed.text).toBe(expected);
      expect(resumed.attempt).toBe(2);
      // The input stream's checkpoint survived: only the abandoned work item is read again.
      const stats = (await (await fetch(`${restarted.http.url}/_local/stats`)).json()) as {
        mappings: { input: { records: number } };
        bedrock: { streams: number };
      };
      expect(stats.mappings.input.records).toBe(1);
      expect(stats.bedrock.streams).toBe(1);

      // SIGTERM while a generation streams stops as promptly
      await slowModel(restarted);
      await submitInFlight(restarted, stackFile, 'in-flight-2');
      const secondStop = await stopTimed(second.child, 'SIGTERM');
      secondStopped = true;
      expect(secondStop.code, second.output().slice(-3000)).toBe(0);
      expect(secondStop.ms).toBeLessThan(2_000);
    } finally {
      if (!secondStopped) {
        second.child.kill('SIGTERM');
        await exitOf(second.child);
      }
    }
    // Three starts, a generation and the resumed one's claim lease (20 s) to expire.
  }, 180_000);

  it('refuses to start beside a running stack on the same folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'npm-start-twice-'));
    const first = start(dir, '--no-demo');
    try {
      await waitFor(() => existsSync(join(dir, 'stack.pid')), { what: 'the first stack', timeoutMs: 60_000 });
      const second = start(dir, '--no-demo');
      expect(await exitOf(second.child)).toBe(1);
      expect(second.output()).toContain('already running');
    } finally {
      first.child.kill('SIGINT');
      await exitOf(first.child);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
