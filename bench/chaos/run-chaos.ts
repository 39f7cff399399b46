import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { WebSocket } from 'ws';
import type { BedrockStandInStats, Faults } from '../../local/bedrock/index.js';
import { expectedText } from '../../local/expected-text.js';
import type { KinesisFaults, KinesisFaultStats } from '../../local/kinesis-faults.js';
import type { CrashPoint } from '../../producers/generator/generation-env.js';
import { type BrownoutReport, type DynamoBrownout, RetryRuns, runBrownout } from './brownout.js';
import { type EndingCrash, EndingCrashes, type FiredCrash } from './ending-crashes.js';
import { type ModelOutage, OUTAGE_CODES, runOutages } from './outages.js';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '../../local/stack.js';
import { createStreamsClient, type StreamsClient } from '../../shared/client/index.js';
import { ENV } from '../../shared/env.js';
import { StackFile } from '../../shared/contracts/stack-file.js';
import type { StoredItem } from '../../shared/contracts/stored-item.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { type ItemHead, readItem, readItemHead } from '../../shared/items.js';

export interface ChaosOptions {
  /** Work items to push through. */
  readonly items: number;
  /** Per-item viewer clients (each watches its share of the items) and every-item dashboards. */
  readonly viewers: number;
  readonly dashboards: number;
  /** Share of the items a per-item viewer watches (dashboards watch them all). */
  readonly watchShare: number;
  /** Items submitted but not yet ended, at most: the run tests faults, not overload. */
  readonly maxPending: number;
  /** The producers' consumer lag target (`CONSUMER_LAG_TARGET_MS`) on the run's stack. */
  readonly consumerLagTargetMs: number;
  /** Share of the items submitted a second time (upstream resends). */
  readonly resendShare: number;
  /** Longest the run may take before unfinished items count as lost. */
  readonly deadlineMs: number;
  /** Seed of the run's own choices (item sizes, resends, which viewer drops). */
  readonly seed: number;
  /** Model stand-in faults (stream requests). */
  readonly modelFaults: Faults;
  /** Windows in which the model refuses every request: items must wait them out, never fail. */
  readonly modelOutages: readonly ModelOutage[];
  /** Chunk stream faults between the producer and Kinesis. */
  readonly chunkStreamFaults: Partial<KinesisFaults>;
  /** Probability that a consumer (chunk mapping) and a producer (input mapping) invocation dies part-way. */
  readonly consumerCrashProbability: number;
  readonly producerCrashProbability: number;
  /** A window in which every DynamoDB call of the handlers fails; none when undefined. */
  readonly dynamoBrownout: DynamoBrownout | undefined;
  /** Producer crashes at steps of a generation's ending, each at the first item to reach it. */
  readonly endingCrashes: readonly EndingCrash[];
  /**
   * Viewer connections dropped per second, alternately by the client and by the gateway without
   * `$disconnect` (a network failure); the clients reconnect and resume.
   */
  readonly disconnectsPerSecond: number;
  /** Model pace: fast, so a thousand items take minutes, not hours. */
  readonly tokensPerSecond: number;
  /** Largest `maxTokens` of an ordinary item; a few long items ask for `longMaxTokens`. */
  readonly maxTokens: number;
  readonly longMaxTokens: number;
  /** Where the stack keeps its state (a fresh temporary folder when omitted; removed afterwards). */
  readonly dataDir?: string;
}

/** Faults at every layer: what `npm run chaos` runs with. */
export function chaosDefaults(items: number): ChaosOptions {
  const quick = items <= 100;
  return {
    items,
    viewers: quick ? 4 : 20,
    dashboards: quick ? 1 : 2,
    watchShare: quick ? 1 : 0.2,
    maxPending: quick ? 40 : 150,
    consumerLagTargetMs: 30_000,
    resendShare: 0.1,
    deadlineMs: quick ? 150_000 : 900_000,
    seed: 8,
    // Every Nth stream request, so each kind fires a known number of times whatever the timing.
    modelFaults: {
      throttle: { everyNth: 7 },
      midStream: { everyNth: 9, exception: 'modelStreamErrorException' },
      truncate: { everyNth: 11 },
    },
    // A total throttling storm, then a run of ServiceUnavailableException (shorter when quick).
    modelOutages: [
      { kind: 'throttle', atMs: quick ? 10_000 : 30_000, durationMs: quick ? 8_000 : 60_000, minRefused: 3 },
      {
        kind: 'unavailable',
        atMs: quick ? 25_000 : 120_000,
        durationMs: quick ? 5_000 : 30_000,
        minRefused: 3,
      },
    ],
    chunkStreamFaults: { putRecordsFailureRate: 0.1, throttleRate: 0.05 },
    consumerCrashProbability: 0.15,
    producerCrashProbability: 0.1,
    // Longer than the old retry counts (3 and 10, back to back) could outlast; early when quick, so
    // a short run has it whole.
    dynamoBrownout: {
      atMs: quick ? 2_000 : 200_000,
      waitForStreamingMs: 10_000,
      durationMs: quick ? 10_000 : 45_000,
      outlast: { input: 3, chunks: 10 },
      maxDurationMs: quick ? 45_000 : 120_000,
    },
    // The two steps between recording an ending and finishing the claim, from the first items on.
    endingCrashes: (quick ? [0] : [0, 150_000, 300_000]).flatMap((atMs) => [
      { point: 'ending-recorded' as const, atMs },
      { point: 'end-put' as const, atMs },
    ]),
    disconnectsPerSecond: 2,
    tokensPerSecond: 400,
    maxTokens: 160,
    longMaxTokens: 2_000,
  };
}

/** What became of one item, when it is not a clean completion. */
export interface ItemProblem {
  readonly itemId: string;
  readonly kind: 'lost' | 'duplicated' | 'corrupted';
  readonly detail: string;
}

export interface ChaosReport {
  readonly options: ChaosOptions;
  readonly elapsedMs: number;
  readonly submitted: number;
  /** Work items sent a second time. */
  readonly resent: number;
  /** Completed with exactly the expected text. */
  readonly completed: number;
  /** Failed, with the reason recorded on the item, by error code. */
  readonly failed: number;
  readonly failedByCode: Record<string, number>;
  /** Of the failed, those whose reason is an outage (quota wait, throttling, unavailability): must be 0. */
  readonly failedByOutage: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly corrupted: number;
  readonly problems: ItemProblem[];
  readonly viewers: {
    /** (viewer, item) pairs checked: per-item viewers and dashboards. */
    readonly pairs: number;
    /** Final text and status equal to the stored item. */
    readonly matched: number;
    readonly mismatched: number;
    readonly examples: string[];
  };
  /** Faults that actually fired, summed over both lives of the stack. */
  readonly faults: {
    readonly modelThrottles: number;
    /** Requests refused with 503 ServiceUnavailableException. */
    readonly modelUnavailable: number;
    readonly midStreamFailures: number;
    readonly truncatedStreams: number;
    readonly putRecordFailures: number;
    readonly putThrottles: number;
    readonly consumerCrashes: number;
    readonly producerCrashes: number;
    readonly duplicateSubmissions: number;
    readonly viewerDisconnects: number;
    readonly viewerReconnects: number;
    readonly restarts: number;
  };
  /** What the dashboards (every item, with `batch`) received: packed frames and the rest. */
  readonly dashboardFrames: {
    readonly batchFrames: number;
    readonly messagesInBatches: number;
    readonly otherFrames: number;
  };
  /** What the consumer's fan-out did, summed over both lives of the stack. */
  readonly fanout: {
    readonly deliveries: number;
    /** Deliveries given up (throttled past their retries, past their deadline). */
    readonly failedDeliveries: number;
    /** Connections closed after missing frames (budget spent or delivery given up). */
    readonly droppedConnections: number;
    readonly goneConnections: number;
  };
  /** What the DynamoDB brownout did; undefined when the run has none. */
  readonly brownout: BrownoutReport | undefined;
  /**
   * Producer crashes at steps of an ending: how many fired per scheduled point, which items, and
   * how many scheduled crashes never fired. A second generation after one is a `duplicated` problem.
   */
  readonly endingCrashes: {
    readonly byPoint: Partial<Record<CrashPoint, number>>;
    readonly fired: readonly FiredCrash[];
    readonly unfired: number;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MODELS = [
  'anthropic.claude-3-5-haiku-20241022-v1:0',
  'meta.llama3-1-8b-instruct-v1:0',
  'amazon.nova-lite-v1:0',
] as const;

/** A seeded generator, so a failing run can be replayed with its seed. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Pushes `options.items` work items through the local stack with faults at every layer at once —
 * model throttling, mid-stream failures and truncated streams, PutRecords partial failures and
 * throttling, consumer and producer invocations dying mid-batch, upstream resends, viewers
 * dropping and resuming, and a full stop and restart of the stack half-way — then checks every
 * item against the model's own answer and every viewer against the stored items.
 */
export async function runChaos(
  options: ChaosOptions,
  progress: (line: string) => void,
): Promise<ChaosReport> {
  const started = Date.now();
  // What is submitted is fixed by the seed; choices made while running (which viewer drops,
  // reconnect jitter) draw from their own generator, so timing never changes the plan.
  const plan = seeded(options.seed);
  const random = seeded(options.seed + 1);
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'chaos-'));
  const retryRuns = new RetryRuns();
  // The attempt whose ending each crash interrupted, read off its claim: a takeover must finish
  // that attempt, never start another.
  const endingAttempts = new Map<string, Promise<number | undefined>>();
  const crashes = new EndingCrashes(options.endingCrashes, started, (crash) => {
    progress(`producer crash at ${crash.point} of ${crash.itemId}`);
    const attempt = sleep(0)
      .then(() => readItemHead(direct, stack.config.tables, crash.itemId))
      .then((head) => head?.claimedAttempt);
    attempt.catch(() => {});
    endingAttempts.set(crash.itemId, attempt);
  });
  const stackOptions: LocalStackOptions = {
    dataDir,
    bedrock: {
      timeToFirstTokenMs: 30,
      tokensPerSecond: options.tokensPerSecond,
      faults: options.modelFaults,
    },
    // Kinesis and DynamoDB are remote services in AWS: their CPU time is not the handlers'.
    emulatorThread: true,
    chunkStreamFaults: true,
    dynamodbFaults: options.dynamoBrownout !== undefined,
    chunkMapping: {
      crash: { probability: options.consumerCrashProbability },
      onRetry: retryRuns.record('chunks'),
      onError: () => {},
    },
    inputMapping: {
      crash: { probability: options.producerCrashProbability },
      onRetry: retryRuns.record('input'),
      onError: () => {},
    },
    producerTuning: { crashAt: crashes.crashAt },
    // The run tests faults, not overload: its consumer shares one thread with every viewer's route
    // and took seconds per batch however few generations ran (measured with the disk-backed
    // emulators on that thread too), so the default 1-s lag target held admission at its floor.
    env: { [ENV.consumerLagTargetMs]: String(options.consumerLagTargetMs) },
  };
  const faultTotals = {
    model: zeroModelStats(),
    chunks: zeroChunkStats(),
    consumerCrashes: 0,
    producerCrashes: 0,
  };
  const fanoutTotals = { deliveries: 0, failedDeliveries: 0, droppedConnections: 0, goneConnections: 0 };
  const addLife = (stack: LocalStack) => {
    const fanout = stack.fanout.stats();
    for (const key of Object.keys(fanoutTotals) as Array<keyof typeof fanoutTotals>)
      fanoutTotals[key] += fanout[key];
    const model = stack.bedrock.stats();
    faultTotals.model.throttled += model.throttled;
    faultTotals.model.unavailable += model.unavailable;
    faultTotals.model.midStreamFailures += model.midStreamFailures;
    faultTotals.model.truncated += model.truncated;
    const chunks = stack.chunkFaults?.stats();
    faultTotals.chunks.recordsFailed += chunks?.recordsFailed ?? 0;
    faultTotals.chunks.throttledCalls += chunks?.throttledCalls ?? 0;
    faultTotals.consumerCrashes += stack.mappings.chunks.stats().crashes;
    faultTotals.producerCrashes += stack.mappings.input.stats().crashes;
  };
  const start = async () => {
    const stack = await startLocalStack(stackOptions);
    stack.chunkFaults?.setFaults(options.chunkStreamFaults);
    return stack;
  };

  let stack = await start();
  let info = readStackFile(stack.stackFile);
  // The run's own reads go straight to the database, around the brownout the handlers see.
  let direct = directDynamo(info);
  const defaults = {
    modelId: stack.config.defaultModelId,
    maxTokens: stack.config.producer.defaultMaxTokens,
  };

  // Viewers: the client library over the real gateway. Their sockets read the gateway's address
  // from the current stack file, so after the restart they reconnect to the new one.
  const sockets = new Set<WebSocket>();
  let opens = 0;
  class ChaosSocket extends WebSocket {
    constructor(url: string) {
      const target = new URL(url);
      const current = new URL(info.websocket.url);
      target.host = current.host;
      super(target.toString());
      sockets.add(this);
      this.on('open', () => opens++);
      this.on('close', () => sockets.delete(this));
    }
  }
  const dashboardFrames = { batchFrames: 0, messagesInBatches: 0, otherFrames: 0 };
  /** A dashboard's socket: counts what the server packs into `batch` frames and what it does not. */
  class DashboardSocket extends ChaosSocket {
    constructor(url: string) {
      super(url);
      this.on('message', (data: Buffer) => countFrame(dashboardFrames, data));
    }
  }
  const newClient = (Socket: typeof ChaosSocket = ChaosSocket) =>
    createStreamsClient({
      url: info.websocket.url,
      token: () => info.token,
      WebSocket: Socket,
      reconnect: { initialDelayMs: 50, maxDelayMs: 1_000 },
      // Viewers subscribe before their items are submitted: they ask until the item exists, for as
      // long as the run may last (items wait out outages and backlogs before a producer claims them).
      notFoundRetry: { maxDelayMs: 1_000, deadlineMs: options.deadlineMs },
      random,
    });
  const viewers: StreamsClient[] = Array.from({ length: options.viewers }, newClient);
  // Dashboards subscribe to every item with `batch` (what the client library sends).
  const dashboards: StreamsClient[] = Array.from({ length: options.dashboards }, () =>
    newClient(DashboardSocket),
  );
  for (const dashboard of dashboards) dashboard.subscribeAll();
  await waitUntil(() => opens >= viewers.length + dashboards.length, 20_000, 'viewers to connect');
  const initialOpens = opens;

  const items: WorkItem[] = Array.from({ length: options.items }, (_, i) => {
    const long = plan() < 0.02;
    return {
      itemId: `chaos-${options.seed}-${i}`,
      prompt: `chaos item ${i}: tell about streams, shards and retries (${Math.floor(plan() * 1e6)})`,
      modelId: MODELS[i % 5 === 3 ? 1 : i % 5 === 4 ? 2 : 0],
      maxTokens: long ? options.longMaxTokens : 8 + Math.floor(plan() * options.maxTokens),
    };
  });
  const watchers = new Map<string, StreamsClient>();
  const watchEvery = Math.max(1, Math.round(1 / options.watchShare));
  items.forEach((item, i) => {
    const viewer = viewers[Math.floor(i / watchEvery) % viewers.length];
    if (viewer && i % watchEvery === 0) {
      viewer.subscribe(item.itemId);
      watchers.set(item.itemId, viewer);
    }
  });

  let outagesStopped = false;
  const outages = runOutages(options.modelOutages, {
    startedAt: started,
    usual: options.modelFaults,
    target: () => stack.bedrock,
    stopped: () => outagesStopped,
    progress,
  });

  let disconnects = 0;
  let stopDisconnects = false;
  const disconnecting = (async () => {
    while (!stopDisconnects) {
      await sleep(1_000 / Math.max(0.1, options.disconnectsPerSecond));
      if (stopDisconnects) break;
      if (disconnects % 2 === 0) {
        const open = [...sockets].filter((s) => s.readyState === WebSocket.OPEN);
        const victim = open[Math.floor(random() * open.length)];
        if (victim) {
          victim.terminate();
          disconnects++;
        }
      } else {
        const ids = stack.websocket.connectionIds();
        const victim = ids[Math.floor(random() * ids.length)];
        if (victim) {
          await stack.websocket.dropConnection(victim, { notify: false }).catch(() => {});
          disconnects++;
        }
      }
    }
  })();

  const submitter = () =>
    new KinesisClient({
      region: info.region,
      endpoint: info.kinesis.endpoint,
      credentials: info.credentials,
      requestHandler: new NodeHttpHandler(),
    });
  let kinesis = submitter();
  const submit = async (batch: WorkItem[]) => {
    let pending = batch;
    if (pending.length === 0) return;
    for (let attempt = 0; pending.length > 0; attempt++) {
      const { Records } = await kinesis.send(
        new PutRecordsCommand({
          StreamName: info.kinesis.inputStream,
          Records: pending.map((item) => ({
            PartitionKey: item.itemId,
            Data: Buffer.from(JSON.stringify(item)),
          })),
        }),
      );
      pending = pending.filter((_, i) => Records?.[i]?.ErrorCode !== undefined);
      if (attempt > 20) throw new Error(`${pending.length} work items could not be submitted`);
      if (pending.length > 0) await sleep(100);
    }
  };

  const statuses = new Map<string, string>();
  const reportProgress = async (phase: string) => {
    const counts = { completed: 0, failed: 0, other: 0 };
    for (const status of statuses.values())
      if (status === 'completed') counts.completed++;
      else if (status === 'failed') counts.failed++;
      else counts.other++;
    const model = stack.bedrock.stats();
    progress(
      `${phase}: ${((Date.now() - started) / 1000).toFixed(0)} s, ${counts.completed} completed, ${counts.failed} failed, ` +
        `${options.items - counts.completed - counts.failed} to go; faults so far: ` +
        `${faultTotals.model.throttled + model.throttled} throttles, ` +
        `${faultTotals.model.midStreamFailures + model.midStreamFailures} mid-stream, ` +
        `${faultTotals.model.truncated + model.truncated} truncated, ` +
        `${faultTotals.consumerCrashes + stack.mappings.chunks.stats().crashes} consumer crashes, ${disconnects} disconnects`,
    );
  };
  const pollStatuses = async () => {
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await direct.send(
        new ScanCommand({
          TableName: stack.config.tables.items,
          ProjectionExpression: 'itemId, #status',
          ExpressionAttributeNames: { '#status': 'status' },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const row of page.Items ?? []) statuses.set(String(row.itemId), String(row.status));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
  };

  const brownout = options.dynamoBrownout
    ? runBrownout(options.dynamoBrownout, {
        startedAt: started,
        target: () => stack,
        runs: retryRuns,
        streaming: async () => {
          await pollStatuses();
          return [...statuses.values()].includes('streaming');
        },
        stopped: () => outagesStopped,
        progress,
      })
    : Promise.resolve(undefined);

  // Submit in waves, resending some items, and restart the stack half-way through.
  const waves = Math.max(4, Math.ceil(options.items / 25));
  const perWave = Math.ceil(options.items / waves);
  let resent = 0;
  let later: WorkItem[] = [];
  let submitted = 0;
  let restarted = false;
  let lastReport = 0;
  const pending = () => {
    let ended = 0;
    for (const status of statuses.values()) if (status === 'completed' || status === 'failed') ended++;
    return submitted - ended;
  };
  for (let wave = 0; wave < waves; wave++) {
    while (pending() + perWave > options.maxPending && Date.now() < started + options.deadlineMs) {
      await sleep(250);
      await pollStatuses();
      if (Date.now() - lastReport > 3_000) {
        lastReport = Date.now();
        await reportProgress('submitting');
      }
    }
    const batch = items.slice(wave * perWave, (wave + 1) * perWave);
    if (batch.length === 0) break;
    const again = batch.filter(() => plan() < options.resendShare);
    // Half of the resends go out at once (a retrying upstream), half with the next wave.
    const now = again.filter((_, i) => i % 2 === 0);
    await submit([...batch, ...now, ...later]);
    resent += now.length + later.length;
    later = again.filter((_, i) => i % 2 === 1);
    submitted += batch.length;
    await sleep(250);
    if (!restarted && submitted >= options.items / 2) {
      restarted = true;
      // Restart with items in every state: some ended, some streaming, some not yet read.
      const until = Date.now() + 30_000;
      for (;;) {
        await pollStatuses();
        const ended = [...statuses.values()].filter((s) => s === 'completed' || s === 'failed').length;
        if (ended >= submitted / 4 || Date.now() > until) break;
        await sleep(250);
      }
      await reportProgress('restarting the stack');
      addLife(stack);
      await stack.stop();
      kinesis.destroy();
      stack = await start();
      info = readStackFile(stack.stackFile);
      kinesis = submitter();
      direct.destroy();
      direct = directDynamo(info);
      progress(`stack restarted on ${info.websocket.url}; viewers reconnect there`);
    }
  }
  await submit(later);
  resent += later.length;

  // Wait for every item to end (or the deadline).
  const deadline = started + options.deadlineMs;
  for (;;) {
    await pollStatuses();
    const ended = items.filter((i) => ['completed', 'failed'].includes(statuses.get(i.itemId) ?? '')).length;
    if (ended === items.length || Date.now() > deadline) break;
    if (Date.now() - lastReport > 3_000) {
      lastReport = Date.now();
      await reportProgress('running');
    }
    await sleep(500);
  }
  progress(
    `${items.length - [...statuses.values()].filter((s) => s === 'completed' || s === 'failed').length} items unfinished at the end of the run`,
  );
  stopDisconnects = true;
  await disconnecting;
  outagesStopped = true;
  await outages;
  const brownoutReport = await brownout;

  // Judge every item against the model's own answer.
  progress('checking every item against InvokeModel');
  const stored = new Map<string, StoredItem | undefined>();
  let completed = 0;
  let failed = 0;
  const failedByCode: Record<string, number> = {};
  const problems: ItemProblem[] = [];
  for (const item of items) {
    const found = await readItem(direct, stack.config.tables, item.itemId);
    stored.set(item.itemId, found);
    const expected = await expectedText(stack.clients.bedrock, item, defaults);
    const verdict = judge(item.itemId, found, expected);
    if (typeof verdict !== 'string' && verdict.kind === 'lost' && found?.status !== 'completed') {
      // Where an unfinished item stands, so a failing run names its cause.
      const head = await readItemHead(direct, stack.config.tables, item.itemId).catch(() => undefined);
      problems.push({ ...verdict, detail: `${verdict.detail}; ${describeHead(head, Date.now())}` });
      continue;
    }
    if (verdict === 'completed') completed++;
    else if (verdict === 'failed') {
      failed++;
      const code = found?.error?.code ?? 'unknown';
      failedByCode[code] = (failedByCode[code] ?? 0) + 1;
    } else problems.push(verdict);
  }
  for (const problem of await secondGenerations(crashes.fired(), endingAttempts, direct, stack))
    if (!problems.some((p) => p.itemId === problem.itemId)) problems.push(problem);

  // Viewers must converge on the stored items: wait a bounded time for reconnects to settle. A
  // dashboard learns of an item only from its messages, so it is checked on the items it holds.
  progress('waiting for viewers to converge on the stored items');
  const terminal = (itemId: string) => ['completed', 'failed'].includes(stored.get(itemId)?.status ?? '');
  const pairs = () => {
    const out: Array<{ client: StreamsClient; itemId: string; label: string }> = [];
    for (const [itemId, client] of watchers)
      if (terminal(itemId)) out.push({ client, itemId, label: `viewer ${viewers.indexOf(client)}` });
    dashboards.forEach((client, d) => {
      for (const item of items)
        if (terminal(item.itemId) && client.view(item.itemId))
          out.push({ client, itemId: item.itemId, label: `dashboard ${d}` });
    });
    return out;
  };
  const matches = (client: StreamsClient, itemId: string) => {
    const item = stored.get(itemId);
    const view = client.view(itemId);
    return item !== undefined && view !== undefined && view.status === item.status && view.text === item.text;
  };
  await waitUntil(() => pairs().every((p) => matches(p.client, p.itemId)), 30_000, 'viewers').catch(() => {});
  const checked = pairs();
  for (const [i, dashboard] of dashboards.entries()) {
    const held = items.filter((item) => dashboard.view(item.itemId)).length;
    progress(`dashboard ${i} holds ${held} of ${items.length} items`);
  }
  const mismatchedPairs = checked.filter((p) => !matches(p.client, p.itemId));

  for (const client of [...viewers, ...dashboards]) client.close();
  addLife(stack);
  progress('stopping the stack');
  await stack.stop();
  kinesis.destroy();
  direct.destroy();
  if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });

  const count = (kind: ItemProblem['kind']) => problems.filter((p) => p.kind === kind).length;
  return {
    options,
    elapsedMs: Date.now() - started,
    submitted: items.length,
    resent,
    completed,
    failed,
    failedByCode,
    failedByOutage: OUTAGE_CODES.reduce((sum, code) => sum + (failedByCode[code] ?? 0), 0),
    lost: count('lost'),
    duplicated: count('duplicated'),
    corrupted: count('corrupted'),
    problems,
    viewers: {
      pairs: checked.length,
      matched: checked.length - mismatchedPairs.length,
      mismatched: mismatchedPairs.length,
      examples: mismatchedPairs.slice(0, 10).map((p) => {
        const view = p.client.view(p.itemId);
        const item = stored.get(p.itemId);
        return (
          `${p.label} on ${p.itemId}: holds ${view ? `${view.status}, ${view.text.length} chars` : 'nothing'}, ` +
          `stored ${item?.status}, ${item?.text.length} chars`
        );
      }),
    },
    faults: {
      modelThrottles: faultTotals.model.throttled,
      modelUnavailable: faultTotals.model.unavailable,
      midStreamFailures: faultTotals.model.midStreamFailures,
      truncatedStreams: faultTotals.model.truncated,
      putRecordFailures: faultTotals.chunks.recordsFailed,
      putThrottles: faultTotals.chunks.throttledCalls,
      consumerCrashes: faultTotals.consumerCrashes,
      producerCrashes: faultTotals.producerCrashes,
      duplicateSubmissions: resent,
      viewerDisconnects: disconnects,
      viewerReconnects: opens - initialOpens,
      restarts: restarted ? 1 : 0,
    },
    dashboardFrames,
    fanout: fanoutTotals,
    brownout: brownoutReport,
    endingCrashes: {
      byPoint: crashes.countByPoint(),
      fired: crashes.fired(),
      unfired: crashes.unfired().length,
    },
  };
}

/** A document client straight to the stack's database, not through its fault proxy. */
function directDynamo(info: StackFile): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({
      region: info.region,
      endpoint: info.dynamodb.endpoint,
      credentials: info.credentials,
    }),
  );
}

/**
 * Items whose producer crashed once the ending was recorded (`ending-recorded`, `end-put`) and
 * that did not complete with that very attempt: a takeover started a second generation. (After
 * `end-put` the consumer may complete the item first; the redelivery then closes the claim
 * without putting anything.)
 */
async function secondGenerations(
  fired: readonly FiredCrash[],
  attempts: ReadonlyMap<string, Promise<number | undefined>>,
  direct: DynamoDBDocumentClient,
  stack: LocalStack,
): Promise<ItemProblem[]> {
  const problems: ItemProblem[] = [];
  for (const crash of fired) {
    if (crash.point === 'before-ending') continue;
    const during = await attempts.get(crash.itemId)?.catch(() => undefined);
    const head = await readItemHead(direct, stack.config.tables, crash.itemId);
    const completed = head?.claimState === 'completed' || head?.status === 'completed';
    if (completed && during !== undefined && head?.claimedAttempt === during) continue;
    problems.push({
      itemId: crash.itemId,
      kind: 'duplicated',
      detail:
        `producer crashed at ${crash.point} of attempt ${during ?? '?'}; the item ended ` +
        `${head?.status ?? 'missing'} (claim ${head?.claimState}) at attempt ${head?.claimedAttempt ?? '?'}`,
    });
  }
  return problems;
}

/** The claim and progress of an item's head row, as a failing run reports them. */
function describeHead(head: ItemHead | undefined, now: number): string {
  if (!head) return 'no head row';
  const lease = head.leaseUntil === undefined ? 'no lease' : `lease ${head.leaseUntil - now} ms from now`;
  return (
    `claim ${head.claimState} attempt ${head.claimedAttempt} (${lease}), stored attempt ${head.attempt} ` +
    `next seq ${head.nextSeq}, ${head.held} held, last progress ${head.progressAt ?? 'never'}`
  );
}

/** Counts one frame a dashboard received: a `batch` frame and the messages in it, or another. */
function countFrame(
  counts: { batchFrames: number; messagesInBatches: number; otherFrames: number },
  data: Buffer,
): void {
  try {
    const frame = JSON.parse(data.toString('utf8')) as { type?: unknown; messages?: unknown };
    if (frame.type === 'batch' && Array.isArray(frame.messages)) {
      counts.batchFrames++;
      counts.messagesInBatches += frame.messages.length;
      return;
    }
  } catch {
    // Not JSON: counted below like any other frame; the client reports it.
  }
  counts.otherFrames++;
}

/**
 * One item's verdict. Completed with the expected text, or failed with a reason and a text the
 * model did produce (a prefix of its answer), are the two good endings. Anything else is lost
 * (never ended, or ended with text missing), duplicated (text repeated) or corrupted.
 */
export function judge(
  itemId: string,
  item: StoredItem | undefined,
  expected: string,
): 'completed' | 'failed' | ItemProblem {
  if (!item || (item.status !== 'completed' && item.status !== 'failed'))
    return { itemId, kind: 'lost', detail: `status ${item?.status ?? 'missing'} at the deadline` };
  const { text } = item;
  if (item.status === 'failed') {
    if (!item.error?.code) return { itemId, kind: 'lost', detail: 'failed without a recorded reason' };
    if (expected.startsWith(text)) return 'failed';
    return {
      itemId,
      kind: 'corrupted',
      detail: `failed item's text is not a prefix of the answer (${describeDiff(text, expected)})`,
    };
  }
  if (text === expected) return 'completed';
  if (expected.startsWith(text))
    return { itemId, kind: 'lost', detail: `completed with ${text.length} of ${expected.length} characters` };
  if (text.length > expected.length && containsAllOf(text, expected))
    return {
      itemId,
      kind: 'duplicated',
      detail: `completed with ${text.length} characters, expected ${expected.length}`,
    };
  return { itemId, kind: 'corrupted', detail: describeDiff(text, expected) };
}

/** Whether `text` is `expected` with some of it repeated: every character of `expected`, in order. */
function containsAllOf(text: string, expected: string): boolean {
  let j = 0;
  for (let i = 0; i < text.length && j < expected.length; i++) if (text[i] === expected[j]) j++;
  return j === expected.length;
}

function describeDiff(text: string, expected: string): string {
  let i = 0;
  while (i < text.length && i < expected.length && text[i] === expected[i]) i++;
  return `first difference at ${i}: got ${JSON.stringify(text.slice(i, i + 20))}, expected ${JSON.stringify(expected.slice(i, i + 20))}`;
}

function readStackFile(file: string): StackFile {
  return StackFile.parse(JSON.parse(readFileSync(file, 'utf8')));
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function zeroModelStats(): Pick<
  BedrockStandInStats,
  'throttled' | 'unavailable' | 'midStreamFailures' | 'truncated'
> {
  return { throttled: 0, unavailable: 0, midStreamFailures: 0, truncated: 0 };
}

function zeroChunkStats(): Pick<KinesisFaultStats, 'recordsFailed' | 'throttledCalls'> {
  return { recordsFailed: 0, throttledCalls: 0 };
}
