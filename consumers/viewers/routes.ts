import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { AuthError, type TokenVerifier } from '../../shared/auth.js';
import type { AwsClients } from '../../shared/aws-clients.js';
import type { Config } from '../../shared/config.js';
import type { ClientMessage, ErrorCode } from '../../shared/contracts/websocket.js';
import { describe } from '../../shared/errors.js';
import { readFullText, readItemHead } from '../../shared/items.js';
import { type Logger, type Metrics, MetricUnit } from '../../shared/telemetry.js';
import { coversTenant, mayCancelAny, mayReadAny, type Principal } from '../../shared/tenancy.js';
import { createTokenVerifier } from '../../shared/token-verifier.js';
import { encodeFrame, snapshotFrames } from './framing.js';
import { DEFAULT_POST_POLICY, type PostPolicy, postFrames } from './post.js';
import { requestCancel } from './cancel.js';
import { parseClientMessage } from './client-message.js';
import {
  type ConnectionStore,
  connectionKeys,
  createConnectionStore,
  type StoredConnection,
} from './connection-store.js';
import { managementEndpointOf, parseWebSocketEvent, type WebSocketEvent } from './event.js';
import { planSnapshot } from './snapshot.js';

/** What the route handlers need, built once per cold start. */
export interface WebSocketDeps {
  readonly config: Config;
  readonly clients: Pick<AwsClients, 'dynamo' | 'management' | 'secrets'>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Default: the one the configuration asks for (`createTokenVerifier`). */
  readonly verifier?: TokenVerifier;
  /** How replies are posted; default `DEFAULT_POST_POLICY`. */
  readonly postPolicy?: PostPolicy;
}

/** A route; `remainingMs` is the time the invocation has left (Lambda's `getRemainingTimeInMillis`). */
type Route = (
  event: APIGatewayProxyWebsocketEventV2,
  remainingMs?: number,
) => Promise<APIGatewayProxyResultV2>;

/** The three integrations of the WebSocket API. */
export interface WebSocketHandlers {
  /** `$connect`: 200 with a valid `?token=`, 401 otherwise (API Gateway then refuses the upgrade). */
  readonly connect: Route;
  /**
   * `$disconnect`: removes the connection and its subscriptions, batches in parallel; given the
   * time left, it stops starting batches shortly before it runs out and leaves the rest to TTL.
   */
  readonly disconnect: Route;
  /** `subscribe`, `unsubscribe`, `cancel` and `$default`: answers bad messages with `error`. */
  readonly message: Route;
}

const status = (statusCode: number, body = ''): APIGatewayProxyResultV2 => ({ statusCode, body });

/** Time `$disconnect` keeps in hand after its last delete batch starts (one batch, with retries). */
const DISCONNECT_MARGIN_MS = 1_500;
/**
 * The client message rate is averaged over windows this long, so a reconnecting client may
 * resubscribe its items (up to the subscription limit) in one burst.
 */
export const RATE_WINDOW_SECONDS = 5;

/**
 * The one answer to a subscribe for an unknown item and for another tenant's: the two must read the
 * same. An item exists from its producer's claim (status `queued`) on, so a client that subscribes
 * before that asks again (the client library does, with backoff).
 */
const notFoundMessage = (itemId: string) => `cannot subscribe to ${itemId}: no such item (yet)`;

const rateLimitMessage = (config: Config) =>
  `more than ${config.delivery.clientMessagesPerSecond} messages a second (over ${RATE_WINDOW_SECONDS} s): ` +
  `messages are dropped until the next ${RATE_WINDOW_SECONDS}-second window`;

/** The principal a stored connection speaks for. */
const principalOf = (viewer: StoredConnection): Principal => ({
  subject: viewer.subject,
  tenant: viewer.tenant,
  scopes: new Set(viewer.scopes),
  expiresAt: viewer.tokenExpiresAt,
});

/** Subscription rows carry the viewer's tenant and die with its token. */
const subscribeOptions = (viewer: StoredConnection) => ({
  tenant: viewer.tenant,
  until: viewer.tokenExpiresAt,
});

/**
 * Builds the route handlers. Replies (snapshots, errors) are posted through the management API of
 * the stage the event came through; a reply to a connection that is already gone removes it.
 */
export function createWebSocketHandlers(deps: WebSocketDeps): WebSocketHandlers {
  const { config, clients, logger, metrics } = deps;
  const policy = deps.postPolicy ?? DEFAULT_POST_POLICY;
  const verifier = deps.verifier ?? createTokenVerifier(config.auth, clients.secrets);
  const store: ConnectionStore = createConnectionStore({
    dynamo: clients.dynamo,
    table: config.tables.connections,
    ttlSeconds: config.delivery.connectionTtlSeconds,
  });
  const count = (name: string, value = 1) => metrics.addMetric(name, MetricUnit.Count, value);

  const reply = async (event: WebSocketEvent, frames: readonly string[]): Promise<void> => {
    const { connectionId } = event.requestContext;
    const client = clients.management(managementEndpointOf(event, config.endpoints.websocketManagement));
    const outcome = await postFrames(client, connectionId, frames, policy, {
      onCall: () => count('PostToConnection'),
      onFailure: (id, err) => logger.warn('reply not delivered', { connectionId: id, error: describe(err) }),
    });
    if (outcome === 'gone') {
      count('GoneConnections');
      await store.removeConnection(connectionId);
    }
  };

  const replyError = (event: WebSocketEvent, code: ErrorCode, message: string, itemId?: string) => {
    count('ClientMessageErrors');
    return reply(event, [encodeFrame({ type: 'error', code, message, ...(itemId ? { itemId } : {}) })]);
  };

  /**
   * Subscribes to one item and sends its snapshot. An unknown item and another tenant's get the same
   * `not_found`, and their subscription is removed again: nothing is kept for an item that does not
   * exist (yet), and nothing tells the two apart.
   */
  const subscribeItem = async (
    event: WebSocketEvent,
    viewer: StoredConnection,
    message: Extract<ClientMessage, { action: 'subscribe'; itemId: string }>,
  ): Promise<void> => {
    const { itemId } = message;
    const { connectionId } = event.requestContext;
    // Subscription first, snapshot second: a batch applied after the read is fanned out to
    // this connection, one applied before it is in the snapshot (see README: racing deltas).
    // The row carries the viewer's tenant, so the fan-out never sends it another tenant's item
    // even in the moment before the read below removes it again.
    await store.subscribe(connectionId, { itemId }, subscribeOptions(viewer));
    const stored = await readItemHead(clients.dynamo, config.tables, itemId);
    if (!stored || !coversTenant(viewer, stored.tenant)) {
      await store.unsubscribe(connectionId, { itemId });
      count('SubscribesNotFound');
      return replyError(event, 'not_found', notFoundMessage(itemId), itemId);
    }
    const text = await readFullText(clients.dynamo, config.tables, stored);
    const snapshot = planSnapshot(itemId, stored, text, message);
    count('Snapshots');
    if (snapshot.offset !== undefined) count('ResumedSnapshots');
    await reply(event, snapshotFrames(snapshot));
  };

  const cancel = async (event: WebSocketEvent, viewer: StoredConnection, itemId: string) => {
    const outcome = await requestCancel(clients.dynamo, config.tables, itemId, viewer.tenant);
    if (outcome.ok) {
      count('CancelRequests');
      logger.info('cancel requested', { itemId, connectionId: event.requestContext.connectionId });
    } else await replyError(event, outcome.code, outcome.error, itemId);
  };

  /** Whether one more subscription (not held yet) would pass the per-connection limit. */
  const overSubscriptionLimit = async (connectionId: string, message: ClientMessage): Promise<boolean> => {
    const held = await store.subscriptionsHeld(connectionId);
    const key = connectionKeys.watches(
      connectionId,
      'itemId' in message ? { itemId: message.itemId } : 'all',
    ).sk;
    return !held.has(key) && held.size >= config.delivery.maxSubscriptionsPerConnection;
  };

  const handle = async (event: WebSocketEvent, viewer: StoredConnection, message: ClientMessage) => {
    const { connectionId } = event.requestContext;
    const principal = principalOf(viewer);
    const itemId = 'itemId' in message ? message.itemId : undefined;
    switch (message.action) {
      case 'subscribe':
        if (!mayReadAny(principal))
          return replyError(
            event,
            'forbidden',
            'the token does not grant read (scope read or admin)',
            itemId,
          );
        if (await overSubscriptionLimit(connectionId, message)) {
          const limit = config.delivery.maxSubscriptionsPerConnection;
          return replyError(
            event,
            'too_many_subscriptions',
            `a connection may hold at most ${limit} subscriptions: unsubscribe from one first`,
            itemId,
          );
        }
        if ('all' in message) {
          // Every item of the token's tenant (`*`, only with admin: every tenant).
          await store.subscribe(connectionId, 'all', {
            ...subscribeOptions(viewer),
            batch: message.batch === true,
          });
          return;
        }
        return subscribeItem(event, viewer, message);
      case 'unsubscribe':
        await store.unsubscribe(connectionId, 'all' in message ? 'all' : { itemId: message.itemId });
        return;
      case 'cancel':
        if (!mayCancelAny(principal))
          return replyError(
            event,
            'forbidden',
            'the token does not grant cancel (scope cancel or admin)',
            itemId,
          );
        return cancel(event, viewer, message.itemId);
    }
  };

  /**
   * An unknown connection, or one whose token expired: told so, nothing else. Its rows (expired by
   * their TTL) receive nothing; the fan-out closes the connection at the first batch it would have
   * reached, and API Gateway's idle timeout closes one that receives nothing. This function's
   * management access is POST only, so it does not close connections itself.
   */
  const refuse = async (event: WebSocketEvent): Promise<void> => {
    count('ExpiredConnectionMessages');
    await replyError(
      event,
      'token_expired',
      'the token of this connection has expired: reconnect with a valid token',
    );
  };

  /**
   * Tells a client its message failed on our side (`unavailable`) and that sending it again may
   * work. The cause stays in the log. Best effort: the route fails with the cause either way.
   */
  const replyTryAgain = async (event: WebSocketEvent, parsed: ReturnType<typeof parseClientMessage>) => {
    const message = parsed.ok ? parsed.message : undefined;
    const itemId = message && 'itemId' in message ? message.itemId : parsed.ok ? undefined : parsed.itemId;
    const what = message ? `${message.action} failed` : 'the message could not be taken';
    await replyError(event, 'unavailable', `${what}; try again`, itemId).catch(() => {});
  };

  /** Runs a route, flushing its metrics; a malformed event is a 400, anything unexpected a 500. */
  const route =
    (
      name: string,
      body: (event: WebSocketEvent, remainingMs?: number) => Promise<APIGatewayProxyResultV2>,
    ): Route =>
    async (raw, remainingMs) => {
      try {
        return await body(parseWebSocketEvent(raw), remainingMs);
      } catch (err) {
        logger.error(`${name} failed`, { error: describe(err), cause: err });
        count(`${name}Errors`);
        return status(500, 'Internal server error');
      } finally {
        if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
      }
    };

  return {
    connect: route('Connect', async (event) => {
      const { connectionId, connectedAt } = event.requestContext;
      try {
        const principal = await verifier.verify(event.queryStringParameters?.token);
        const limit = config.delivery.maxConnectionsPerSubject;
        if ((await store.connectionsOf(principal.subject)) >= limit) {
          count('ConnectionsRefused');
          logger.info('connection refused: too many', { connectionId, subject: principal.subject });
          return status(
            429,
            `too_many_connections: the token's subject already has ${limit} open connections`,
          );
        }
        await store.putConnection({
          connectionId,
          subject: principal.subject,
          tenant: principal.tenant,
          scopes: [...principal.scopes],
          tokenExpiresAt: principal.expiresAt,
          connectedAtMs: connectedAt ?? Date.now(),
        });
        count('Connections');
        return status(200);
      } catch (err) {
        if (!(err instanceof AuthError)) throw err;
        count('ConnectionsRefused');
        logger.info('connection refused', { connectionId, reason: err.message });
        return status(401, err.message);
      }
    }),

    disconnect: route('Disconnect', async (event, remainingMs) => {
      const { connectionId } = event.requestContext;
      const { removed, left } = await store.removeConnection(connectionId, {
        deadlineMs: remainingMs === undefined ? undefined : Date.now() + remainingMs - DISCONNECT_MARGIN_MS,
      });
      if (left > 0) {
        count('DisconnectRowsLeft', left);
        logger.warn('connection rows left for TTL: the function ran out of time', {
          connectionId,
          removed,
          left,
        });
      }
      count('Disconnections');
      logger.debug('connection removed', { connectionId, rows: removed });
      return status(200);
    }),

    message: route('Message', async (event) => {
      count('ClientMessages');
      // The connection row holds what `$connect` verified and dies with the token (its TTL); one
      // conditional update counts the message in the connection's rate window and returns it.
      const admitted = await store
        .admitMessage(event.requestContext.connectionId, RATE_WINDOW_SECONDS)
        .catch(async (err: unknown) => {
          // Not even counted: answered as a failed handling is, or the client would hear nothing.
          await replyTryAgain(event, parseClientMessage(event.body, event.isBase64Encoded));
          throw err;
        });
      if (!admitted || admitted.connection.tokenExpiresAt * 1000 <= Date.now()) {
        await refuse(event);
        return status(200);
      }
      const viewer = admitted.connection;
      const allowed = config.delivery.clientMessagesPerSecond * RATE_WINDOW_SECONDS;
      if (admitted.count > allowed) {
        count('RateLimitedMessages');
        // Told once per window; what follows in the same window is dropped.
        if (admitted.count === allowed + 1) await replyError(event, 'rate_limited', rateLimitMessage(config));
        return status(200);
      }
      const parsed = parseClientMessage(event.body, event.isBase64Encoded);
      if (!parsed.ok) {
        await replyError(event, 'invalid_message', parsed.error, parsed.itemId);
        return status(200);
      }
      try {
        await handle(event, viewer, parsed.message);
      } catch (err) {
        await replyTryAgain(event, parsed);
        throw err;
      }
      return status(200);
    }),
  };
}
