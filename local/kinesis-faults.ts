import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { sleep } from '../shared/retry.js';
import { closeServer, listenOnLoopback } from './listen.js';

/**
 * Faults the proxy injects into puts and reads, changeable at run time. Rates are probabilities in [0, 1].
 * Only requests in Kinesis's JSON 1.1 protocol (what the JS SDK v3 sends) get faults; a body in
 * another encoding (the Java SDK's CBOR) is forwarded untouched and counted in `stats().untouched`.
 */
export interface KinesisFaults {
  /**
   * Per record of a PutRecords call: the record is not written and comes back with
   * `ErrorCode: 'ProvisionedThroughputExceededException'`, as a real partial failure does. A
   * PutRecord call whose record is dropped fails whole with that error, as AWS answers it. Default 0.
   */
  readonly putRecordsFailureRate: number;
  /** Per PutRecords / PutRecord call: answered 400 `ProvisionedThroughputExceededException`. Default 0. */
  readonly throttleRate: number;
  /** Stall each put this long before it is answered or forwarded. Default 0. */
  readonly delayMs: number;
  /** Per GetRecords call: answered 400 `ProvisionedThroughputExceededException`. Default 0. */
  readonly getRecordsThrottleRate: number;
  /**
   * Per GetRecords call: the iterator expires and stays expired (400 `ExpiredIteratorException`
   * for every later use), so the reader must get a new one, as after Kinesis's 5-minute limit.
   * Default 0.
   */
  readonly expiredIteratorRate: number;
}

/** What the proxy has seen and done since it started. */
export interface KinesisFaultStats {
  /** Every request forwarded or answered, puts or not. */
  requests: number;
  putRecordsCalls: number;
  putRecordCalls: number;
  /** Records in put calls that reached the proxy. */
  recordsSeen: number;
  /** Records answered as failed by the proxy (not written). */
  recordsFailed: number;
  /** Put calls answered whole with a throttling error. */
  throttledCalls: number;
  /** Put calls stalled by `delayMs`. */
  delayedCalls: number;
  /** Put calls in an encoding the proxy does not rewrite, forwarded as they came. */
  untouched: number;
  getRecordsCalls: number;
  /** GetRecords calls answered with a throttling error. */
  getRecordsThrottled: number;
  /** GetRecords calls answered `ExpiredIteratorException`. */
  expiredIterators: number;
}

export interface KinesisFaultProxyOptions {
  /** The Kinesis endpoint behind the proxy, e.g. kinesalite's `http://127.0.0.1:4567`. */
  readonly target: string;
  /** 0 (default) picks a free loopback port. */
  readonly port?: number;
  /** Faults from the start; none by default. */
  readonly faults?: Partial<KinesisFaults>;
  /** Source of randomness for the rates (tests pass a seeded one). Default `Math.random`. */
  readonly random?: () => number;
}

export interface KinesisFaultProxy {
  /** Point a `KinesisClient` here instead of at the target. */
  readonly endpoint: string;
  readonly port: number;
  /** Changes some faults; the others keep their values. Throws on an out-of-range value. */
  setFaults(faults: Partial<KinesisFaults>): void;
  faults(): KinesisFaults;
  stats(): KinesisFaultStats;
  stop(): Promise<void>;
}

const NO_FAULTS: KinesisFaults = {
  putRecordsFailureRate: 0,
  throttleRate: 0,
  delayMs: 0,
  getRecordsThrottleRate: 0,
  expiredIteratorRate: 0,
};
/** Expired iterators remembered; older ones are forgotten past this many (they are never reused). */
const MAX_EXPIRED_ITERATORS = 10_000;
const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
const THROUGHPUT_ERROR = 'ProvisionedThroughputExceededException';

function checkFaults(faults: Partial<KinesisFaults>): void {
  for (const name of [
    'putRecordsFailureRate',
    'throttleRate',
    'getRecordsThrottleRate',
    'expiredIteratorRate',
  ] as const) {
    const value = faults[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !(value >= 0 && value <= 1))
      throw new RangeError(`kinesis fault ${name} must be a number in [0, 1], got ${String(value)}`);
  }
  const { delayMs } = faults;
  if (delayMs !== undefined && (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0))
    throw new RangeError(`kinesis fault delayMs must be a finite number >= 0, got ${String(delayMs)}`);
  const known = new Set(Object.keys(NO_FAULTS));
  for (const key of Object.keys(faults))
    if (!known.has(key))
      throw new RangeError(`unknown kinesis fault "${key}"; allowed: ${[...known].join(', ')}`);
}

function checkTarget(target: string): URL {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new RangeError(`kinesis fault proxy target must be an http:// URL, got "${target}"`);
  }
  if (url.protocol !== 'http:')
    throw new RangeError(`kinesis fault proxy target must be an http:// URL, got "${target}"`);
  return url;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface Upstream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

interface PutRecordsResultEntry {
  SequenceNumber?: string;
  ShardId?: string;
  ErrorCode?: string;
  ErrorMessage?: string;
}

function isPutRecordsBody(value: unknown): value is { Records: unknown[]; StreamName?: string } {
  return (
    typeof value === 'object' && value !== null && Array.isArray((value as { Records?: unknown }).Records)
  );
}

/**
 * Starts an HTTP proxy in front of a Kinesis endpoint that forwards every request unchanged and can
 * inject the failures a real shard produces under load: per-record throughput failures in
 * PutRecords, whole-call throttling and slow puts. The SDK signs the original body; the target must
 * not check signatures (kinesalite does not), since a partial failure forwards fewer records.
 */
export async function startKinesisFaultProxy(options: KinesisFaultProxyOptions): Promise<KinesisFaultProxy> {
  const target = checkTarget(options.target);
  checkFaults(options.faults ?? {});
  let faults: KinesisFaults = { ...NO_FAULTS, ...options.faults };
  const random = options.random ?? Math.random;
  const stats: KinesisFaultStats = {
    requests: 0,
    putRecordsCalls: 0,
    putRecordCalls: 0,
    recordsSeen: 0,
    recordsFailed: 0,
    throttledCalls: 0,
    delayedCalls: 0,
    untouched: 0,
    getRecordsCalls: 0,
    getRecordsThrottled: 0,
    expiredIterators: 0,
  };
  const expired = new Set<string>();
  const stopping = new AbortController();

  const forward = (req: IncomingMessage, body: Buffer): Promise<Upstream> =>
    new Promise((resolve, reject) => {
      const headers: IncomingHttpHeaders = { ...req.headers, 'content-length': String(body.length) };
      const upstream = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }),
          );
          res.on('error', reject);
        },
      );
      upstream.on('error', reject);
      upstream.end(body);
    });

  const reply = (res: ServerResponse, status: number, headers: IncomingHttpHeaders, body: Buffer) => {
    const out: IncomingHttpHeaders = { ...headers, 'content-length': String(body.length) };
    delete out['transfer-encoding'];
    res.writeHead(status, out);
    res.end(body);
  };

  const replyJson = (res: ServerResponse, status: number, value: unknown, extra: IncomingHttpHeaders = {}) =>
    reply(
      res,
      status,
      { 'content-type': JSON_CONTENT_TYPE, 'x-amzn-requestid': randomUUID(), ...extra },
      Buffer.from(JSON.stringify(value)),
    );

  const throttle = (res: ServerResponse, streamName: string) =>
    replyJson(
      res,
      400,
      {
        __type: THROUGHPUT_ERROR,
        message: `Rate exceeded for stream ${streamName} (injected by the local Kinesis fault proxy).`,
      },
      { 'x-amzn-errortype': THROUGHPUT_ERROR },
    );

  const droppedEntry = (streamName: string): PutRecordsResultEntry => ({
    ErrorCode: THROUGHPUT_ERROR,
    ErrorMessage: `Rate exceeded for shard in stream ${streamName} (injected by the local Kinesis fault proxy).`,
  });

  async function handlePutRecords(
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    parsed: { Records: unknown[]; StreamName?: string },
  ): Promise<void> {
    const streamName = parsed.StreamName ?? 'unknown';
    const rate = faults.putRecordsFailureRate;
    const dropped = parsed.Records.map(() => rate > 0 && random() < rate);
    const droppedCount = dropped.filter(Boolean).length;
    if (droppedCount === 0) {
      const up = await forward(req, body);
      return reply(res, up.status, up.headers, up.body);
    }
    stats.recordsFailed += droppedCount;
    if (droppedCount === parsed.Records.length) {
      // Nothing to write; the target would reject an empty Records list, AWS answers 200 like this.
      return replyJson(res, 200, {
        FailedRecordCount: droppedCount,
        Records: dropped.map(() => droppedEntry(streamName)),
      });
    }
    const survivors = parsed.Records.filter((_, i) => !dropped[i]);
    const up = await forward(req, Buffer.from(JSON.stringify({ ...parsed, Records: survivors })));
    if (up.status !== 200) return reply(res, up.status, up.headers, up.body);
    const result = JSON.parse(up.body.toString('utf8')) as {
      FailedRecordCount?: number;
      Records: PutRecordsResultEntry[];
    };
    let next = 0;
    const merged = dropped.map((isDropped) =>
      isDropped ? droppedEntry(streamName) : result.Records[next++],
    );
    const body2 = Buffer.from(
      JSON.stringify({
        ...result,
        FailedRecordCount: (result.FailedRecordCount ?? 0) + droppedCount,
        Records: merged,
      }),
    );
    reply(res, 200, up.headers, body2);
  }

  async function handleGetRecords(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    stats.getRecordsCalls++;
    let iterator: unknown;
    try {
      iterator = (JSON.parse(body.toString('utf8')) as { ShardIterator?: unknown }).ShardIterator;
    } catch {
      iterator = undefined;
    }
    if (typeof iterator === 'string') {
      if (faults.getRecordsThrottleRate > 0 && random() < faults.getRecordsThrottleRate) {
        stats.getRecordsThrottled++;
        return replyJson(
          res,
          400,
          {
            __type: THROUGHPUT_ERROR,
            message: 'Rate exceeded for shard (injected by the local Kinesis fault proxy).',
          },
          { 'x-amzn-errortype': THROUGHPUT_ERROR },
        );
      }
      if (
        expired.has(iterator) ||
        (faults.expiredIteratorRate > 0 && random() < faults.expiredIteratorRate)
      ) {
        if (expired.size >= MAX_EXPIRED_ITERATORS) expired.clear();
        expired.add(iterator);
        stats.expiredIterators++;
        return replyJson(
          res,
          400,
          {
            __type: 'ExpiredIteratorException',
            message: 'Iterator expired (injected by the local Kinesis fault proxy).',
          },
          { 'x-amzn-errortype': 'ExpiredIteratorException' },
        );
      }
    }
    const up = await forward(req, body);
    return reply(res, up.status, up.headers, up.body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests++;
    const body = await readBody(req);
    const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1];
    const isPut = operation === 'PutRecords' || operation === 'PutRecord';
    if (operation === 'GetRecords') return handleGetRecords(req, res, body);
    if (!isPut) {
      const up = await forward(req, body);
      return reply(res, up.status, up.headers, up.body);
    }
    if (operation === 'PutRecords') stats.putRecordsCalls++;
    else stats.putRecordCalls++;
    const contentType = String(req.headers['content-type'] ?? '');
    let parsed: unknown;
    try {
      parsed = contentType.startsWith(JSON_CONTENT_TYPE) ? JSON.parse(body.toString('utf8')) : undefined;
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || typeof parsed !== 'object' || parsed === null) {
      // Not a body the proxy can rewrite (CBOR, malformed JSON): the target answers it as it would.
      stats.untouched++;
      const up = await forward(req, body);
      return reply(res, up.status, up.headers, up.body);
    }
    const streamName = String((parsed as { StreamName?: unknown }).StreamName ?? 'unknown');
    if (faults.delayMs > 0) {
      stats.delayedCalls++;
      await sleep(faults.delayMs, stopping.signal);
    }
    if (faults.throttleRate > 0 && random() < faults.throttleRate) {
      stats.throttledCalls++;
      return throttle(res, streamName);
    }
    if (operation === 'PutRecord') {
      stats.recordsSeen++;
      if (faults.putRecordsFailureRate > 0 && random() < faults.putRecordsFailureRate) {
        stats.recordsFailed++;
        return throttle(res, streamName);
      }
      const up = await forward(req, body);
      return reply(res, up.status, up.headers, up.body);
    }
    if (!isPutRecordsBody(parsed)) {
      stats.untouched++;
      const up = await forward(req, body);
      return reply(res, up.status, up.headers, up.body);
    }
    stats.recordsSeen += parsed.Records.length;
    return handlePutRecords(req, res, body, parsed);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      if (stopping.signal.aborted) return res.destroy();
      // The target is unreachable or broke the connection: answer as an unavailable service would.
      replyJson(res, 503, {
        __type: 'ServiceUnavailable',
        message: `Kinesis fault proxy could not reach ${target.origin}: ${err instanceof Error ? err.message : String(err)}`,
      });
    });
  });
  const port = await listenOnLoopback(server, options.port ?? 0);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    setFaults(next) {
      checkFaults(next);
      faults = { ...faults, ...next };
    },
    faults: () => ({ ...faults }),
    stats: () => ({ ...stats }),
    async stop() {
      stopping.abort(new Error('Kinesis fault proxy stopped'));
      await closeServer(server);
    },
  };
}
