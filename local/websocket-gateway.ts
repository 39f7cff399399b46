import { createServer, type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { type WebSocket, WebSocketServer } from 'ws';
import { MAX_FRAME_BYTES, MAX_MESSAGE_BYTES } from '../shared/contracts/websocket.js';
import { describe } from '../shared/errors.js';
import { closeServer, listenOnLoopback } from './listen.js';
import {
  type ConnectionContext,
  connectEvent,
  disconnectEvent,
  messageEvent,
  newConnectionId,
  selectRoute,
} from './websocket-gateway/events.js';
import { FrameSizeGuard } from './websocket-gateway/frame-guard.js';
import {
  handleManagementRequest,
  isManagementPath,
  type LiveConnection,
  type ManagementApi,
  type ManagementStats,
  type PostFault,
} from './websocket-gateway/management-api.js';

type Route = (event: APIGatewayProxyWebsocketEventV2) => Promise<APIGatewayProxyResultV2>;

/** How to run the local stage. */
export interface WebSocketGatewayOptions {
  /** The integrations: `message` serves every route but `$connect` / `$disconnect`. */
  readonly handlers: { readonly connect: Route; readonly disconnect: Route; readonly message: Route };
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Stage name, the first path segment of both URLs. Default `local`. */
  readonly stage?: string;
  /** Route keys selected by `$request.body.action`. Default subscribe, unsubscribe, cancel. */
  readonly routes?: readonly string[];
  /** Closes a connection without traffic for this long (API Gateway: 10 minutes). */
  readonly idleTimeoutMs?: number;
  /** Closes every connection this long after it opened (API Gateway: 2 hours). */
  readonly maxConnectionMs?: number;
  /** Where integration failures are reported. Default: stderr. */
  readonly onError?: (what: string, err: unknown) => void;
}

/** Counters since the gateway started. */
export interface GatewayStats extends ManagementStats {
  /** Client messages passed to an integration. */
  readonly messages: number;
  /** Connections refused at `$connect`. */
  readonly refused: number;
  /** Connections closed with 1009 for a frame or message over API Gateway's limits. */
  readonly tooBig: number;
}

/** A running local API Gateway WebSocket stage. */
export interface WebSocketGateway {
  /** `ws://127.0.0.1:{port}/{stage}`: where clients connect (`?token=`). */
  readonly url: string;
  /** `http://127.0.0.1:{port}/{stage}`: the management API (the stage's callback URL). */
  readonly managementEndpoint: string;
  connectionCount(): number;
  connectionIds(): string[];
  /**
   * Drops a connection as a network failure would: no close handshake. With `notify: false`,
   * `$disconnect` is not called either (API Gateway does not guarantee it), so only a later 410 or
   * TTL removes the connection's rows.
   */
  dropConnection(connectionId: string, options?: { notify?: boolean }): Promise<void>;
  /** Makes posts to a connection throttled or slow (tests). */
  injectFault(connectionId: string, fault: PostFault): void;
  stats(): GatewayStats;
  stop(): Promise<void>;
}

const DEFAULT_ROUTES = ['subscribe', 'unsubscribe', 'cancel'];

const statusOf = (result: APIGatewayProxyResultV2): number =>
  typeof result === 'object' && result !== null && typeof result.statusCode === 'number'
    ? result.statusCode
    : 200;

/**
 * Starts a local stand-in for an API Gateway WebSocket API stage on loopback: a `ws` server that
 * invokes the same route handlers with API Gateway's event shapes and serves the management API
 * on the same port, so `ApiGatewayManagementApiClient` works unchanged.
 *
 * Mirrors API Gateway: `$connect` runs before the upgrade and a non-2xx answer refuses it with
 * that status; routes are selected by `$request.body.action` (else `$default`); a frame over
 * 32 KB or a message over 128 KB closes the connection with 1009; an integration that throws
 * makes the gateway send `{"message":"Internal server error",...}`; `$disconnect` follows every
 * close; idle and maximum connection times close with 1001.
 */
export async function startWebSocketGateway(options: WebSocketGatewayOptions): Promise<WebSocketGateway> {
  const { handlers } = options;
  const stage = options.stage ?? 'local';
  const routes = new Set(options.routes ?? DEFAULT_ROUTES);
  const idleTimeoutMs = options.idleTimeoutMs ?? 10 * 60 * 1000;
  const maxConnectionMs = options.maxConnectionMs ?? 2 * 60 * 60 * 1000;
  const onError =
    options.onError ??
    ((what: string, err: unknown) => process.stderr.write(`websocket gateway: ${what}: ${describe(err)}\n`));

  const api: ManagementApi = {
    stage,
    connections: new Map<string, LiveConnection>(),
    faults: new Map<string, PostFault>(),
    stats: {
      posts: 0,
      delivered: 0,
      deliveredBytes: 0,
      largestPostBytes: 0,
      oversizedPosts: 0,
      gone: 0,
      throttled: 0,
    },
  };
  const counts = { messages: 0, refused: 0, tooBig: 0 };
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(promise: Promise<T>): Promise<T> => {
    inFlight.add(promise);
    void promise.finally(() => inFlight.delete(promise)).catch(() => {});
    return promise;
  };
  let stopping = false;
  let domainName = '';

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    perMessageDeflate: false,
  });

  const server = createServer((req, res) => {
    if (req.url && isManagementPath(req.url)) {
      track(handleManagementRequest(api, req, res)).catch((err: unknown) => {
        onError('management API request failed', err);
        if (!res.headersSent) res.writeHead(500).end();
      });
      return;
    }
    res
      .writeHead(426, { 'content-type': 'text/plain' })
      .end('Upgrade Required: connect with a WebSocket client\n');
  });

  const refuse = (socket: Duplex, status: number) => {
    const reason = STATUS_CODES[status] ?? 'Error';
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    socket.destroy();
  };

  const open = (context: ConnectionContext, socket: WebSocket, raw: Duplex) => {
    const connection: LiveConnection = { context, socket, lastActiveAt: Date.now(), notifyDisconnect: true };
    api.connections.set(context.connectionId, connection);
    const guard = new FrameSizeGuard(MAX_FRAME_BYTES);
    let tooBig = false;
    const closeTooBig = () => {
      if (tooBig) return;
      tooBig = true;
      counts.tooBig++;
      socket.close(1009, 'Message too big');
    };
    // Runs before ws' own listener, so a frame is judged from its header before ws sees its payload.
    raw.prependListener('data', (chunk: Buffer) => {
      if (!tooBig && guard.feed(chunk) !== undefined) closeTooBig();
    });

    let idle = setTimeout(() => socket.close(1001, 'Going away'), idleTimeoutMs);
    idle.unref();
    const lifetime = setTimeout(() => socket.close(1001, 'Going away'), maxConnectionMs);
    lifetime.unref();

    socket.on('message', (data, isBinary) => {
      if (tooBig || stopping) return;
      connection.lastActiveAt = Date.now();
      clearTimeout(idle);
      idle = setTimeout(() => socket.close(1001, 'Going away'), idleTimeoutMs);
      idle.unref();
      const body = isBinary ? Buffer.from(data as Buffer).toString('base64') : data.toString();
      const routeKey = isBinary ? '$default' : selectRoute(body, routes);
      counts.messages++;
      const event = messageEvent(context, routeKey, body);
      if (isBinary) event.isBase64Encoded = true;
      track(handlers.message(event)).catch((err: unknown) => {
        onError(`route ${routeKey} failed`, err);
        if (socket.readyState === socket.OPEN) {
          socket.send(
            JSON.stringify({
              message: 'Internal server error',
              connectionId: context.connectionId,
              requestId: event.requestContext.requestId,
            }),
          );
        }
      });
    });
    socket.on('error', (err) => {
      // ws raises a 1009 for a message over maxPayload as an error, then closes.
      if ((err as { code?: string }).code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') counts.tooBig++;
    });
    socket.on('close', (code, reason) => {
      clearTimeout(idle);
      clearTimeout(lifetime);
      api.connections.delete(context.connectionId);
      api.faults.delete(context.connectionId);
      if (!connection.notifyDisconnect) return;
      track(handlers.disconnect(disconnectEvent(context, code, reason.toString()))).catch((err: unknown) =>
        onError('$disconnect failed', err),
      );
    });
  };

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://local');
    if (stopping || url.pathname.replace(/\/$/, '') !== `/${stage}`)
      return refuse(socket, stopping ? 503 : 403);
    const context: ConnectionContext = {
      connectionId: newConnectionId(),
      connectedAt: Date.now(),
      domainName,
      stage,
      apiId: 'local',
      sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
      userAgent: req.headers['user-agent'] ?? '',
    };
    const upgrade = async () => {
      let status: number;
      try {
        status = statusOf(await handlers.connect(connectEvent(context, req.headers, url.searchParams)));
      } catch (err) {
        onError('$connect failed', err);
        status = 500;
      }
      if (status < 200 || status > 299) {
        counts.refused++;
        return refuse(socket, status);
      }
      if (socket.destroyed) {
        // The client gave up during $connect: API Gateway still reports the disconnect.
        await handlers.disconnect(disconnectEvent(context, 1006, '')).catch(() => {});
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => open(context, ws, socket));
    };
    track(upgrade()).catch((err: unknown) => onError('upgrade failed', err));
  });

  const port = await listenOnLoopback(server, options.port ?? 0);
  domainName = `127.0.0.1:${port}`;

  return {
    url: `ws://${domainName}/${stage}`,
    managementEndpoint: `http://${domainName}/${stage}`,
    connectionCount: () => api.connections.size,
    connectionIds: () => [...api.connections.keys()],
    async dropConnection(connectionId, { notify = true } = {}) {
      const connection = api.connections.get(connectionId);
      if (!connection) throw new Error(`no open connection ${connectionId}`);
      connection.notifyDisconnect = notify;
      const closed = new Promise<void>((resolve) => connection.socket.once('close', () => resolve()));
      connection.socket.terminate();
      await closed;
    },
    injectFault(connectionId, fault) {
      api.faults.set(connectionId, { ...fault });
    },
    stats: () => ({ ...api.stats, ...counts }),
    async stop() {
      stopping = true;
      const closing = [...api.connections.values()].map(
        (c) =>
          new Promise<void>((resolve) => {
            c.socket.once('close', () => resolve());
            c.socket.close(1001, 'Going away');
            setTimeout(() => {
              c.socket.terminate();
              resolve();
            }, 1_000).unref();
          }),
      );
      await Promise.all(closing);
      await Promise.allSettled([...inFlight]);
      wss.close();
      await closeServer(server);
    },
  };
}
