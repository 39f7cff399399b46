import { DeleteConnectionCommand } from '@aws-sdk/client-apigatewaymanagementapi';
import { defaultIfEmpty, from, lastValueFrom, mergeMap, toArray } from 'rxjs';
import type { AwsClients } from '../../shared/aws-clients.js';
import { type Config, required } from '../../shared/config.js';
import type { ItemUpdate, UpdatePublisher } from '../../shared/delivery.js';
import { ENV } from '../../shared/env.js';
import { describe } from '../../shared/errors.js';
import { type ItemLogKeys, itemKeys, type Logger, type Metrics, MetricUnit } from '../../shared/telemetry.js';
import { coversTenant, DEFAULT_TENANT } from '../../shared/tenancy.js';
import { createConnectionStore, type Subscription } from './connection-store.js';
import { packBatchFrames, updateFrames } from './framing.js';
import { DEFAULT_POST_POLICY, type PostPolicy, postFrames } from './post.js';

/** What the fan-out needs; `config.endpoints.websocketManagement` is required. */
export interface FanoutDeps {
  readonly config: Config;
  readonly clients: Pick<AwsClients, 'dynamo' | 'management'>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Retry and deadline of each delivery; default `DEFAULT_POST_POLICY`. */
  readonly postPolicy?: PostPolicy;
}

/** Running totals since the publisher was created (what the local stack and benchmarks report). */
export interface FanoutStats {
  /** `publish` calls with at least one update. */
  readonly batches: number;
  readonly updates: number;
  /** One per (connection, item) with something to send. */
  readonly deliveries: number;
  /** `PostToConnection` calls, retries included. */
  readonly posts: number;
  /** Frames that reached their connection. */
  readonly framesSent: number;
  /** Retries after a throttled or transient failure. */
  readonly retries: number;
  /** Deliveries given up (not counting gone connections). */
  readonly failedDeliveries: number;
  /** Connections found gone (410) and removed. */
  readonly goneConnections: number;
  /**
   * Connections dropped from a batch and closed, so they resume through a snapshot: the batch's
   * budget ran out before they were served, or their delivery was given up.
   */
  readonly droppedConnections: number;
  /** Connections met with an expired subscription (their token expired): closed and removed, sent nothing. */
  readonly expiredConnections: number;
}

/** How one batch's fan-out ended for its connections. */
interface BatchEnd {
  /** Aborts when the batch's time budget (`FANOUT_BUDGET_MS`) is spent. */
  readonly budget: AbortSignal;
  readonly gone: Set<string>;
  /**
   * Connections that missed frames of the batch: the budget cut their delivery off or it never
   * started, or it was given up. A missed `done` or last delta shows no gap, so they are closed.
   */
  readonly dropped: Set<string>;
  /** Connections whose subscription rows expired (their token's `exp` passed): to close. */
  readonly expired: Set<string>;
}

/** An `UpdatePublisher` that also reports what it did. */
export interface Fanout extends UpdatePublisher {
  stats(): FanoutStats;
}

interface Delivery {
  readonly connectionId: string;
  /** The item whose frames these are (`*` for a dashboard's `batch` frames), with its log keys. */
  readonly item: ItemLogKeys;
  readonly frames: readonly string[];
}

/** One consumer batch's items: their frames, log keys and tenants, and which of them finished. */
interface BatchItems {
  readonly framesByItem: Map<string, string[]>;
  readonly keysByItem: Map<string, ItemLogKeys>;
  readonly tenantByItem: Map<string, string>;
  readonly finished: Set<string>;
}

/**
 * Whether a subscription may receive an item of `tenant`: its tenant is the item's, or `*`. A row
 * without a tenant (written before tenancy) receives nothing.
 */
export function receives(
  subscription: Pick<Subscription, 'tenant'> & Partial<Pick<Subscription, 'expired'>>,
  tenant: string,
): boolean {
  return (
    subscription.expired !== true &&
    subscription.tenant !== undefined &&
    coversTenant({ tenant: subscription.tenant }, tenant)
  );
}

/** How long closing a connection dropped from a batch may take. */
const DROP_TIMEOUT_MS = 500;

/**
 * Pushes what each consumer batch applied to every viewer of the items, through the WebSocket
 * management API (`config.endpoints.websocketManagement`, the stage's callback URL).
 *
 * Per `publish`: the every-item subscribers are looked up once, each item's subscribers once
 * (key lookups); each subscriber of an item gets one delivery with that item's frames for the
 * batch, in order (`reset`, one coalesced `delta`, `done` / `failed`). Deliveries run with
 * `fanoutConcurrency` in flight; each is bounded by the post policy's deadline, so a slow or dead
 * connection holds one slot for at most that long. The whole batch has a time budget
 * (`config.delivery.fanoutBudgetMs`): a connection not served by then is dropped from the batch
 * and closed, so its client reconnects and resumes from a snapshot, and the consumer moves on to
 * the next batch. A delivery given up (throttled past its retries, past its deadline) closes its
 * connection the same way: the frames it missed may be an item's last, which no later gap would
 * show. Dashboards subscribed with `batch` get one delivery of packed `batch` frames per consumer
 * batch. A 410 removes the connection and its subscriptions and is never retried. `publish` never
 * rejects: a viewer's failure must not fail the Kinesis batch.
 */
export function createFanout(deps: FanoutDeps): Fanout {
  const { config, clients, logger, metrics } = deps;
  const policy = deps.postPolicy ?? DEFAULT_POST_POLICY;
  const concurrency = config.delivery.fanoutConcurrency;
  const endpoint = required(config.endpoints.websocketManagement, ENV.websocketManagementEndpoint);
  const management = clients.management(endpoint);
  const store = createConnectionStore({
    dynamo: clients.dynamo,
    table: config.tables.connections,
    ttlSeconds: config.delivery.connectionTtlSeconds,
  });
  const totals = {
    batches: 0,
    updates: 0,
    deliveries: 0,
    posts: 0,
    framesSent: 0,
    retries: 0,
    failedDeliveries: 0,
    goneConnections: 0,
    droppedConnections: 0,
    expiredConnections: 0,
  };
  const count = (name: keyof typeof totals, metric: string, value = 1) => {
    totals[name] += value;
    if (value > 0) metrics.addMetric(metric, MetricUnit.Count, value);
  };

  /** Subscribers of one item, or none when the lookup fails (its viewers resync on the next delta). */
  const subscribersOf = async (itemId: string): Promise<Subscription[]> => {
    try {
      return await store.subscriptionsOf({ itemId });
    } catch (err) {
      logger.error('subscriber lookup failed', { itemId, error: describe(err) });
      return [];
    }
  };

  const deliver = async (delivery: Delivery, ended: BatchEnd): Promise<void> => {
    if (ended.gone.has(delivery.connectionId)) return;
    if (ended.budget.aborted) {
      ended.dropped.add(delivery.connectionId);
      return;
    }
    let posted = 0;
    const outcome = await postFrames(
      management,
      delivery.connectionId,
      delivery.frames,
      policy,
      {
        onCall: () => {
          posted++;
          count('posts', 'PostToConnection');
        },
        onRetry: (connectionId, kind, delayMs) => {
          count('retries', 'PostToConnectionRetries');
          logger.debug('post retried', { connectionId, kind, delayMs });
        },
        onFailure: (connectionId, err) =>
          logger.warn('delivery given up', { connectionId, ...delivery.item, error: describe(err) }),
      },
      ended.budget,
    );
    if (outcome === 'sent') count('framesSent', 'FramesSent', delivery.frames.length);
    else if (outcome === 'gone') ended.gone.add(delivery.connectionId);
    else {
      if (!ended.budget.aborted) count('failedDeliveries', 'FailedDeliveries');
      ended.dropped.add(delivery.connectionId);
    }
    logger.debug('delivered', {
      connectionId: delivery.connectionId,
      ...delivery.item,
      frames: delivery.frames.length,
      posted,
      outcome,
    });
  };

  /**
   * Who gets what: one delivery per (item subscriber, item), one per `batch` dashboard. Every
   * subscription is filtered by the item's tenant: a viewer receives only items its token covers.
   */
  const planDeliveries = async (batch: BatchItems, expired: Set<string>): Promise<Delivery[]> => {
    const { framesByItem, keysByItem, tenantByItem, finished } = batch;
    const everyItem = await store.subscriptionsOf('all').catch((err: unknown): Subscription[] => {
      logger.error('every-item subscriber lookup failed', { error: describe(err) });
      return [];
    });
    const noteExpired = (subscriptions: readonly Subscription[]) => {
      for (const s of subscriptions) if (s.expired) expired.add(s.connectionId);
    };
    noteExpired(everyItem);
    const packed = new Set(everyItem.filter((s) => s.batch).map((s) => s.connectionId));
    const plain = everyItem.filter((s) => !s.batch);
    const lookups = await lastValueFrom(
      from([...framesByItem.keys()]).pipe(
        mergeMap(async (itemId) => ({ itemId, subscribers: await subscribersOf(itemId) }), concurrency),
        toArray(),
      ),
    );
    const deliveries: Delivery[] = lookups.flatMap(({ itemId, subscribers }) => {
      noteExpired(subscribers);
      const frames = framesByItem.get(itemId) ?? [];
      if (frames.length === 0) return [];
      const item = keysByItem.get(itemId) ?? { itemId };
      const tenant = tenantByItem.get(itemId) ?? DEFAULT_TENANT;
      const allowed = [...subscribers, ...plain]
        .filter((s) => receives(s, tenant))
        .map((s) => s.connectionId);
      const viewers = [...new Set(allowed)].filter((connectionId) => !packed.has(connectionId));
      // INFO once per item (its ending), DEBUG for every batch before it.
      const line = { ...item, viewers: viewers.length, packed: packed.size, frames: frames.length };
      if (finished.has(itemId)) logger.info('fanning out', line);
      else logger.debug('fanning out', line);
      return viewers.map((connectionId) => ({ connectionId, item, frames }));
    });
    // A `batch` dashboard gets all it covers in packed frames, even items it also watches one by
    // one; the frames are packed once per tenant among the dashboards.
    const dashboardsByTenant = new Map<string, string[]>();
    for (const s of everyItem) {
      if (!s.batch || s.tenant === undefined || s.expired) continue;
      dashboardsByTenant.set(s.tenant, [...(dashboardsByTenant.get(s.tenant) ?? []), s.connectionId]);
    }
    for (const [tenant, connections] of dashboardsByTenant) {
      const covered = [...framesByItem].filter(([itemId]) =>
        receives({ tenant }, tenantByItem.get(itemId) ?? DEFAULT_TENANT),
      );
      if (covered.length === 0) continue;
      const frames = packBatchFrames(covered.flatMap(([, itemFrames]) => itemFrames));
      for (const connectionId of connections)
        deliveries.push({ connectionId, item: { itemId: '*' }, frames });
    }
    return deliveries;
  };

  /** Closes a connection that missed frames of a batch, so its client reconnects and resumes from a snapshot. */
  const drop = async (connectionId: string): Promise<void> => {
    count('droppedConnections', 'DroppedConnections');
    try {
      await management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }), {
        abortSignal: AbortSignal.timeout(DROP_TIMEOUT_MS),
      });
    } catch (err) {
      // Gone already, or unreachable: its next delta or end shows the gap, or TTL removes it.
      logger.warn('closing a connection dropped from a batch failed', { connectionId, error: describe(err) });
    }
  };

  const publish = async (updates: readonly ItemUpdate[]): Promise<void> => {
    if (updates.length === 0) return;
    const ended: BatchEnd = {
      budget: AbortSignal.timeout(config.delivery.fanoutBudgetMs),
      gone: new Set(),
      dropped: new Set(),
      expired: new Set(),
    };
    count('batches', 'FanoutBatches');
    count('updates', 'FanoutUpdates', updates.length);
    // Several updates of one item in a batch reach each viewer in one delivery, in order.
    const batch: BatchItems = {
      framesByItem: new Map(),
      keysByItem: new Map(),
      tenantByItem: new Map(),
      finished: new Set(),
    };
    for (const update of updates) {
      const frames = batch.framesByItem.get(update.itemId) ?? [];
      frames.push(...updateFrames(update));
      batch.framesByItem.set(update.itemId, frames);
      batch.keysByItem.set(update.itemId, itemKeys(update));
      batch.tenantByItem.set(update.itemId, update.tenant);
      if (update.status === 'completed' || update.status === 'failed') batch.finished.add(update.itemId);
    }
    const deliveries = await planDeliveries(batch, ended.expired);
    count('deliveries', 'FanoutDeliveries', deliveries.length);
    await lastValueFrom(
      from(deliveries).pipe(
        mergeMap((delivery) => deliver(delivery, ended), concurrency),
        defaultIfEmpty(undefined),
      ),
    );
    const dropped = [...ended.dropped].filter((connectionId) => !ended.gone.has(connectionId));
    await lastValueFrom(
      from([
        ...[...ended.gone].map((id) => () => removeGone(id)),
        ...dropped.map((id) => () => drop(id)),
        ...[...ended.expired].map((id) => () => closeExpired(id)),
      ]).pipe(
        mergeMap((task) => task(), concurrency),
        defaultIfEmpty(undefined),
      ),
    );
  };

  /** A connection whose token expired: closed (the client learns it must reconnect) and removed. */
  const closeExpired = async (connectionId: string): Promise<void> => {
    count('expiredConnections', 'ExpiredConnections');
    try {
      await management.send(new DeleteConnectionCommand({ ConnectionId: connectionId }), {
        abortSignal: AbortSignal.timeout(DROP_TIMEOUT_MS),
      });
    } catch (err) {
      // Usually gone already (410): a dropped connection whose rows outlived it.
      logger.debug('closing an expired connection failed', { connectionId, error: describe(err) });
    }
    await store.removeConnection(connectionId).catch((err: unknown) => {
      logger.warn('removing an expired connection failed', { connectionId, error: describe(err) });
    });
  };

  const removeGone = async (connectionId: string): Promise<void> => {
    count('goneConnections', 'GoneConnections');
    try {
      await store.removeConnection(connectionId);
    } catch (err) {
      // Left to the next 410 or to TTL.
      logger.warn('removing a gone connection failed', { connectionId, error: describe(err) });
    }
  };

  return {
    async publish(updates) {
      try {
        await publish(updates);
      } catch (err) {
        logger.error('fan-out failed', { error: describe(err), updates: updates.length });
      }
    },
    stats: () => ({ ...totals }),
  };
}
