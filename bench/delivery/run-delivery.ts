/**
 * The viewer side of the consumer, measured on the local stack: what a dashboard costs in
 * WebSocket messages with and without `batch`, and how long a consumer batch takes with slow
 * viewers connected, with the fan-out's time budget and packed frames against fan-out inside the
 * batch without them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { KinesisStreamEvent } from 'aws-lambda';
import { WebSocket } from 'ws';
import { createReassemblerHandler } from '../../consumers/reassembler/handler.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { ENV } from '../../shared/env.js';
import { readItemHead } from '../../shared/items.js';
import { createLogger, createMetrics } from '../../shared/telemetry.js';
import { type Percentiles, per1k, percentiles } from '../support/stats.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The model as `npm run bench` runs it: 300 ms to the first token, then 80 tokens/s. */
const MODEL = { timeToFirstTokenMs: 300, tokensPerSecond: 80 } as const;

/** What one dashboard subscribed to every item received while the generations ran. */
export interface DashboardCost {
  readonly generations: number;
  /** Output tokens of the generations (their stored usage). */
  readonly tokens: number;
  readonly batch: {
    readonly messages: number;
    readonly perThousandTokens: number;
    readonly itemsDone: number;
  };
  readonly plain: {
    readonly messages: number;
    readonly perThousandTokens: number;
    readonly itemsDone: number;
  };
}

/** Consumer batch durations in one delivery mode with slow viewers connected. */
export interface SlowViewersRun {
  readonly mode: 'budget' | 'unbounded';
  /** `FANOUT_BUDGET_MS` of the run. */
  readonly fanoutBudgetMs: number;
  readonly packedFrames: boolean;
  readonly slowViewers: number;
  readonly generations: number;
  readonly completed: number;
  readonly elapsedMs: number;
  /** Durations of the consumer's invocations that ended (ms). */
  readonly batchMs: Percentiles;
  /** Invocations still running when the run ended, and the longest of them so far (ms). */
  readonly inFlight: { readonly count: number; readonly longestMs: number };
  readonly droppedConnections: number;
}

/** Every figure of one delivery bench. */
export interface DeliveryBench {
  readonly startedAt: string;
  readonly quick: boolean;
  readonly dashboards: DashboardCost;
  readonly slowViewers: readonly SlowViewersRun[];
}

/** Runs both measurements; `progress` gets a line per step. */
export async function runDeliveryBench(
  quick: boolean,
  progress: (line: string) => void,
): Promise<DeliveryBench> {
  const startedAt = new Date().toISOString();
  progress('dashboards: 100 concurrent generations, one dashboard with `batch`, one without');
  const dashboards = await measureDashboards(100, quick ? 120 : 240);
  progress(
    `  ${dashboards.tokens} tokens; batch ${dashboards.batch.messages} messages, plain ${dashboards.plain.messages}`,
  );
  const slowViewers: SlowViewersRun[] = [];
  const viewers = 200;
  const generations = quick ? 10 : 20;
  for (const mode of ['budget', 'unbounded'] as const) {
    progress(`slow viewers: ${viewers} connected, ${generations} generations, fan-out ${mode}`);
    const run = await measureSlowViewers(mode, viewers, generations, quick ? 60_000 : 120_000);
    progress(
      `  ${run.batchMs.count} batches, p99 ${run.batchMs.p99} ms, max ${run.batchMs.max} ms; ` +
        `${run.inFlight.count} in flight at the end; ${run.completed}/${run.generations} completed in ${(run.elapsedMs / 1000).toFixed(0)} s`,
    );
    slowViewers.push(run);
  }
  return { startedAt, quick, dashboards, slowViewers };
}

/** A fresh in-memory stack whose chunk handler is the real consumer, timed per invocation. */
async function timedStack(env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'delivery-bench-'));
  const durations: number[] = [];
  const running = new Map<number, number>();
  let next = 0;
  let consumer: ((event: KinesisStreamEvent) => Promise<unknown>) | undefined;
  const stack = await startLocalStack({
    dataDir: dir,
    inMemory: true,
    bedrock: { ...MODEL },
    env,
    chunkMapping: {
      onError: () => {},
      handler: async (event) => {
        if (!consumer) throw new Error('the consumer is not built yet');
        const id = next++;
        const started = performance.now();
        running.set(id, started);
        try {
          return (await consumer(event)) as never;
        } finally {
          running.delete(id);
          durations.push(Math.round(performance.now() - started));
        }
      },
    },
  });
  // The stack's own consumer, built the same way, publishing through the stack's fan-out.
  consumer = createReassemblerHandler({
    config: stack.config,
    clients: stack.clients,
    deadLetters: { send: async () => {} },
    publisher: stack.fanout,
    logger: createLogger('consumer'),
    metrics: createMetrics('consumer'),
  });
  const inFlight = () => {
    const now = performance.now();
    const ages = [...running.values()].map((t) => Math.round(now - t));
    return { count: ages.length, longestMs: ages.length > 0 ? Math.max(...ages) : 0 };
  };
  const stop = async () => {
    await stack.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { stack, durations, inFlight, stop };
}

/** A raw WebSocket dashboard: counts messages and the items it saw end. */
class Dashboard {
  messages = 0;
  readonly done = new Set<string>();
  readonly socket: WebSocket;
  readonly opened: Promise<void>;

  constructor(stack: LocalStack, batch: boolean) {
    this.socket = new WebSocket(`${stack.info.websocket.url}?token=${encodeURIComponent(stack.info.token)}`);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => {
        this.socket.send(
          JSON.stringify({ action: 'subscribe', all: true, ...(batch ? { batch: true } : {}) }),
        );
        resolve();
      });
      this.socket.once('error', reject);
    });
    this.socket.on('message', (data: Buffer) => {
      this.messages++;
      const frame = JSON.parse(data.toString('utf8')) as {
        type: string;
        itemId?: string;
        messages?: unknown[];
      };
      const inner =
        frame.type === 'batch' ? (frame.messages as Array<{ type: string; itemId?: string }>) : [frame];
      for (const m of inner) if (m.type === 'done' && m.itemId) this.done.add(m.itemId);
    });
  }
}

/** Every-item subscriptions stored: the fan-out will find them. */
async function waitForDashboards(stack: LocalStack, count: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const page = await stack.clients.dynamo.send(
      new QueryCommand({
        TableName: stack.config.tables.connections,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': 'subs#*' },
        Select: 'COUNT',
      }),
    );
    if ((page.Count ?? 0) >= count) return;
    if (Date.now() > deadline)
      throw new Error(`only ${page.Count} of ${count} dashboards subscribed after 30 s`);
    await sleep(100);
  }
}

function workItems(prefix: string, count: number, maxTokens: number): WorkItem[] {
  return Array.from({ length: count }, (_, i) => ({
    itemId: `${prefix}-${i}`,
    prompt: `${prefix} ${i}: how dashboards follow many generations at once`,
    maxTokens,
  }));
}

async function submit(stack: LocalStack, items: readonly WorkItem[]): Promise<void> {
  for (let i = 0; i < items.length; i += 500) {
    await stack.clients.kinesis.send(
      new PutRecordsCommand({
        StreamName: stack.config.inputStream,
        Records: items.slice(i, i + 500).map((item) => ({
          PartitionKey: item.itemId,
          Data: Buffer.from(JSON.stringify(item)),
        })),
      }),
    );
  }
}

/** Polls the items until every one ended or `deadline` (epoch ms); returns how many completed. */
async function untilEnded(stack: LocalStack, items: readonly WorkItem[], deadline: number): Promise<number> {
  for (;;) {
    const heads = await Promise.all(
      items.map((i) => readItemHead(stack.clients.dynamo, stack.config.tables, i.itemId)),
    );
    const ended = heads.filter((h) => h?.status === 'completed' || h?.status === 'failed').length;
    if (ended === items.length || Date.now() > deadline)
      return heads.filter((h) => h?.status === 'completed').length;
    await sleep(250);
  }
}

/** Messages per 1,000 tokens for one dashboard with `batch` and one without, side by side. */
async function measureDashboards(generations: number, maxTokens: number): Promise<DashboardCost> {
  const { stack, stop } = await timedStack({});
  try {
    const packed = new Dashboard(stack, true);
    const plain = new Dashboard(stack, false);
    await Promise.all([packed.opened, plain.opened]);
    await waitForDashboards(stack, 2);
    const items = workItems('dash', generations, maxTokens);
    await submit(stack, items);
    await untilEnded(stack, items, Date.now() + 180_000);
    // Both dashboards have seen every item end (or the bound passed).
    const deadline = Date.now() + 30_000;
    while ((packed.done.size < generations || plain.done.size < generations) && Date.now() < deadline)
      await sleep(100);
    let tokens = 0;
    for (const item of items)
      tokens +=
        (await readItemHead(stack.clients.dynamo, stack.config.tables, item.itemId))?.usage?.outputTokens ??
        0;
    for (const d of [packed, plain]) d.socket.close();
    const side = (d: Dashboard) => ({
      messages: d.messages,
      perThousandTokens: Math.round(per1k(d.messages, tokens) * 10) / 10,
      itemsDone: d.done.size,
    });
    return { generations, tokens, batch: side(packed), plain: side(plain) };
  } finally {
    await stop();
  }
}

/**
 * Viewers that never read: every post to them hangs (the gateway holds it, as API Gateway does for
 * a connection whose client reads nothing), so each delivery to one lasts the post deadline (3 s).
 * The socket itself still sees the gateway close it: a viewer the fan-out drops reconnects, as the
 * client library does, and is slow again.
 */
class SlowViewers {
  private readonly sockets = new Set<WebSocket>();
  private stopped = false;
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly stack: LocalStack,
    private readonly batch: boolean,
  ) {}

  /** Opens `count` slow viewers, one after the other (so each new connection id is known). */
  async open(count: number): Promise<void> {
    for (let i = 0; i < count; i++) await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const before = new Set(this.stack.websocket.connectionIds());
    const socket = new WebSocket(
      `${this.stack.info.websocket.url}?token=${encodeURIComponent(this.stack.info.token)}`,
    );
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    const id = this.stack.websocket.connectionIds().find((c) => !before.has(c));
    if (id) this.stack.websocket.injectFault(id, { delayMs: 60_000 });
    socket.send(JSON.stringify({ action: 'subscribe', all: true, ...(this.batch ? { batch: true } : {}) }));
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      if (this.stopped) return;
      this.queue = this.queue.then(() => sleep(250)).then(() => this.connect().catch(() => {}));
    });
  }

  close(): void {
    this.stopped = true;
    for (const socket of this.sockets) socket.terminate();
  }
}

/** Consumer batch durations with `viewers` slow dashboards connected, in one delivery mode. */
async function measureSlowViewers(
  mode: 'budget' | 'unbounded',
  viewers: number,
  generations: number,
  windowMs: number,
): Promise<SlowViewersRun> {
  // Unbounded: fan-out waits for every delivery (the largest budget the configuration allows),
  // and dashboards get one message per item, as before `batch` frames.
  const fanoutBudgetMs = mode === 'budget' ? 1_500 : 60_000;
  const packedFrames = mode === 'budget';
  const { stack, durations, inFlight, stop } = await timedStack({
    [ENV.fanoutBudgetMs]: String(fanoutBudgetMs),
  });
  const slow = new SlowViewers(stack, packedFrames);
  try {
    await slow.open(viewers);
    await waitForDashboards(stack, viewers);
    const items = workItems(`slow-${mode}`, generations, 150);
    const started = Date.now();
    await submit(stack, items);
    const completed = await untilEnded(stack, items, started + windowMs);
    const elapsedMs = Date.now() - started;
    return {
      mode,
      fanoutBudgetMs,
      packedFrames,
      slowViewers: viewers,
      generations,
      completed,
      elapsedMs,
      batchMs: percentiles(durations),
      inFlight: inFlight(),
      droppedConnections: stack.fanout.stats().droppedConnections,
    };
  } finally {
    slow.close();
    await stop();
  }
}
