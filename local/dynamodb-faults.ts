import { randomUUID } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenOnLoopback } from './listen.js';

/**
 * The errors DynamoDB answers when it browns out, with the status and `__type` AWS sends
 * (JSON 1.0 protocol): the SDK turns each into the typed exception of that name.
 */
export const DYNAMODB_FAULT_ERRORS = {
  ProvisionedThroughputExceededException: {
    status: 400,
    type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
    message:
      'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
  },
  ThrottlingException: {
    status: 400,
    type: 'com.amazon.coral.availability#ThrottlingException',
    message: 'Rate of requests exceeds the allowed throughput.',
  },
  InternalServerError: {
    status: 500,
    type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
    message: 'Internal server error',
  },
  ServiceUnavailable: {
    status: 503,
    type: 'com.amazonaws.dynamodb.v20120810#ServiceUnavailable',
    message: 'Service Unavailable',
  },
} as const;

/** One of the brownout errors. */
export type DynamoFaultError = keyof typeof DYNAMODB_FAULT_ERRORS;

/** What the proxy answers instead of forwarding, changeable at run time. */
export interface DynamoFaults {
  /** Share of matching requests answered with an error, in [0, 1]; 1 is a full outage. Default 0. */
  readonly errorRate: number;
  /**
   * Errors to answer with, taken in turn (a brownout mixes throttling and 5xx). Default
   * `['ProvisionedThroughputExceededException', 'ThrottlingException', 'InternalServerError', 'ServiceUnavailable']`.
   */
  readonly errors: readonly DynamoFaultError[];
  /** Operations that get faults (e.g. `UpdateItem`); every operation when empty. Default empty. */
  readonly operations: readonly string[];
}

/** What the proxy has seen and done since it started. */
export interface DynamoFaultStats {
  /** Every request, forwarded or answered. */
  requests: number;
  /** Requests answered with an injected error. */
  failed: number;
  /** Injected errors by name. */
  byError: Partial<Record<DynamoFaultError, number>>;
}

export interface DynamoFaultProxyOptions {
  /** The DynamoDB endpoint behind the proxy, e.g. dynalite's `http://127.0.0.1:4568`. */
  readonly target: string;
  /** 0 (default) picks a free loopback port. */
  readonly port?: number;
  /** Faults from the start; none by default. */
  readonly faults?: Partial<DynamoFaults>;
  /** Source of randomness for `errorRate` (tests pass a seeded one). Default `Math.random`. */
  readonly random?: () => number;
}

export interface DynamoFaultProxy {
  /** Point a `DynamoDBClient` here instead of at the target. */
  readonly endpoint: string;
  readonly port: number;
  /** Changes some faults; the others keep their values. Throws on an unknown or out-of-range value. */
  setFaults(faults: Partial<DynamoFaults>): void;
  faults(): DynamoFaults;
  stats(): DynamoFaultStats;
  stop(): Promise<void>;
}

const NO_FAULTS: DynamoFaults = {
  errorRate: 0,
  errors: Object.keys(DYNAMODB_FAULT_ERRORS) as DynamoFaultError[],
  operations: [],
};

function checkFaults(faults: Partial<DynamoFaults>): void {
  const known = new Set(Object.keys(NO_FAULTS));
  for (const key of Object.keys(faults))
    if (!known.has(key))
      throw new RangeError(`unknown dynamodb fault "${key}"; allowed: ${[...known].join(', ')}`);
  const { errorRate, errors } = faults;
  if (errorRate !== undefined && (typeof errorRate !== 'number' || !(errorRate >= 0 && errorRate <= 1)))
    throw new RangeError(`dynamodb fault errorRate must be a number in [0, 1], got ${String(errorRate)}`);
  if (errors !== undefined) {
    const allowed = Object.keys(DYNAMODB_FAULT_ERRORS);
    const bad = errors.filter((e) => !allowed.includes(e));
    if (errors.length === 0 || bad.length > 0)
      throw new RangeError(
        `dynamodb fault errors must name at least one of ${allowed.join(', ')}, got ${JSON.stringify(errors)}`,
      );
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Starts an HTTP proxy in front of a DynamoDB endpoint that forwards every request unchanged and,
 * while told to, answers a share of them (or all: an outage) with the errors of a DynamoDB
 * brownout — throughput exceeded, throttling, 500 and 503 — in AWS's JSON error shape, before
 * they reach the target, so nothing answered with an error was applied.
 */
export async function startDynamoFaultProxy(options: DynamoFaultProxyOptions): Promise<DynamoFaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:')
    throw new RangeError(`dynamodb fault proxy target must be an http:// URL, got "${options.target}"`);
  checkFaults(options.faults ?? {});
  let faults: DynamoFaults = { ...NO_FAULTS, ...options.faults };
  const random = options.random ?? Math.random;
  const stats: DynamoFaultStats = { requests: 0, failed: 0, byError: {} };
  let turn = 0;

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> =>
    new Promise((resolve, reject) => {
      const headers: IncomingHttpHeaders = { ...req.headers, 'content-length': String(body.length) };
      const upstream = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          up.on('end', resolve);
          up.on('error', reject);
        },
      );
      upstream.on('error', reject);
      upstream.end(body);
    });

  const answerError = (res: ServerResponse, name: DynamoFaultError) => {
    const error = DYNAMODB_FAULT_ERRORS[name];
    stats.failed++;
    stats.byError[name] = (stats.byError[name] ?? 0) + 1;
    const body = Buffer.from(
      JSON.stringify({
        __type: error.type,
        message: `${error.message} (injected by the local DynamoDB fault proxy)`,
      }),
    );
    res.writeHead(error.status, {
      'content-type': 'application/x-amz-json-1.0',
      'content-length': String(body.length),
      'x-amzn-requestid': randomUUID(),
    });
    res.end(body);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.requests++;
    const body = await readBody(req);
    const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
    const matches = faults.operations.length === 0 || faults.operations.includes(operation);
    if (matches && faults.errorRate > 0 && random() < faults.errorRate) {
      const name = faults.errors[turn++ % faults.errors.length]!;
      return answerError(res, name);
    }
    await forward(req, res, body);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return res.destroy();
      // The target is unreachable or broke the connection: answer as an unavailable service would.
      const body = JSON.stringify({
        __type: DYNAMODB_FAULT_ERRORS.ServiceUnavailable.type,
        message: `DynamoDB fault proxy could not reach ${target.origin}: ${err instanceof Error ? err.message : String(err)}`,
      });
      res.writeHead(503, { 'content-type': 'application/x-amz-json-1.0' }).end(body);
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
    stats: () => ({ ...stats, byError: { ...stats.byError } }),
    stop: () => closeServer(server),
  };
}
