import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { type DeadLetter, DeadLetter as DeadLetterSchema } from '../../shared/contracts/dead-letter.js';
import { closeServer, listenOnLoopback } from '../listen.js';
import { SqsError, sqsErrors } from './errors.js';
import { OPERATIONS, type OperationContext, UNSUPPORTED_SQS_OPERATIONS } from './operations/index.js';
import type { MessageAttributeValue } from './queue.js';
import { checkQueueName, QueueRegistry } from './registry.js';

/** The queue the local stack's handlers and event source mappings send dead letters to. */
export const DEFAULT_QUEUE = 'dead-letters';

export interface DeadLetterStoreOptions {
  /** Folder for `queues.json` and one `<queue>.jsonl` per queue; in memory when omitted. */
  readonly dir?: string;
  /** 0 (default) picks a free loopback port. */
  readonly port?: number;
  /** Region in queue ARNs. Default `us-east-1`. */
  readonly region?: string;
  /** Queues created at start (idempotent). Default `['dead-letters']`. */
  readonly queues?: readonly string[];
  /** Cap on long-poll waits, 0–20 s (SQS's own maximum is 20). Default 20. */
  readonly maxWaitTimeSeconds?: number;
  /** Minimum time between two PurgeQueue calls on a queue; SQS's is 60 s. Default 60,000. */
  readonly purgeCooldownMs?: number;
  /** Where warnings go (unreadable lines in a file, internal errors). Default `console.warn`. */
  readonly onWarning?: (message: string) => void;
}

/** A message as the store holds it, with its body decoded as a dead letter when it is one. */
export interface DeadLetterMessage {
  readonly queue: string;
  readonly messageId: string;
  readonly body: string;
  readonly sentTimestamp: number;
  readonly receiveCount: number;
  readonly messageAttributes?: Record<string, MessageAttributeValue>;
  /** The body parsed against the dead-letter contract; undefined when it does not match. */
  readonly letter?: DeadLetter;
}

export interface DeadLetterStore {
  /** Endpoint for `new SQSClient({ endpoint })`. */
  readonly endpoint: string;
  readonly port: number;
  /** The URL of a queue (whether or not it exists yet). */
  queueUrl(name?: string): string;
  /** Every message of a queue in send order, received or not. Throws for an unknown queue. */
  list(name?: string): Promise<DeadLetterMessage[]>;
  /** Answers pending long polls, writes what is pending and closes the server. */
  stop(): Promise<void>;
}

const JSON_CONTENT_TYPE = 'application/x-amz-json-1.0';
const TARGET_PREFIX = 'AmazonSQS.';

function checkOptions(options: DeadLetterStoreOptions): void {
  const wait = options.maxWaitTimeSeconds;
  if (wait !== undefined && (!Number.isFinite(wait) || wait < 0 || wait > 20))
    throw new RangeError(`dead-letter store maxWaitTimeSeconds must be in [0, 20], got ${wait}`);
  const cooldown = options.purgeCooldownMs;
  if (cooldown !== undefined && (!Number.isFinite(cooldown) || cooldown < 0))
    throw new RangeError(`dead-letter store purgeCooldownMs must be a finite number >= 0, got ${cooldown}`);
  for (const name of options.queues ?? []) {
    try {
      checkQueueName(name);
    } catch (err) {
      throw new RangeError(`dead-letter store queue name "${name}" is invalid: ${(err as Error).message}`);
    }
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': JSON_CONTENT_TYPE,
    'content-length': String(Buffer.byteLength(text)),
    'x-amzn-requestid': randomUUID(),
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, err: SqsError): void {
  send(
    res,
    err.status,
    { __type: `com.amazonaws.sqs#${err.type}`, message: err.message },
    { 'x-amzn-query-error': `${err.queryCode};${err.fault}` },
  );
}

/**
 * Starts a small SQS-compatible store on loopback: the real `SQSClient` (AWS JSON 1.0 protocol,
 * `x-amz-target: AmazonSQS.<Op>`) works against it with only an endpoint override. Standard
 * queues only; messages are appended to one JSONL file per queue, so they survive a restart and a
 * person can read them with `cat`.
 */
export async function startDeadLetterStore(options: DeadLetterStoreOptions = {}): Promise<DeadLetterStore> {
  checkOptions(options);
  const onWarning = options.onWarning ?? ((message: string) => console.warn(message));
  const queues = new QueueRegistry(options.dir, options.region ?? 'us-east-1', onWarning);
  await queues.load();
  const stopping = new AbortController();
  const context: OperationContext = {
    queues,
    now: () => Date.now(),
    maxWaitTimeSeconds: options.maxWaitTimeSeconds ?? 20,
    purgeCooldownMs: options.purgeCooldownMs ?? 60_000,
    stopping: stopping.signal,
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await readBody(req);
    const target = String(req.headers['x-amz-target'] ?? '');
    if (req.method !== 'POST' || !target.startsWith(TARGET_PREFIX)) {
      const contentType = String(req.headers['content-type'] ?? '');
      if (contentType.startsWith('application/x-www-form-urlencoded'))
        throw sqsErrors.unsupportedOperation(
          "The local dead-letter store speaks SQS's JSON protocol (x-amz-target: AmazonSQS.<Op>), not the query protocol.",
        );
      throw sqsErrors.invalidAction(target || `${req.method} ${req.url}`);
    }
    const name = target.slice(TARGET_PREFIX.length);
    const operation = OPERATIONS[name];
    if (!operation) {
      if (UNSUPPORTED_SQS_OPERATIONS.has(name))
        throw sqsErrors.unsupportedOperation(`${name} is not supported by the local dead-letter store.`);
      throw sqsErrors.invalidAction(name);
    }
    let input: unknown;
    try {
      input = text.trim() === '' ? {} : JSON.parse(text);
    } catch {
      throw sqsErrors.serialization(`The request body is not valid JSON: ${text.slice(0, 80)}`);
    }
    if (typeof input !== 'object' || input === null || Array.isArray(input))
      throw sqsErrors.serialization('The request body must be a JSON object.');
    send(res, 200, await operation(input as Record<string, unknown>, context));
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof SqsError) return sendError(res, err);
      onWarning(`dead-letter store: internal error: ${err instanceof Error ? err.stack : String(err)}`);
      sendError(
        res,
        new SqsError('InternalError', `Internal error: ${err instanceof Error ? err.message : String(err)}`, {
          status: 500,
        }),
      );
    });
  });
  const port = await listenOnLoopback(server, options.port ?? 0);
  queues.endpoint = `http://127.0.0.1:${port}`;
  for (const name of options.queues ?? [DEFAULT_QUEUE]) await queues.create(name, undefined);

  return {
    endpoint: queues.endpoint,
    port,
    queueUrl: (name = DEFAULT_QUEUE) => queues.urlOf(name),
    async list(name = DEFAULT_QUEUE) {
      const queue = queues.find(name);
      if (!queue)
        throw new Error(
          `dead-letter store has no queue "${name}"; queues: ${queues.names().join(', ') || '(none)'}`,
        );
      return queue.all().map((m) => {
        const parsed = (() => {
          try {
            return DeadLetterSchema.safeParse(JSON.parse(m.body));
          } catch {
            return undefined;
          }
        })();
        return {
          queue: name,
          messageId: m.messageId,
          body: m.body,
          sentTimestamp: m.sentTimestamp,
          receiveCount: m.receiveCount,
          ...(m.messageAttributes ? { messageAttributes: m.messageAttributes } : {}),
          ...(parsed?.success ? { letter: parsed.data } : {}),
        };
      });
    },
    async stop() {
      stopping.abort(new Error('dead-letter store stopped'));
      await queues.close();
      await closeServer(server);
    },
  };
}
