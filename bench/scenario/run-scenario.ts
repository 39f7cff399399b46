import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { expectedText } from '../../local/expected-text.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { ENV } from '../../shared/env.js';
import { type FlowMappings, type NaiveFlow, startNaiveFlow } from '../naive/flow.js';
import { nowMs } from '../support/clock.js';
import { freePorts } from '../support/ports.js';
import { type Percentiles, per1k, percentiles } from '../support/stats.js';
import type { MeterStats, StreamPuts, TableWrites } from './meter.js';
import { type ModelThread, type ModelThreadStats, startModelThread } from './model-host.js';
import { type CpuProfileSummary, startCpuProfile } from './profile.js';
import { addStages, emptyStages } from './stages.js';
import { promptOf } from './tap.js';
import { type Answer, answerOf, tokensWithin } from './tokens.js';
import { BenchViewer, type Receipt } from './viewers.js';

export type Flow = 'pipeline' | 'naive';

/** One measured run of one flow, in a fresh local stack. */
export interface ScenarioSpec {
  /** Short name, unique within a bench run (`load-100`, `cost-512`...). */
  readonly name: string;
  readonly flow: Flow;
  /** Items in flight at once: a new one is submitted when one ends (closed loop). */
  readonly concurrency: number;
  /** Token limit of every item; answers are 60–100 % of it. */
  readonly maxTokens: number;
  /** Submit exactly this many items, then wait for all (cost runs)... */
  readonly items?: number;
  /** ...or keep submitting for this long (load runs). */
  readonly durationMs?: number;
  /** Start of a load run left out of the throughput and latency window. */
  readonly warmupMs: number;
  /** After the last submission, how long to wait for items in flight. */
  readonly drainMs: number;
  /** `perItem`: `count` viewers subscribe to each item before it is submitted; `dashboards`: `count` viewers watch every item. */
  readonly viewers: {
    readonly mode: 'perItem' | 'dashboards';
    readonly count: number;
    /** Dashboards ask for `batch` frames (default: the pipeline's do, as the client library's). */
    readonly batch?: boolean;
  };
  /** Every Nth item's tokens are timed at the model (latency samples). */
  readonly tapEvery: number;
  readonly model: {
    readonly timeToFirstTokenMs: number;
    readonly tokensPerSecond: number;
    readonly tickMs: number;
  };
  readonly mappings: FlowMappings;
  /** Sample the main thread's CPU during the window. */
  readonly profile: boolean;
}

export interface WriteTotals {
  readonly writes: number;
  readonly units: number;
  readonly conditionalFailures: number;
}

export interface ScenarioResult {
  readonly spec: ScenarioSpec;
  readonly startedAt: string;
  readonly elapsedMs: number;
  readonly items: {
    readonly submitted: number;
    readonly completed: number;
    readonly failed: number;
    /** Not ended (at the primary viewer) when the run stopped. */
    readonly unfinished: number;
    /** Viewer copies of ended items whose text differed from the model's answer (must be 0). */
    readonly textMismatches: number;
    readonly viewerDuplicates: number;
    readonly viewerGaps: number;
  };
  /** Every item in flight ended before the drain deadline. */
  readonly drained: boolean;
  readonly window: { readonly ms: number; readonly fromMs: number; readonly toMs: number };
  readonly tokens: {
    /** Written by the model during the whole measured run. */
    readonly model: number;
    readonly modelInWindow: number;
    /** Reached the primary viewer during the window. */
    readonly deliveredInWindow: number;
  };
  readonly throughput: {
    readonly deliveredPerSecond: number;
    readonly offeredPerSecond: number;
    /** Mean number of open model streams during the window. */
    readonly modelStreams: number;
  };
  /**
   * Token left the model → a viewer had it, over the tokens of timed items that left during the
   * window. A token no viewer had by the end of the run counts with the time it waited so far, so
   * with `latencyCensored` > 0 the percentiles are lower bounds.
   */
  readonly latencyMs: Percentiles;
  readonly latencyCensored: number;
  /** Timed items with a token that left the model in the window: what the percentiles are over. */
  readonly latencyItems: number;
  /**
   * Where the added latency goes, over the timed tokens the primary viewer received: token left the
   * model → the producer built the delta record holding it (reading the stream, coalescing) →
   * Kinesis accepted the record (the producer's put queue, the put) → the primary viewer had it
   * (the mapping's poll, the consumer, storage, fan-out, the gateway).
   */
  readonly latencyStagesMs: {
    readonly toRecord: Percentiles;
    readonly toKinesis: Percentiles;
    readonly toViewer: Percentiles;
  };
  readonly viewers: {
    readonly count: number;
    readonly messages: number;
    readonly messagesByType: Record<string, number>;
    /** Times the server closed a viewer (dropped from a consumer batch) and it resumed. */
    readonly reconnects: number;
    /** Tokens the viewers received, summed over viewers. */
    readonly tokens: number;
    /** `PostToConnection` calls the gateway's management API answered (every reply, delta and retry). */
    readonly posts: number;
  };
  readonly kinesis: StreamPuts & {
    readonly recordsRead: number;
    /** Consumer invocations (chunk stream batches). */
    readonly invocations: number;
    /** Chunk records put during the window, per second. */
    readonly recordsPerSecondInWindow: number;
    readonly bytesPerSecondInWindow: number;
  };
  readonly dynamo: {
    readonly tables: Record<string, TableWrites>;
    readonly items: WriteTotals;
    readonly connections: WriteTotals;
  };
  readonly per1kTokens: {
    readonly kinesisRecords: number;
    readonly kinesisBytes: number;
    readonly dynamoWrites: number;
    readonly dynamoWriteUnits: number;
    /** Messages a viewer receives per 1,000 tokens it receives. */
    readonly wsMessagesPerViewer: number;
  };
  readonly memory: { readonly rssBeforeMb: number; readonly rssPeakMb: number };
  readonly cpu: {
    /** Event-loop utilization of the main thread (stack, emulators, handlers, viewers) in the window. */
    readonly mainThread: number;
    /** Of the model thread (stand-in, tap, meters). */
    readonly modelThread: number;
    /** CPU time of the whole process per wall second in the window (cores). */
    readonly processCores: number;
  };
  /** Calls the flow's handlers made to DynamoDB and Kinesis during the window, per second, by operation. */
  readonly callsPerSecond: Record<string, number>;
  readonly profile?: CpuProfileSummary;
  /** Lines the scenario wants in the report (anything odd it noticed). */
  readonly notes: string[];
}

interface Tracked {
  readonly item: WorkItem;
  readonly tapped: boolean;
  readonly submittedAt: number;
  status?: 'completed' | 'failed';
  endedAt?: number;
}

const BYTES_PER_MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs one scenario start to finish: a fresh stack, the flow, its viewers, the load, the figures. */
export async function runScenario(
  spec: ScenarioSpec,
  progress: (line: string) => void,
): Promise<ScenarioResult> {
  const started = Date.now();
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-scenario-'));
  const stops: Array<() => Promise<unknown>> = [];
  const notes: string[] = [];
  try {
    const [kinesisPort, dynamoPort] = await freePorts(2);
    const model = await startModelThread({
      model: spec.model,
      dynamoTarget: `http://127.0.0.1:${dynamoPort}`,
      kinesisTarget: `http://127.0.0.1:${kinesisPort}`,
    });
    stops.push(() => model.stop());
    const stack = await startLocalStack({
      dataDir,
      inMemory: true,
      fresh: true,
      ports: { kinesis: kinesisPort, dynamodb: dynamoPort },
      // Kinesis and DynamoDB are remote services in AWS, like the model: their CPU time is not the pipeline's.
      emulatorThread: true,
      inputShards: spec.mappings.inputShards,
      chunkShards: spec.mappings.chunkShards,
      inputMapping: { ...spec.mappings.input, onError: () => {} },
      chunkMapping: { ...spec.mappings.chunks, onError: () => {} },
      env: {
        // Both flows reach the model through the tap and the emulators through the meters.
        [ENV.bedrockEndpoint]: model.endpoints.bedrock,
        [ENV.dynamodbEndpoint]: model.endpoints.dynamodb,
        [ENV.kinesisEndpoint]: model.endpoints.kinesis,
        // The stand-in has no quota; the client-side limiter would otherwise cap the pipeline alone.
        [ENV.modelRequestsPerMinute]: '1000000',
        [ENV.modelTokensPerMinute]: '1000000000',
        // Every generation of the process shares one model client, whose sockets this sizes
        // (in AWS each invocation has its own): room for every level of the run, for both flows.
        [ENV.maxConcurrentGenerations]: '2000',
      },
    });
    stops.unshift(() => stack.stop());
    const naive =
      spec.flow === 'naive' ? await startNaiveFlow(stack, stack.clients, spec.mappings) : undefined;
    if (naive) stops.unshift(() => naive.stop());
    const defaults = {
      modelId: stack.config.defaultModelId,
      maxTokens: stack.config.producer.defaultMaxTokens,
    };
    await checkAnswers(stack, defaults);

    const viewers = await connectViewers(stack, spec);
    stops.unshift(async () => {
      for (const viewer of viewers) viewer.close();
    });
    const driver = new Driver(stack, naive, model, spec, viewers);
    stops.unshift(async () => driver.close());
    progress(`${viewers.length} viewers connected; warming up`);
    await driver.warmUp();
    const result = await measure(spec, stack, naive, model, driver, viewers, defaults, progress, notes);
    return { ...result, startedAt: new Date(started).toISOString(), elapsedMs: Date.now() - started };
  } finally {
    for (const stop of stops) await Promise.race([stop().catch(() => {}), sleep(10_000)]);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The answers computed here must be the model's: compare one with `InvokeModel` through the tap. */
async function checkAnswers(
  stack: LocalStack,
  defaults: { modelId: string; maxTokens: number },
): Promise<void> {
  const probe: WorkItem = {
    itemId: 'answer-check',
    prompt: promptOf('answer-check', false, 'check'),
    maxTokens: 64,
  };
  const expected = await expectedText(stack.clients.bedrock, probe, defaults);
  if (answerOf(probe, defaults).text !== expected)
    throw new Error(
      'the bench computes answers differently from the model stand-in; token counts would be wrong',
    );
}

async function connectViewers(stack: LocalStack, spec: ScenarioSpec): Promise<BenchViewer[]> {
  const total =
    spec.viewers.mode === 'dashboards' ? spec.viewers.count : spec.viewers.count * spec.concurrency;
  const viewers: BenchViewer[] = [];
  // A few at a time: each connect is a $connect route call with a DynamoDB write.
  for (let i = 0; i < total; i += 25) {
    const batch = Math.min(25, total - i);
    viewers.push(
      ...(await Promise.all(
        Array.from({ length: batch }, () => BenchViewer.connect(stack.info.websocket.url, stack.info.token)),
      )),
    );
  }
  if (spec.viewers.mode === 'dashboards') {
    for (const viewer of viewers) viewer.subscribeAll(spec.viewers.batch ?? spec.flow === 'pipeline');
    // The route answers nothing to `subscribe all`: wait until the store lists them all.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { Items } = await stack.clients.dynamo.send(
        new QueryCommand({
          TableName: stack.config.tables.connections,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': 'subs#*' },
          ConsistentRead: true,
        }),
      );
      if ((Items?.length ?? 0) >= viewers.length) break;
      if (Date.now() > deadline) throw new Error('dashboard subscriptions did not appear within 20 s');
      await sleep(50);
    }
  }
  return viewers;
}

/**
 * Submits items as an upstream system would (PutRecords to the flow's input stream, straight to
 * the emulator) and keeps `concurrency` of them going:
 * - dashboards (load runs): `concurrency` generations streaming at the model at all times; a new
 *   item goes in the moment one's response stream ends, whether or not viewers have caught up;
 * - per item (cost runs): each slot's viewers subscribe to an item, it is submitted, and the next
 *   one goes in when every viewer of the slot has seen it end.
 */
class Driver {
  readonly tracked = new Map<string, Tracked>();
  private readonly submitter: KinesisClient;
  private readonly inputStream: string;
  private readonly slots: BenchViewer[][];
  private readonly pendingPuts: WorkItem[] = [];
  private readonly streamsEnded = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private next = 0;
  /** Tracked items not yet ended at their viewers. */
  unended = 0;
  private stopped = false;
  private onIdle: (() => void) | undefined;

  constructor(
    stack: LocalStack,
    private readonly naive: NaiveFlow | undefined,
    private readonly model: ModelThread,
    private readonly spec: ScenarioSpec,
    viewers: BenchViewer[],
  ) {
    this.submitter = new KinesisClient({
      region: stack.info.region,
      endpoint: stack.info.kinesis.endpoint,
      credentials: stack.info.credentials,
      requestHandler: new NodeHttpHandler(),
    });
    this.inputStream = naive?.inputStream ?? stack.info.kinesis.inputStream;
    this.slots =
      spec.viewers.mode === 'dashboards'
        ? [viewers]
        : Array.from({ length: spec.concurrency }, (_, i) =>
            viewers.slice(i * spec.viewers.count, (i + 1) * spec.viewers.count),
          );
  }

  /** The viewers whose receipts count for throughput: the first dashboard, or each slot's first viewer. */
  get primaries(): BenchViewer[] {
    return this.slots.map((slot) => slot[0] as BenchViewer);
  }

  get viewers(): BenchViewer[] {
    return this.slots.flat();
  }

  /** One short item through the whole flow, so lazy set-up (sockets, clients) is not measured. */
  async warmUp(): Promise<void> {
    const item: WorkItem = {
      itemId: `${this.spec.flow}-warmup`,
      prompt: 'bench item warmup: warm up',
      maxTokens: 16,
    };
    const slot = this.slots[0] as BenchViewer[];
    const primary = slot[0] as BenchViewer;
    const ended = new Promise<void>((resolve) => {
      primary.onTerminal = (itemId) => {
        if (itemId === item.itemId) resolve();
      };
    });
    await this.naive?.register(item);
    if (this.spec.viewers.mode === 'perItem') await Promise.all(slot.map((v) => v.subscribe(item.itemId)));
    await this.put([item]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      ended,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error('the warm-up item did not reach its viewer within 30 s')),
          30_000,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    if (this.spec.viewers.mode === 'perItem') for (const v of slot) v.unsubscribe(item.itemId);
    for (const viewer of this.viewers) {
      viewer.onTerminal = undefined;
      viewer.items.clear();
      for (const key of Object.keys(viewer.messages)) delete viewer.messages[key];
      viewer.anomalies.duplicates = 0;
      viewer.anomalies.gaps = 0;
    }
  }

  /** Starts submitting; resolves once submitting has stopped and every submitted item has ended at its viewers. */
  run(): Promise<void> {
    const idle = new Promise<void>((resolve) => {
      this.onIdle = resolve;
    });
    if (this.spec.viewers.mode === 'dashboards') {
      this.model.onStreamEnd = (itemId) => {
        if (!this.tracked.has(itemId) || this.streamsEnded.has(itemId)) return;
        this.streamsEnded.add(itemId);
        void this.launch(0);
      };
      (this.slots[0]?.[0] as BenchViewer).onTerminal = (itemId, status) => this.ended(itemId, status);
      for (let i = 0; i < this.spec.concurrency; i++) void this.launch(0);
    } else {
      this.slots.forEach((slot, index) => {
        const seen = new Map<string, number>();
        for (const viewer of slot)
          viewer.onTerminal = (itemId, status) => {
            const count = (seen.get(itemId) ?? 0) + 1;
            seen.set(itemId, count);
            if (count < slot.length) return;
            seen.delete(itemId);
            for (const v of slot) v.unsubscribe(itemId);
            this.ended(itemId, status);
            void this.launch(index);
          };
        void this.launch(index);
      });
    }
    return idle;
  }

  /** No more submissions. */
  stop(): void {
    this.stopped = true;
    this.checkIdle();
  }

  close(): void {
    this.model.onStreamEnd = undefined;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.submitter.destroy();
  }

  private get done(): boolean {
    return this.stopped || (this.spec.items !== undefined && this.next >= this.spec.items);
  }

  private checkIdle(): void {
    if (this.done && this.unended === 0) this.onIdle?.();
  }

  private ended(itemId: string, status: 'completed' | 'failed'): void {
    const tracked = this.tracked.get(itemId);
    if (!tracked || tracked.endedAt !== undefined) return;
    tracked.endedAt = nowMs();
    tracked.status = status;
    this.unended--;
    this.checkIdle();
  }

  private async launch(slot: number): Promise<void> {
    if (this.done) return this.checkIdle();
    const n = this.next++;
    const itemId = `${this.spec.flow}-${this.spec.name}-${n}`;
    const tapped = n % this.spec.tapEvery === 0;
    const item: WorkItem = {
      itemId,
      prompt: promptOf(itemId, tapped, 'describe how a stream carries records.'),
      maxTokens: this.spec.maxTokens,
    };
    this.unended++;
    await this.naive?.register(item);
    if (this.spec.viewers.mode === 'perItem')
      await Promise.all((this.slots[slot] as BenchViewer[]).map((v) => v.subscribe(itemId)));
    this.tracked.set(itemId, { item, tapped, submittedAt: nowMs() });
    this.pendingPuts.push(item);
    this.flushTimer ??= setTimeout(() => void this.flush(), 5);
  }

  private async flush(): Promise<void> {
    this.flushTimer = undefined;
    while (this.pendingPuts.length > 0) await this.put(this.pendingPuts.splice(0, 500));
  }

  private async put(items: WorkItem[]): Promise<void> {
    let pending = items;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const { Records } = await this.submitter.send(
        new PutRecordsCommand({
          StreamName: this.inputStream,
          Records: pending.map((item) => ({
            PartitionKey: item.itemId,
            Data: Buffer.from(JSON.stringify(item)),
          })),
        }),
      );
      pending = pending.filter((_, i) => Records?.[i]?.ErrorCode !== undefined);
      if (attempt > 20) throw new Error(`${pending.length} work items could not be submitted`);
      if (pending.length > 0) await sleep(50);
    }
  }
}

async function measure(
  spec: ScenarioSpec,
  stack: LocalStack,
  naive: NaiveFlow | undefined,
  model: ModelThread,
  driver: Driver,
  viewers: BenchViewer[],
  defaults: { modelId: string; maxTokens: number },
  progress: (line: string) => void,
  notes: string[],
): Promise<Omit<ScenarioResult, 'startedAt' | 'elapsedMs'>> {
  const chunkStream = naive?.chunkStream ?? stack.info.kinesis.chunkStream;
  const chunkMapping = naive?.mappings.chunks ?? stack.mappings.chunks;
  const mappingBefore = chunkMapping.stats();
  const postsBefore = stack.websocket.stats().posts;
  const before = await model.stats();
  const rssBefore = process.memoryUsage.rss();
  let rssPeak = rssBefore;
  const t0 = nowMs();

  // Window bookkeeping: figures at the window's edges.
  let atFrom:
    | { model: ModelThreadStats; cpu: NodeJS.CpuUsage; elu: EventLoopUtilization; at: number }
    | undefined;
  let atTo: typeof atFrom;
  const edge = async () => ({
    model: await model.stats(),
    cpu: process.cpuUsage(),
    elu: performance.eventLoopUtilization(),
    at: nowMs(),
  });
  let profiler: Awaited<ReturnType<typeof startCpuProfile>> | undefined;
  let profile: CpuProfileSummary | undefined;
  const openWindow = async () => {
    atFrom = await edge();
    if (spec.profile) profiler = await startCpuProfile();
  };
  const closeWindow = async () => {
    if (atTo) return;
    atTo = await edge();
    profile = await profiler?.stop();
  };
  const streamSamples: number[] = [];

  if (spec.durationMs === undefined) await openWindow();
  let lastProgress = t0;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    const now = nowMs();
    if (atFrom && !atTo)
      void model.stats().then((s) => {
        if (atFrom && !atTo) streamSamples.push(s.standIn.activeStreams);
      });
    if (now - lastProgress >= 3_000) {
      lastProgress = now;
      let ended = 0;
      for (const t of driver.tracked.values()) if (t.endedAt !== undefined) ended++;
      progress(
        `${((now - t0) / 1000).toFixed(0)} s: ${driver.tracked.size} submitted, ${ended} ended, ` +
          `${driver.unended} not yet at the viewers, RSS ${(rssPeak / BYTES_PER_MB).toFixed(0)} MB`,
      );
    }
  }, 250);

  const idle = driver.run();
  let drained: boolean;
  try {
    if (spec.durationMs !== undefined) {
      await sleep(spec.warmupMs);
      await openWindow();
      await sleep(spec.durationMs - spec.warmupMs);
      await closeWindow();
      driver.stop();
      drained = await Promise.race([idle.then(() => true), sleep(spec.drainMs).then(() => false)]);
    } else {
      drained = await Promise.race([idle.then(() => true), sleep(spec.drainMs).then(() => false)]);
      driver.stop();
      // A fixed-count run's window ends with its last item.
      await closeWindow();
    }
  } finally {
    clearInterval(sampler);
  }
  if (!atFrom || !atTo) throw new Error('the measurement window never opened');
  const after = await model.stats();
  const mappingAfter = chunkMapping.stats();

  let fromMs = atFrom.at;
  let toMs = atTo.at;
  if (spec.durationMs === undefined) {
    const ends = [...driver.tracked.values()].flatMap((t) => (t.endedAt === undefined ? [] : [t.endedAt]));
    fromMs = Math.min(...[...driver.tracked.values()].map((t) => t.submittedAt));
    if (drained && ends.length > 0) toMs = Math.max(...ends);
  }
  const windowMs = Math.max(1, toMs - fromMs);

  // Answers of every measured item: token boundaries and the exact text.
  const answers = new Map<string, Answer>();
  for (const [itemId, t] of driver.tracked) answers.set(itemId, answerOf(t.item, defaults));

  let completed = 0;
  let failed = 0;
  for (const t of driver.tracked.values()) {
    if (t.status === 'completed') completed++;
    else if (t.status === 'failed') failed++;
  }

  let textMismatches = 0;
  let viewerTokens = 0;
  for (const viewer of driver.viewers)
    for (const [itemId, seen] of viewer.items) {
      const answer = answers.get(itemId);
      if (!answer) continue;
      viewerTokens += tokensWithin(answer.ends, seen.text.length);
      if (seen.terminal === 'completed' && seen.text !== answer.text) textMismatches++;
    }
  for (const [itemId, stream] of model.tapped) {
    const answer = answers.get(itemId);
    if (answer && stream.complete && stream.text !== answer.text) {
      textMismatches++;
      notes.push(`the model streamed a different text for ${itemId} than the bench computed`);
    }
  }

  let deliveredInWindow = 0;
  for (const primary of driver.primaries)
    for (const [itemId, seen] of primary.items) {
      const answer = answers.get(itemId);
      if (!answer) continue;
      deliveredInWindow +=
        tokensWithin(answer.ends, lengthAt(seen.receipts, toMs)) -
        tokensWithin(answer.ends, lengthAt(seen.receipts, fromMs));
    }

  const latencies: number[] = [];
  const runEnd = nowMs();
  let censored = 0;
  const timedItems = new Set<string>();
  for (const [itemId, stream] of model.tapped) {
    if (!driver.tracked.has(itemId)) continue;
    const samplesBefore = latencies.length;
    for (const viewer of driver.viewers) {
      const seen = viewer.items.get(itemId);
      // Per-item viewers of other slots never subscribed to it; dashboards all should have it.
      if (!seen && spec.viewers.mode === 'perItem') continue;
      censored += collectLatencies(
        stream.ends,
        stream.times,
        seen?.receipts ?? [],
        fromMs,
        toMs,
        runEnd,
        latencies,
      );
    }
    if (latencies.length > samplesBefore) timedItems.add(itemId);
  }

  const latencyStagesMs = await stageLatencies(model, driver, fromMs, toMs);

  const messagesByType: Record<string, number> = {};
  for (const viewer of viewers)
    for (const [type, n] of Object.entries(viewer.messages))
      messagesByType[type] = (messagesByType[type] ?? 0) + n;
  const messages = Object.values(messagesByType).reduce((sum, n) => sum + n, 0);

  const modelTokens = after.standIn.tokensSent - before.standIn.tokensSent;
  const noPuts = { calls: 0, records: 0, bytes: 0 };
  const puts = diffStreams(before.kinesis, after.kinesis)[chunkStream] ?? noPuts;
  const windowPuts = diffStreams(atFrom.model.kinesis, atTo.model.kinesis)[chunkStream] ?? noPuts;
  const tables = diffTables(before.dynamo, after.dynamo);
  const connections = total(
    Object.entries(tables).filter(([name]) => name === stack.config.tables.connections),
  );
  const itemWrites = total(
    Object.entries(tables).filter(([name]) => name !== stack.config.tables.connections),
  );
  const anomalies = driver.viewers.reduce(
    (sum, v) => ({ duplicates: sum.duplicates + v.anomalies.duplicates, gaps: sum.gaps + v.anomalies.gaps }),
    { duplicates: 0, gaps: 0 },
  );
  const wallMs = atTo.at - atFrom.at;
  const cpu = { user: atTo.cpu.user - atFrom.cpu.user, system: atTo.cpu.system - atFrom.cpu.system };
  const streams = streamSamples.length
    ? streamSamples.reduce((sum, n) => sum + n, 0) / streamSamples.length
    : Number.NaN;
  if (!drained)
    notes.push(`${driver.unended} items had not reached their viewers' end when the drain time ran out`);

  return {
    spec,
    items: {
      submitted: driver.tracked.size,
      completed,
      failed,
      unfinished: driver.tracked.size - completed - failed,
      textMismatches,
      viewerDuplicates: anomalies.duplicates,
      viewerGaps: anomalies.gaps,
    },
    drained,
    window: { ms: windowMs, fromMs: fromMs - t0, toMs: toMs - t0 },
    tokens: {
      model: modelTokens,
      modelInWindow: atTo.model.standIn.tokensSent - atFrom.model.standIn.tokensSent,
      deliveredInWindow,
    },
    throughput: {
      deliveredPerSecond: (deliveredInWindow * 1000) / windowMs,
      offeredPerSecond: ((atTo.model.standIn.tokensSent - atFrom.model.standIn.tokensSent) * 1000) / wallMs,
      modelStreams: streams,
    },
    latencyMs: percentiles(latencies),
    latencyCensored: censored,
    latencyItems: timedItems.size,
    latencyStagesMs,
    viewers: {
      count: viewers.length,
      messages,
      messagesByType,
      tokens: viewerTokens,
      posts: stack.websocket.stats().posts - postsBefore,
      reconnects: viewers.reduce((sum, v) => sum + v.reconnects, 0),
    },
    kinesis: {
      ...puts,
      recordsRead: mappingAfter.recordsRead - mappingBefore.recordsRead,
      invocations: mappingAfter.invocations - mappingBefore.invocations,
      recordsPerSecondInWindow: (windowPuts.records * 1000) / wallMs,
      bytesPerSecondInWindow: (windowPuts.bytes * 1000) / wallMs,
    },
    dynamo: { tables, items: itemWrites, connections },
    per1kTokens: {
      kinesisRecords: per1k(puts.records, modelTokens),
      kinesisBytes: per1k(puts.bytes, modelTokens),
      dynamoWrites: per1k(itemWrites.writes, modelTokens),
      dynamoWriteUnits: per1k(itemWrites.units, modelTokens),
      wsMessagesPerViewer: per1k(messages, viewerTokens),
    },
    memory: { rssBeforeMb: rssBefore / BYTES_PER_MB, rssPeakMb: rssPeak / BYTES_PER_MB },
    cpu: {
      mainThread: performance.eventLoopUtilization(atTo.elu, atFrom.elu).utilization,
      modelThread: eluBetween(atFrom.model.elu, atTo.model.elu),
      processCores: (cpu.user + cpu.system) / 1000 / wallMs,
    },
    callsPerSecond: callRates(atFrom.model, atTo.model, wallMs),
    ...(profile ? { profile } : {}),
    notes,
  };
}

/** The text length a viewer held at time `at` (0 before its first receipt). */
function lengthAt(receipts: readonly Receipt[], at: number): number {
  let length = 0;
  for (const receipt of receipts) {
    if (receipt.at > at) break;
    length = receipt.length;
  }
  return length;
}

/**
 * For each token that left the model in [from, to], the time until the viewer first held text
 * reaching the token's end; a token it never got counts as `end - left` (a lower bound). Returns
 * how many were such lower bounds. Receipts and token ends both only grow within an attempt, so
 * one pass pairs them.
 */
function collectLatencies(
  ends: readonly number[],
  times: readonly number[],
  receipts: readonly Receipt[],
  from: number,
  to: number,
  end: number,
  into: number[],
): number {
  let r = 0;
  let censored = 0;
  for (let i = 0; i < ends.length; i++) {
    const left = times[i] as number;
    while (r < receipts.length && (receipts[r] as Receipt).length < (ends[i] as number)) r++;
    if (left < from || left > to) continue;
    if (r < receipts.length) into.push((receipts[r] as Receipt).at - left);
    else {
      into.push(end - left);
      censored++;
    }
  }
  return censored;
}

/** Splits the added latency of the timed tokens the primary viewer received into its stages. */
async function stageLatencies(
  model: ModelThread,
  driver: Driver,
  from: number,
  to: number,
): Promise<ScenarioResult['latencyStagesMs']> {
  const stages = emptyStages();
  const timed = [...model.tapped.values()].filter(({ itemId }) => driver.tracked.has(itemId));
  const puts = await model.deltaPuts(timed.map(({ itemId }) => itemId));
  const primary = driver.primaries[0];
  for (const stream of timed) {
    const receipts = primary?.items.get(stream.itemId)?.receipts ?? [];
    addStages(stream, puts[stream.itemId] ?? [], receipts, from, to, stages);
  }
  return {
    toRecord: percentiles(stages.toRecord),
    toKinesis: percentiles(stages.toKinesis),
    toViewer: percentiles(stages.toViewer),
  };
}

function callRates(from: ModelThreadStats, to: ModelThreadStats, wallMs: number): Record<string, number> {
  const rates: Record<string, number> = {};
  for (const [service, a, b] of [
    ['DynamoDB', from.dynamo, to.dynamo],
    ['Kinesis', from.kinesis, to.kinesis],
  ] as const)
    for (const [operation, n] of Object.entries(b.operations)) {
      const calls = n - (a.operations[operation] ?? 0);
      if (calls > 0) rates[`${service} ${operation}`] = (calls * 1000) / wallMs;
    }
  return rates;
}

function eluBetween(from: EventLoopUtilization, to: EventLoopUtilization): number {
  const active = to.active - from.active;
  const idle = to.idle - from.idle;
  return active + idle > 0 ? active / (active + idle) : 0;
}

function diffStreams(before: MeterStats, after: MeterStats): Record<string, StreamPuts> {
  const out: Record<string, StreamPuts> = {};
  for (const [name, a] of Object.entries(after.streams)) {
    const b = before.streams[name] ?? { calls: 0, records: 0, bytes: 0 };
    out[name] = { calls: a.calls - b.calls, records: a.records - b.records, bytes: a.bytes - b.bytes };
  }
  return out;
}

function diffTables(before: MeterStats, after: MeterStats): Record<string, TableWrites> {
  const out: Record<string, TableWrites> = {};
  for (const [name, a] of Object.entries(after.tables)) {
    const b = before.tables[name] ?? { writes: 0, units: 0, conditionalFailures: 0 };
    out[name] = {
      writes: a.writes - b.writes,
      units: a.units - b.units,
      conditionalFailures: a.conditionalFailures - b.conditionalFailures,
    };
  }
  return out;
}

function total(entries: Array<[string, TableWrites]>): WriteTotals {
  return entries.reduce(
    (sum, [, t]) => ({
      writes: sum.writes + t.writes,
      units: sum.units + t.units,
      conditionalFailures: sum.conditionalFailures + t.conditionalFailures,
    }),
    { writes: 0, units: 0, conditionalFailures: 0 },
  );
}
