import type { EventLoopUtilization } from 'node:perf_hooks';
import type { BedrockStandInOptions, BedrockStandInStats } from '../../local/bedrock/index.js';
import { startTsWorker } from '../../local/ts-worker.js';
import type { DeltaPut, MeterStats } from './meter.js';
import type { TappedStream } from './tap.js';

export interface ModelThreadData {
  readonly model: BedrockStandInOptions;
  /** DynamoDB and Kinesis endpoints the meters forward to. */
  readonly dynamoTarget: string;
  readonly kinesisTarget: string;
}

export interface ModelThreadStats {
  /** `nowMs()` on the model thread when the figures were read. */
  readonly at: number;
  readonly standIn: BedrockStandInStats;
  readonly dynamo: MeterStats;
  readonly kinesis: MeterStats;
  /** Cumulative event-loop utilization of the model thread. */
  readonly elu: EventLoopUtilization;
}

export type ModelThreadRequest =
  | { readonly type: 'stats'; readonly id: number }
  | { readonly type: 'deltaPuts'; readonly id: number; readonly itemIds: readonly string[] }
  | { readonly type: 'stop' };
export type ModelThreadReply =
  | {
      readonly type: 'ready';
      readonly endpoints: { readonly bedrock: string; readonly dynamodb: string; readonly kinesis: string };
    }
  | { readonly type: 'tapped'; readonly stream: TappedStream }
  | { readonly type: 'streamEnded'; readonly itemId: string }
  | { readonly type: 'stats'; readonly id: number; readonly stats: ModelThreadStats }
  | { readonly type: 'deltaPuts'; readonly id: number; readonly puts: Record<string, DeltaPut[]> }
  | { readonly type: 'stopped' };

export interface ModelThread {
  /** Point the flows' Bedrock, DynamoDB and Kinesis clients here. */
  readonly endpoints: { readonly bedrock: string; readonly dynamodb: string; readonly kinesis: string };
  /** Timed streams received so far, by item (the last stream of an item wins). */
  readonly tapped: Map<string, TappedStream>;
  /** Called whenever a response stream of a bench item ends at the model. */
  onStreamEnd: ((itemId: string) => void) | undefined;
  /** Figures of the model thread; every tapped stream that ended before the call has arrived when it resolves. */
  stats(): Promise<ModelThreadStats>;
  /** The chunk stream's delta records of these items as Kinesis accepted them (for latency stages). */
  deltaPuts(itemIds: readonly string[]): Promise<Record<string, DeltaPut[]>>;
  stop(): Promise<void>;
}

/** Starts `model-thread.ts` on a worker thread. */
export async function startModelThread(data: ModelThreadData): Promise<ModelThread> {
  const worker = startTsWorker(new URL('./model-thread.ts', import.meta.url), data);
  const tapped = new Map<string, TappedStream>();
  const waiting = new Map<number, (stats: ModelThreadStats) => void>();
  const waitingPuts = new Map<number, (puts: Record<string, DeltaPut[]>) => void>();
  let stopped: (() => void) | undefined;
  let nextId = 0;
  let thread: ModelThread | undefined;

  const endpoints = await new Promise<ModelThread['endpoints']>((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) =>
      reject(new Error(`the model thread exited with ${code} before it was ready`)),
    );
    worker.on('message', (message: ModelThreadReply) => {
      switch (message.type) {
        case 'ready':
          resolve(message.endpoints);
          break;
        case 'tapped':
          tapped.set(message.stream.itemId, message.stream);
          break;
        case 'streamEnded':
          thread?.onStreamEnd?.(message.itemId);
          break;
        case 'stats':
          waiting.get(message.id)?.(message.stats);
          waiting.delete(message.id);
          break;
        case 'deltaPuts':
          waitingPuts.get(message.id)?.(message.puts);
          waitingPuts.delete(message.id);
          break;
        case 'stopped':
          stopped?.();
          break;
      }
    });
  });
  worker.removeAllListeners('error').removeAllListeners('exit');
  worker.on('error', (err) => process.stderr.write(`model thread failed: ${err.message}\n`));

  thread = {
    onStreamEnd: undefined,
    endpoints,
    tapped,
    stats: () =>
      new Promise((resolve) => {
        const id = nextId++;
        waiting.set(id, resolve);
        worker.postMessage({ type: 'stats', id } satisfies ModelThreadRequest);
      }),
    deltaPuts: (itemIds) =>
      new Promise((resolve) => {
        const id = nextId++;
        waitingPuts.set(id, resolve);
        worker.postMessage({ type: 'deltaPuts', id, itemIds } satisfies ModelThreadRequest);
      }),
    async stop() {
      const done = new Promise<void>((resolve) => {
        stopped = resolve;
      });
      worker.postMessage({ type: 'stop' } satisfies ModelThreadRequest);
      await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 3_000))]);
      await worker.terminate();
    },
  };
  return thread;
}
