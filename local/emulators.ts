import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import dynalite from 'dynalite';
import kinesalite from 'kinesalite';
import { closeServer, listenOnLoopback } from './listen.js';
import { startTsWorker } from './ts-worker.js';

/** An emulator listening on loopback. */
export interface RunningEmulator {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface EmulatorOptions {
  /** LevelDB folder for persistence; in memory when omitted. */
  readonly path?: string;
  /** 0 (default) picks a free port. */
  readonly port?: number;
}

async function run(server: Server, port: number | undefined): Promise<RunningEmulator> {
  const bound = await listenOnLoopback(server, port ?? 0);
  return { endpoint: `http://127.0.0.1:${bound}`, port: bound, stop: () => closeServer(server) };
}

/** Starts kinesalite (Kinesis) in this process. Streams become ACTIVE at once. */
export function startKinesis(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  if (options.path) mkdirSync(options.path, { recursive: true });
  const server = kinesalite({
    path: options.path,
    createStreamMs: 0,
    deleteStreamMs: 0,
    updateStreamMs: 0,
    shardLimit: 100,
  });
  return run(server, options.port);
}

/** Starts dynalite (DynamoDB) in this process. Tables become ACTIVE at once. */
export function startDynamo(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  if (options.path) mkdirSync(options.path, { recursive: true });
  const server = dynalite({ path: options.path, createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  return run(server, options.port);
}

/** What the emulator thread is started with. */
export interface EmulatorThreadData {
  readonly kinesis: EmulatorOptions;
  readonly dynamodb: EmulatorOptions;
}

/** What the emulator thread tells its host. */
export type EmulatorThreadReply =
  | { readonly type: 'ready'; readonly kinesis: number; readonly dynamodb: number }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'stopped' };

/** Kinesis and DynamoDB emulators, on this thread or a worker thread. */
export interface Emulators {
  readonly kinesis: RunningEmulator;
  readonly dynamodb: RunningEmulator;
  /** Stops both emulators and ends the thread. */
  stop(): Promise<void>;
}

/**
 * Starts kinesalite and dynalite together on a worker thread (`emulator-thread.ts`), so their
 * CPU time is not the handlers'. Either emulator's `stop` stops both, and the thread.
 */
async function startEmulatorThread(options: EmulatorThreadData): Promise<Emulators> {
  const worker = startTsWorker(new URL('./emulator-thread.ts', import.meta.url), options);
  const reply = await new Promise<EmulatorThreadReply>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) =>
      reject(new Error(`the emulator thread exited with ${code} before it was ready`)),
    );
  });
  worker.removeAllListeners('error').removeAllListeners('exit');
  if (reply.type !== 'ready') {
    await worker.terminate();
    throw new Error(`the emulators did not start: ${reply.type === 'failed' ? reply.message : reply.type}`);
  }
  worker.on('error', (err) => process.stderr.write(`emulator thread failed: ${err.message}\n`));
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      worker.once('message', () => void worker.terminate());
      worker.postMessage('stop');
    });
    return stopping;
  };
  const emulator = (port: number): RunningEmulator => ({ endpoint: `http://127.0.0.1:${port}`, port, stop });
  return { kinesis: emulator(reply.kinesis), dynamodb: emulator(reply.dynamodb), stop };
}

/** Starts kinesalite and dynalite, on a worker thread when `thread` is set. */
export async function startEmulators(
  options: EmulatorThreadData & { readonly thread: boolean },
): Promise<Emulators> {
  if (options.thread) return startEmulatorThread(options);
  const [kinesis, dynamodb] = await Promise.all([
    startKinesis(options.kinesis),
    startDynamo(options.dynamodb),
  ]);
  return {
    kinesis,
    dynamodb,
    stop: async () => {
      await Promise.all([kinesis.stop(), dynamodb.stop()]);
    },
  };
}
