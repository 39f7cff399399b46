import { mkdir, readdir } from 'node:fs/promises';
import { sqsErrors } from './errors.js';
import {
  Queue,
  type QueueDefinition,
  queueAttributes,
  readQueueDefinitions,
  writeQueueDefinitions,
} from './queue.js';

/** The account id in local queue URLs and ARNs (kinesalite uses the same). */
export const LOCAL_ACCOUNT_ID = '000000000000';

const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/;

/** Checks a queue name against SQS's rule for standard queues. */
export function checkQueueName(name: string): void {
  if (name.endsWith('.fifo'))
    throw sqsErrors.unsupportedOperation('FIFO queues are not supported by the local dead-letter store.');
  if (!QUEUE_NAME.test(name))
    throw sqsErrors.invalidParameterValue(
      `Invalid queue name "${name}": can only include alphanumeric characters, hyphens, or underscores, 1 to 80 in length.`,
    );
}

/** Every queue of a store, their definitions persisted beside their messages. */
export class QueueRegistry {
  private readonly queues = new Map<string, Queue>();
  private definitionWrites: Promise<void> = Promise.resolve();
  endpoint = '';

  constructor(
    readonly dir: string | undefined,
    readonly region: string,
    private readonly onWarning: (message: string) => void,
  ) {}

  /** Loads the queues found under `dir`: `queues.json`, plus any `<name>.jsonl` it does not list. */
  async load(): Promise<void> {
    if (!this.dir) return;
    await mkdir(this.dir, { recursive: true });
    const definitions = await readQueueDefinitions(this.dir);
    for (const file of await readdir(this.dir)) {
      const name = file.endsWith('.jsonl') ? file.slice(0, -'.jsonl'.length) : undefined;
      if (name && QUEUE_NAME.test(name) && !definitions[name])
        definitions[name] = { attributes: queueAttributes(), createdTimestamp: Date.now() };
    }
    for (const [name, def] of Object.entries(definitions)) {
      const queue = new Queue(name, def.attributes, def.createdTimestamp, this.dir);
      await queue.load(this.onWarning);
      this.queues.set(name, queue);
    }
  }

  urlOf(name: string): string {
    return `${this.endpoint}/${LOCAL_ACCOUNT_ID}/${name}`;
  }

  arnOf(name: string): string {
    return `arn:aws:sqs:${this.region}:${LOCAL_ACCOUNT_ID}:${name}`;
  }

  get(name: string): Queue {
    const queue = this.queues.get(name);
    if (!queue) throw sqsErrors.queueDoesNotExist();
    return queue;
  }

  find(name: string): Queue | undefined {
    return this.queues.get(name);
  }

  /** The queue a QueueUrl names: any host (clients may reach the store by another address), path `/<account>/<name>`. */
  byUrl(url: string): Queue {
    let path: string;
    try {
      path = new URL(url).pathname;
    } catch {
      throw sqsErrors.invalidAddress(url);
    }
    const parts = path.split('/').filter(Boolean);
    if (parts.length !== 2) throw sqsErrors.invalidAddress(url);
    return this.get(decodeURIComponent(parts[1]!));
  }

  /** Creates a queue, or returns the existing one when its attributes match, as CreateQueue does. */
  async create(name: string, given: Record<string, string> | undefined): Promise<Queue> {
    checkQueueName(name);
    const attributes = queueAttributes(given);
    const existing = this.queues.get(name);
    if (existing) {
      for (const key of Object.keys(given ?? {}))
        if (existing.attributes[key] !== attributes[key]) throw sqsErrors.queueNameExists(name);
      return existing;
    }
    const queue = new Queue(name, attributes, Date.now(), this.dir);
    this.queues.set(name, queue);
    await this.saveDefinitions();
    return queue;
  }

  names(): string[] {
    return [...this.queues.keys()];
  }

  private saveDefinitions(): Promise<void> {
    const dir = this.dir;
    if (!dir) return Promise.resolve();
    const next = this.definitionWrites.then(() => {
      const defs: Record<string, QueueDefinition> = {};
      for (const [name, q] of this.queues)
        defs[name] = { attributes: q.attributes, createdTimestamp: q.createdTimestamp };
      return writeQueueDefinitions(dir, defs);
    });
    this.definitionWrites = next.catch(() => {});
    return next;
  }

  /** Wakes every long poll and waits for pending file writes. */
  async close(): Promise<void> {
    for (const queue of this.queues.values()) queue.notify();
    await Promise.all([this.definitionWrites, ...[...this.queues.values()].map((q) => q.flush())]);
  }
}
