import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import dynalite from 'dynalite';
import kinesalite from 'kinesalite';
import { closeServer, listenOnLoopback } from './listen.js';

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
