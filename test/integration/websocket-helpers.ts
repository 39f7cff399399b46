/**
 * Live delivery's world for integration tests: dynalite with the three tables, the real WebSocket
 * route handlers behind the real local gateway, the real fan-out posting through the gateway's
 * management API, `ws` viewers, and an item writer that applies batches to head rows the way the
 * consumer does (one atomic head update per batch) and returns the `ItemUpdate` it would publish.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { WebSocket } from 'ws';
import { createFanout, type Fanout } from '../../consumers/viewers/fanout.js';
import type { PostPolicy } from '../../consumers/viewers/post.js';
import { createWebSocketHandlers } from '../../consumers/viewers/handler.js';
import { type DynamoFaultProxy, startDynamoFaultProxy } from '../../local/dynamodb-faults.js';
import { type RunningEmulator, startDynamo } from '../../local/emulators.js';
import { ensureTable } from '../../local/resources.js';
import { startWebSocketGateway, type WebSocketGateway } from '../../local/websocket-gateway.js';
import { issueToken } from '../../shared/auth.js';
import { type AwsClients, createAwsClients } from '../../shared/aws-clients.js';
import { type Config, loadConfig } from '../../shared/config.js';
import type { ErrorInfo, Usage } from '../../shared/contracts/chunk-record.js';
import { ServerMessage } from '../../shared/contracts/websocket.js';
import type { ItemUpdate } from '../../shared/delivery.js';
import { ENV } from '../../shared/env.js';
import { ItemHead, textKeys } from '../../shared/items.js';
import { TABLES, TENANT_STATUS_ATTRIBUTE } from '../../shared/tables.js';
import { DEFAULT_TENANT, tenantStatusKey } from '../../shared/tenancy.js';
import { createLogger, createMetrics } from '../../shared/telemetry.js';

process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

export const SECRET = 'websocket-test-secret-of-at-least-32-chars';

/** Resolves when `condition` holds, polling; fails with `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** `promise`, or a failure naming `what` after `timeoutMs`. */
export function within<T>(what: string, promise: Promise<T>, timeoutMs = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A `ws` viewer that records every message it receives. */
export class Viewer {
  /** The gateway's id of this connection (set by `DeliveryWorld.connect`). */
  connectionId = '';
  readonly socket: WebSocket;
  readonly messages: ServerMessage[] = [];
  /** Raw byte size of every message received. */
  readonly sizes: number[] = [];
  /** Messages that did not match the server message schema (e.g. API Gateway's own errors). */
  readonly other: unknown[] = [];
  closeCode: number | undefined;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
      this.socket.once('error', reject);
    });
    this.closed = new Promise((resolve) =>
      this.socket.once('close', (code) => {
        this.closeCode = code;
        resolve(code);
      }),
    );
    this.socket.on('message', (data: Buffer) => {
      this.sizes.push(data.length);
      const json: unknown = JSON.parse(data.toString('utf8'));
      const parsed = ServerMessage.safeParse(json);
      if (parsed.success) this.messages.push(parsed.data);
      else this.other.push(json);
    });
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  get open(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Waits for a message matching `predicate` (already received or still to come). */
  async next<T extends ServerMessage['type']>(
    type: T,
    predicate: (m: Extract<ServerMessage, { type: T }>) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<Extract<ServerMessage, { type: T }>> {
    let found: Extract<ServerMessage, { type: T }> | undefined;
    await waitUntil(
      `a ${type} message arrives`,
      () => {
        found = this.messages.find(
          (m): m is Extract<ServerMessage, { type: T }> =>
            m.type === type && predicate(m as Extract<ServerMessage, { type: T }>),
        );
        return found !== undefined;
      },
      timeoutMs,
    );
    return found as Extract<ServerMessage, { type: T }>;
  }

  close(): Promise<number> {
    this.socket.close();
    return this.closed;
  }
}

export interface BatchInput {
  readonly attempt?: number;
  /** One delta record per string. */
  readonly texts?: readonly string[];
  /** Ends the attempt with an end record. */
  readonly end?: { readonly usage: Usage; readonly costUsd?: number };
  /** Ends the attempt with an error record; `final` fails the item. */
  readonly error?: { readonly error: ErrorInfo; readonly final: boolean };
}

/**
 * Applies batches to head rows (one conditional write per batch, as the consumer does) and seals
 * text into the text table past `sealAboveChars`, so snapshots read parts too.
 */
export class ItemWriter {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly config: Config,
    private readonly sealAboveChars = 2_000,
  ) {}

  async head(itemId: string): Promise<ItemHead | undefined> {
    const { Item } = await this.dynamo.send(
      new GetCommand({ TableName: this.config.tables.items, Key: { itemId }, ConsistentRead: true }),
    );
    return Item ? ItemHead.parse(Item) : undefined;
  }

  /** The head row a producer's claim leaves: queued, attempt 0 (of the `default` tenant unless told). */
  async create(itemId: string, tenant?: string): Promise<void> {
    await this.dynamo.send(
      new PutCommand({
        TableName: this.config.tables.items,
        Item: {
          itemId,
          ...(tenant !== undefined ? { tenant } : {}),
          // The list index's key, as every write that sets the status writes it.
          [TENANT_STATUS_ATTRIBUTE]: tenantStatusKey(tenant ?? DEFAULT_TENANT, 'queued', itemId),
          status: 'queued',
          version: 0,
          modelId: 'test-model',
          createdAt: new Date().toISOString(),
        },
        ConditionExpression: 'attribute_not_exists(itemId)',
      }),
    );
  }

  /** Applies one batch of an item's records; returns what the consumer would publish. */
  async apply(itemId: string, batch: BatchInput): Promise<ItemUpdate> {
    const head = await this.head(itemId);
    if (!head) throw new Error(`no head row for ${itemId}: call create() first`);
    const attempt = batch.attempt ?? Math.max(1, head.attempt);
    const reset = attempt > head.attempt;
    const texts = batch.texts ?? [];
    const fromSeq = reset ? 0 : head.nextSeq;
    const records = texts.length + (batch.end || batch.error ? 1 : 0);
    if (records === 0) throw new Error('a batch needs at least one record');
    const added = texts.join('');
    let text = (reset ? '' : head.text) + added;
    let parts = reset ? 0 : head.parts;
    while (text.length > this.sealAboveChars) {
      let cut = this.sealAboveChars;
      const unit = text.charCodeAt(cut - 1);
      if (unit >= 0xd800 && unit <= 0xdbff) cut--;
      await this.dynamo.send(
        new PutCommand({
          TableName: this.config.tables.text,
          Item: { itemId, key: textKeys.part(attempt, parts), text: text.slice(0, cut) },
        }),
      );
      parts++;
      text = text.slice(cut);
    }
    const status = batch.end ? 'completed' : batch.error?.final ? 'failed' : 'streaming';
    const next: Record<string, unknown> = {
      ...head,
      status,
      [TENANT_STATUS_ATTRIBUTE]: tenantStatusKey(head.tenant, status, itemId),
      version: head.version + 1,
      attempt,
      claimedAttempt: Math.max(head.claimedAttempt, attempt),
      nextSeq: fromSeq + records,
      text,
      parts,
      usage: batch.end?.usage ?? null,
      costUsd: batch.end?.costUsd ?? null,
      error: batch.error?.final ? batch.error.error : null,
    };
    await this.dynamo.send(
      new PutCommand({
        TableName: this.config.tables.items,
        Item: next,
        ConditionExpression: 'version = :v',
        ExpressionAttributeValues: { ':v': head.version },
      }),
    );
    return {
      itemId,
      tenant: head.tenant,
      attempt,
      reset,
      fromSeq,
      toSeq: fromSeq + records - 1,
      text: added,
      status,
      ...(batch.end ? { usage: batch.end.usage, costUsd: batch.end.costUsd } : {}),
      ...(batch.error?.final ? { error: batch.error.error } : {}),
    };
  }
}

export interface DeliveryWorld {
  readonly dynalite: RunningEmulator;
  readonly config: Config;
  readonly clients: AwsClients;
  readonly dynamo: DynamoDBDocumentClient;
  readonly gateway: WebSocketGateway;
  readonly fanout: Fanout;
  readonly items: ItemWriter;
  readonly token: string;
  /** In front of dynalite for the WebSocket handlers only, when started with `dynamodbFaults`. */
  readonly dynamodbFaults: DynamoFaultProxy | undefined;
  /** A connected viewer (with `token`, or without any when `null`), knowing its connection id. */
  connect(token?: string | null): Promise<Viewer>;
  /** Closes a viewer and waits until `$disconnect` has removed its rows. */
  disconnect(viewer: Viewer): Promise<void>;
  /** Rows of the connections table under partition key `pk`. */
  rows(pk: string): Promise<Array<Record<string, unknown>>>;
  stop(): Promise<void>;
}

/** Starts dynalite, the tables, the handlers behind the gateway and a fan-out through it. */
export async function startDeliveryWorld(
  options: { env?: Record<string, string>; postPolicy?: PostPolicy; dynamodbFaults?: boolean } = {},
): Promise<DeliveryWorld> {
  const dynalite = await startDynamo();
  const dynamodbFaults = options.dynamodbFaults
    ? await startDynamoFaultProxy({ target: dynalite.endpoint })
    : undefined;
  const env = {
    [ENV.dynamodbEndpoint]: dynalite.endpoint,
    [ENV.authSecret]: SECRET,
    // Tests connect many viewers with one token; the limit's own test sets it low.
    [ENV.maxConnectionsPerSubject]: '10000',
    ...options.env,
  };
  const config = loadConfig(env);
  const raw = new DynamoDBClient({ region: config.region, endpoint: dynalite.endpoint });
  await Promise.all([
    ensureTable(raw, config.tables.items, TABLES.items),
    ensureTable(raw, config.tables.text, TABLES.text),
    ensureTable(raw, config.tables.connections, TABLES.connections),
    ensureTable(raw, config.tables.coordination, TABLES.coordination),
  ]);
  raw.destroy();
  const clients = createAwsClients(config);
  const deps = (name: string) => ({
    logger: createLogger(name),
    metrics: createMetrics(name),
    ...(options.postPolicy ? { postPolicy: options.postPolicy } : {}),
  });
  const handlerConfig = dynamodbFaults
    ? loadConfig({ ...env, [ENV.dynamodbEndpoint]: dynamodbFaults.endpoint })
    : config;
  const handlerClients = dynamodbFaults ? createAwsClients(handlerConfig) : clients;
  const gateway = await startWebSocketGateway({
    handlers: createWebSocketHandlers({
      config: handlerConfig,
      clients: handlerClients,
      ...deps('websocket'),
    }),
    onError: () => {},
  });
  const deliveryConfig = loadConfig({
    ...env,
    [ENV.websocketManagementEndpoint]: gateway.managementEndpoint,
  });
  const deliveryClients = createAwsClients(deliveryConfig);
  const fanout = createFanout({ config: deliveryConfig, clients: deliveryClients, ...deps('fanout') });
  const token = await issueToken(SECRET, {
    subject: 'viewer',
    tenant: '*',
    scopes: ['admin'],
    ttlSeconds: 3600,
  });
  const viewers: Viewer[] = [];
  let opening: Promise<unknown> = Promise.resolve();
  return {
    dynalite,
    config,
    clients,
    dynamo: clients.dynamo,
    gateway,
    fanout,
    items: new ItemWriter(clients.dynamo, config),
    token,
    dynamodbFaults,
    connect(withToken = token) {
      // One at a time, so the connection id that appears is this viewer's.
      const next = opening.then(async () => {
        const before = new Set(gateway.connectionIds());
        const viewer = new Viewer(withToken === null ? gateway.url : `${gateway.url}?token=${withToken}`);
        viewers.push(viewer);
        await viewer.opened;
        viewer.connectionId = gateway.connectionIds().find((id) => !before.has(id)) ?? '';
        return viewer;
      });
      opening = next.catch(() => {});
      return next;
    },
    async disconnect(viewer) {
      await viewer.close();
      await waitUntil(`the rows of ${viewer.connectionId} are removed`, async () => {
        const { Items = [] } = await clients.dynamo.send(
          new QueryCommand({
            TableName: config.tables.connections,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': `conn#${viewer.connectionId}` },
            ConsistentRead: true,
          }),
        );
        return Items.length === 0;
      });
    },
    async rows(pk) {
      const { Items = [] } = await clients.dynamo.send(
        new QueryCommand({
          TableName: config.tables.connections,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': pk },
          ConsistentRead: true,
        }),
      );
      return Items;
    },
    async stop() {
      for (const viewer of viewers) viewer.socket.terminate();
      await gateway.stop();
      clients.dynamo.destroy();
      deliveryClients.dynamo.destroy();
      if (handlerClients !== clients) handlerClients.dynamo.destroy();
      await dynamodbFaults?.stop();
      await dynalite.stop();
    },
  };
}
