import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sqsErrors } from './errors.js';

/** A message attribute as SQS's JSON protocol carries it (`BinaryValue` base64). */
export interface MessageAttributeValue {
  DataType: string;
  StringValue?: string;
  BinaryValue?: string;
}

/** One line of a queue's JSONL file: what was sent, kept as sent. */
export interface StoredMessage {
  messageId: string;
  sentTimestamp: number;
  body: string;
  md5OfBody: string;
  messageAttributes?: Record<string, MessageAttributeValue>;
  md5OfMessageAttributes?: string;
}

/** A message with its delivery state, which lives in memory only. */
export interface LiveMessage extends StoredMessage {
  visibleAt: number;
  receiveCount: number;
  firstReceiveTimestamp?: number;
  /** Changes on every receive, so only the latest receipt handle can change visibility. */
  receiptNonce?: string;
}

/** MD5 (hex) of a message body, as SQS answers it and the SDK checks it. */
export function md5Hex(data: string | Buffer): string {
  return createHash('md5').update(data).digest('hex');
}

/**
 * MD5 of message attributes in SQS's documented encoding: attributes sorted by name, each as
 * length-prefixed name, length-prefixed data type, a transport byte (1 string, 2 binary) and the
 * length-prefixed value.
 */
export function md5OfMessageAttributes(attributes: Record<string, MessageAttributeValue>): string {
  const hash = createHash('md5');
  const lengthPrefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length);
    hash.update(bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const value = attributes[name]!;
    lengthPrefixed(Buffer.from(name, 'utf8'));
    lengthPrefixed(Buffer.from(value.DataType, 'utf8'));
    if (value.BinaryValue !== undefined) {
      hash.update(Buffer.from([2]));
      lengthPrefixed(Buffer.from(value.BinaryValue, 'base64'));
    } else {
      hash.update(Buffer.from([1]));
      lengthPrefixed(Buffer.from(value.StringValue ?? '', 'utf8'));
    }
  }
  return hash.digest('hex');
}

interface ReceiptHandle {
  q: string;
  m: string;
  n: string;
}

function encodeReceiptHandle(handle: ReceiptHandle): string {
  return Buffer.from(JSON.stringify(handle), 'utf8').toString('base64url');
}

function decodeReceiptHandle(text: string): ReceiptHandle | undefined {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<ReceiptHandle>;
    if (typeof value.q === 'string' && typeof value.m === 'string' && typeof value.n === 'string')
      return { q: value.q, m: value.m, n: value.n };
  } catch {
    // Not one of ours: answered as an invalid handle below.
  }
  return undefined;
}

/** Settable queue attributes this store enforces, with SQS's bounds and defaults. */
export const ENFORCED_ATTRIBUTES = {
  DelaySeconds: { min: 0, max: 900, default: 0 },
  MaximumMessageSize: { min: 1_024, max: 1_048_576, default: 1_048_576 },
  MessageRetentionPeriod: { min: 60, max: 1_209_600, default: 345_600 },
  ReceiveMessageWaitTimeSeconds: { min: 0, max: 20, default: 0 },
  VisibilityTimeout: { min: 0, max: 43_200, default: 30 },
} as const;

/** Attributes SQS accepts that this store keeps and returns but does not act on. */
export const STORED_ONLY_ATTRIBUTES = new Set([
  'Policy',
  'RedrivePolicy',
  'RedriveAllowPolicy',
  'KmsMasterKeyId',
  'KmsDataKeyReusePeriodSeconds',
  'SqsManagedSseEnabled',
]);

/** Validates CreateQueue attributes and fills in the defaults. */
export function queueAttributes(given: Record<string, string> = {}): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, spec] of Object.entries(ENFORCED_ATTRIBUTES)) result[name] = String(spec.default);
  for (const [name, value] of Object.entries(given)) {
    if (name === 'FifoQueue' || name === 'ContentBasedDeduplication')
      throw sqsErrors.unsupportedOperation('FIFO queues are not supported by the local dead-letter store.');
    const spec = ENFORCED_ATTRIBUTES[name as keyof typeof ENFORCED_ATTRIBUTES];
    if (spec) {
      const number = Number(value);
      if (typeof value !== 'string' || !Number.isInteger(number) || number < spec.min || number > spec.max)
        throw sqsErrors.invalidAttributeValue(
          `Invalid value for the parameter ${name}: ${String(value)}; allowed: an integer from ${spec.min} to ${spec.max}.`,
        );
      result[name] = String(number);
    } else if (STORED_ONLY_ATTRIBUTES.has(name)) {
      result[name] = String(value);
    } else {
      throw sqsErrors.invalidAttributeName(name);
    }
  }
  return result;
}

/**
 * One standard queue: messages in memory, each send appended to `<dir>/<name>.jsonl` before it is
 * acknowledged, the file rewritten (temp + rename) after deletes. Delivery state (in flight,
 * receive counts) is not persisted: after a restart every message is visible again.
 */
export class Queue {
  readonly name: string;
  readonly attributes: Record<string, string>;
  readonly createdTimestamp: number;
  lastPurgeAt = 0;
  private readonly messages = new Map<string, LiveMessage>();
  private readonly waiters = new Set<() => void>();
  private readonly file: string | undefined;
  /** Ids in the file; an append queued behind a rewrite that already wrote its message is skipped. */
  private readonly persisted = new Set<string>();
  private writes: Promise<void> = Promise.resolve();
  private rewriteQueued = false;

  constructor(name: string, attributes: Record<string, string>, createdTimestamp: number, dir?: string) {
    this.name = name;
    this.attributes = attributes;
    this.createdTimestamp = createdTimestamp;
    this.file = dir ? join(dir, `${name}.jsonl`) : undefined;
  }

  private attribute(name: keyof typeof ENFORCED_ATTRIBUTES): number {
    return Number(this.attributes[name] ?? ENFORCED_ATTRIBUTES[name].default);
  }

  get visibilityTimeoutSeconds(): number {
    return this.attribute('VisibilityTimeout');
  }
  get receiveWaitTimeSeconds(): number {
    return this.attribute('ReceiveMessageWaitTimeSeconds');
  }
  get maximumMessageSize(): number {
    return this.attribute('MaximumMessageSize');
  }
  get delaySeconds(): number {
    return this.attribute('DelaySeconds');
  }

  /** Reads the queue's file, tolerating a torn last line from a crash mid-append. */
  async load(onWarning: (message: string) => void): Promise<void> {
    if (!this.file) return;
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let skipped = 0;
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const stored = JSON.parse(line) as StoredMessage;
        if (typeof stored.messageId !== 'string' || typeof stored.body !== 'string')
          throw new Error('not a message');
        this.messages.set(stored.messageId, { ...stored, visibleAt: 0, receiveCount: 0 });
        this.persisted.add(stored.messageId);
      } catch {
        skipped++;
      }
    }
    if (skipped > 0) onWarning(`dead-letter store: skipped ${skipped} unreadable line(s) in ${this.file}`);
  }

  private enqueueWrite(write: () => Promise<void>): Promise<void> {
    const next = this.writes.then(write);
    // One failed write must not wedge every later one; the failing caller still sees its error.
    this.writes = next.catch(() => {});
    return next;
  }

  private scheduleRewrite(): Promise<void> {
    if (!this.file || this.rewriteQueued) return this.writes;
    this.rewriteQueued = true;
    const file = this.file;
    return this.enqueueWrite(async () => {
      this.rewriteQueued = false;
      const snapshot = [...this.messages.values()];
      const temp = `${file}.${process.pid}.tmp`;
      await writeFile(temp, snapshot.map((m) => `${JSON.stringify(stored(m))}\n`).join(''));
      await rename(temp, file);
      this.persisted.clear();
      for (const m of snapshot) this.persisted.add(m.messageId);
    });
  }

  /** Adds a message; resolves once it is in the file. */
  async send(
    body: string,
    messageAttributes: Record<string, MessageAttributeValue> | undefined,
    delaySeconds: number,
    now: number,
  ): Promise<LiveMessage> {
    const hasAttributes = messageAttributes !== undefined && Object.keys(messageAttributes).length > 0;
    const message: LiveMessage = {
      messageId: randomUUID(),
      sentTimestamp: now,
      body,
      md5OfBody: md5Hex(body),
      ...(hasAttributes
        ? { messageAttributes, md5OfMessageAttributes: md5OfMessageAttributes(messageAttributes) }
        : {}),
      visibleAt: now + delaySeconds * 1000,
      receiveCount: 0,
    };
    this.messages.set(message.messageId, message);
    if (this.file) {
      const file = this.file;
      await this.enqueueWrite(async () => {
        if (!this.messages.has(message.messageId) || this.persisted.has(message.messageId)) return;
        await appendFile(file, `${JSON.stringify(stored(message))}\n`);
        this.persisted.add(message.messageId);
      });
    }
    this.notify();
    return message;
  }

  /** Up to `max` visible messages, now in flight for `visibilitySeconds`, each with a new receipt handle. */
  receive(
    max: number,
    visibilitySeconds: number,
    now: number,
  ): Array<LiveMessage & { receiptHandle: string }> {
    const taken: Array<LiveMessage & { receiptHandle: string }> = [];
    for (const message of this.messages.values()) {
      if (taken.length >= max) break;
      if (message.visibleAt > now) continue;
      message.receiveCount++;
      message.firstReceiveTimestamp ??= now;
      message.visibleAt = now + visibilitySeconds * 1000;
      message.receiptNonce = randomBytes(8).toString('hex');
      const receiptHandle = encodeReceiptHandle({
        q: this.name,
        m: message.messageId,
        n: message.receiptNonce,
      });
      taken.push({ ...message, receiptHandle });
    }
    return taken;
  }

  private resolveHandle(text: string): { handle: ReceiptHandle; message: LiveMessage | undefined } {
    const handle = decodeReceiptHandle(text);
    if (!handle || handle.q !== this.name) throw sqsErrors.receiptHandleIsInvalid(text);
    return { handle, message: this.messages.get(handle.m) };
  }

  /** Deletes by receipt handle. A message already deleted is no error, as in SQS. */
  async delete(receiptHandle: string): Promise<void> {
    const { message } = this.resolveHandle(receiptHandle);
    if (!message) return;
    this.messages.delete(message.messageId);
    await this.scheduleRewrite();
  }

  /** Changes an in-flight message's visibility; only its latest receipt handle may. */
  changeVisibility(receiptHandle: string, visibilitySeconds: number, now: number): void {
    const { handle, message } = this.resolveHandle(receiptHandle);
    if (!message || message.visibleAt <= now || message.receiptNonce !== handle.n)
      throw sqsErrors.messageNotInflight();
    message.visibleAt = now + visibilitySeconds * 1000;
    if (visibilitySeconds === 0) this.notify();
  }

  async purge(): Promise<void> {
    this.messages.clear();
    await this.scheduleRewrite();
  }

  /** Counts as GetQueueAttributes reports them. */
  counts(now: number): { visible: number; notVisible: number; delayed: number } {
    let visible = 0;
    let notVisible = 0;
    let delayed = 0;
    for (const m of this.messages.values()) {
      if (m.visibleAt <= now) visible++;
      else if (m.receiveCount === 0) delayed++;
      else notVisible++;
    }
    return { visible, notVisible, delayed };
  }

  /** Earliest time a message not visible now becomes visible, if any. */
  nextVisibleAt(now: number): number | undefined {
    let next: number | undefined;
    for (const m of this.messages.values())
      if (m.visibleAt > now && (next === undefined || m.visibleAt < next)) next = m.visibleAt;
    return next;
  }

  /** Every message in send order, in flight or not. */
  all(): LiveMessage[] {
    return [...this.messages.values()].map((m) => ({ ...m }));
  }

  /** Resolves on the next send (or visibility reset), for long polls. */
  waitForChange(): { promise: Promise<void>; cancel(): void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => {
      wake = resolve;
    });
    this.waiters.add(wake);
    return { promise, cancel: () => this.waiters.delete(wake) };
  }

  notify(): void {
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /** Waits for queued file writes. */
  flush(): Promise<void> {
    return this.writes;
  }
}

function stored(m: LiveMessage): StoredMessage {
  return {
    messageId: m.messageId,
    sentTimestamp: m.sentTimestamp,
    body: m.body,
    md5OfBody: m.md5OfBody,
    ...(m.messageAttributes
      ? { messageAttributes: m.messageAttributes, md5OfMessageAttributes: m.md5OfMessageAttributes }
      : {}),
  };
}

/** Queue definitions, persisted as `<dir>/queues.json` (atomic write). */
export interface QueueDefinition {
  attributes: Record<string, string>;
  createdTimestamp: number;
}

export async function readQueueDefinitions(dir: string): Promise<Record<string, QueueDefinition>> {
  try {
    return JSON.parse(await readFile(join(dir, 'queues.json'), 'utf8')) as Record<string, QueueDefinition>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new Error(`dead-letter store: cannot read ${join(dir, 'queues.json')}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

export async function writeQueueDefinitions(
  dir: string,
  defs: Record<string, QueueDefinition>,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'queues.json');
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, `${JSON.stringify(defs, null, 2)}\n`);
  await rename(temp, file);
}
