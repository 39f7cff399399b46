import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { AuthError, type TokenVerifier } from '../../shared/auth.js';
import type { AwsClients } from '../../shared/aws-clients.js';
import type { Config } from '../../shared/config.js';
import type { ClientMessage } from '../../shared/contracts/websocket.js';
import { describe } from '../../shared/errors.js';
import { readFullText, readItemHead } from '../../shared/items.js';
import { type Logger, type Metrics, MetricUnit } from '../../shared/telemetry.js';
import { createTokenVerifier } from '../../shared/token-verifier.js';
import { encodeFrame, snapshotFrames } from './framing.js';
import { DEFAULT_POST_POLICY, type PostPolicy, postFrames } from './post.js';
import { requestCancel } from './cancel.js';
import { parseClientMessage } from './client-message.js';
import { type ConnectionStore, createConnectionStore } from './connection-store.js';
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

type Route = (event: APIGatewayProxyWebsocketEventV2) => Promise<APIGatewayProxyResultV2>;

/** The three integrations of the WebSocket API. */
export interface WebSocketHandlers {
  /** `$connect`: 200 with a valid `?token=`, 401 otherwise (API Gateway then refuses the upgrade). */
  readonly connect: Route;
  /** `$disconnect`: removes the connection and its subscriptions. */
  readonly disconnect: Route;
  /** `subscribe`, `unsubscribe`, `cancel` and `$default`: answers bad messages with `error`. */
  readonly message: Route;
}

const status = (statusCode: number, body = ''): APIGatewayProxyResultV2 => ({ statusCode, body });

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

  const replyError = (event: WebSocketEvent, message: string, itemId?: string) => {
    count('ClientMessageErrors');
    return reply(event, [encodeFrame({ type: 'error', message, ...(itemId ? { itemId } : {}) })]);
  };

  const handle = async (event: WebSocketEvent, message: ClientMessage): Promise<void> => {
    const { connectionId } = event.requestContext;
    switch (message.action) {
      case 'subscribe': {
        if ('all' in message) {
          await store.subscribe(connectionId, 'all', { batch: message.batch === true });
          return;
        }
        const { itemId } = message;
        // Subscription first, snapshot second: a batch applied after the read is fanned out to
        // this connection, one applied before it is in the snapshot (see README: racing deltas).
        await store.subscribe(connectionId, { itemId });
        const head = await readItemHead(clients.dynamo, config.tables, itemId);
        const text = head ? await readFullText(clients.dynamo, config.tables, head) : '';
        const snapshot = planSnapshot(itemId, head, text, message);
        count('Snapshots');
        if (snapshot.offset !== undefined) count('ResumedSnapshots');
        await reply(event, snapshotFrames(snapshot));
        return;
      }
      case 'unsubscribe':
        await store.unsubscribe(connectionId, 'all' in message ? 'all' : { itemId: message.itemId });
        return;
      case 'cancel': {
        const outcome = await requestCancel(clients.dynamo, config.tables, message.itemId);
        if (outcome.ok) {
          count('CancelRequests');
          logger.info('cancel requested', { itemId: message.itemId, connectionId });
        } else await replyError(event, outcome.error, message.itemId);
        return;
      }
    }
  };

  /** Runs a route, flushing its metrics; a malformed event is a 400, anything unexpected a 500. */
  const route =
    (name: string, body: (event: WebSocketEvent) => Promise<APIGatewayProxyResultV2>): Route =>
    async (raw) => {
      try {
        return await body(parseWebSocketEvent(raw));
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
        const { subject } = await verifier.verify(event.queryStringParameters?.token);
        await store.putConnection({ connectionId, subject, connectedAtMs: connectedAt ?? Date.now() });
        count('Connections');
        return status(200);
      } catch (err) {
        if (!(err instanceof AuthError)) throw err;
        count('ConnectionsRefused');
        logger.info('connection refused', { connectionId, reason: err.message });
        return status(401, err.message);
      }
    }),

    disconnect: route('Disconnect', async (event) => {
      const { connectionId } = event.requestContext;
      const rows = await store.removeConnection(connectionId);
      count('Disconnections');
      logger.debug('connection removed', { connectionId, rows });
      return status(200);
    }),

    message: route('Message', async (event) => {
      count('ClientMessages');
      const parsed = parseClientMessage(event.body, event.isBase64Encoded);
      if (!parsed.ok) {
        await replyError(event, parsed.error, parsed.itemId);
        return status(200);
      }
      try {
        await handle(event, parsed.message);
      } catch (err) {
        const itemId = 'itemId' in parsed.message ? parsed.message.itemId : undefined;
        // The cause stays in the log: clients learn only that trying again may help.
        await replyError(event, `${parsed.message.action} failed; try again`, itemId).catch(() => {});
        throw err;
      }
      return status(200);
    }),
  };
}
