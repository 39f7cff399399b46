import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';

/**
 * API Gateway WebSocket events, shaped as API Gateway sends them to a Lambda proxy integration
 * (`$connect` additionally carries headers and the query string).
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A connection id like API Gateway's: 15 characters and a trailing `=` (which SDK clients send as `%3D`). */
export function newConnectionId(): string {
  const bytes = randomBytes(15);
  let id = '';
  for (const byte of bytes) id += ALPHABET[byte % ALPHABET.length];
  return `${id}=`;
}

/** What every event of one connection shares. */
export interface ConnectionContext {
  readonly connectionId: string;
  readonly connectedAt: number;
  readonly domainName: string;
  readonly stage: string;
  readonly apiId: string;
  readonly sourceIp: string;
  readonly userAgent: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** `requestTime` as API Gateway formats it: `09/Feb/2019:23:10:12 +0000`. */
export function requestTime(epochMs: number): string {
  const d = new Date(epochMs);
  return `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(
    d.getUTCMinutes(),
  )}:${two(d.getUTCSeconds())} +0000`;
}

function requestContext(
  connection: ConnectionContext,
  routeKey: string,
  eventType: 'CONNECT' | 'MESSAGE' | 'DISCONNECT',
  now: number,
) {
  return {
    routeKey,
    eventType,
    extendedRequestId: randomBytes(8).toString('base64'),
    requestTime: requestTime(now),
    messageDirection: 'IN' as const,
    stage: connection.stage,
    connectedAt: connection.connectedAt,
    requestTimeEpoch: now,
    identity: { sourceIp: connection.sourceIp, userAgent: connection.userAgent },
    requestId: randomUUID(),
    domainName: connection.domainName,
    connectionId: connection.connectionId,
    apiId: connection.apiId,
  };
}

const singleValued = (headers: IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers).flatMap(([name, value]) =>
      value === undefined ? [] : [[name, Array.isArray(value) ? value.join(',') : value]],
    ),
  );

/** The `$connect` event, with the upgrade request's headers and query string. */
export function connectEvent(
  connection: ConnectionContext,
  headers: IncomingHttpHeaders,
  query: URLSearchParams,
  now = Date.now(),
): APIGatewayProxyWebsocketEventV2 & { headers: Record<string, string> } {
  const params = [...query.keys()];
  return {
    headers: singleValued(headers),
    ...(params.length > 0
      ? {
          queryStringParameters: Object.fromEntries(params.map((k) => [k, query.getAll(k).at(-1) ?? ''])),
          multiValueQueryStringParameters: Object.fromEntries(params.map((k) => [k, query.getAll(k)])),
        }
      : {}),
    requestContext: { ...requestContext(connection, '$connect', 'CONNECT', now), messageId: '' },
    isBase64Encoded: false,
  };
}

/** A message event for `routeKey`. */
export function messageEvent(
  connection: ConnectionContext,
  routeKey: string,
  body: string,
  now = Date.now(),
): APIGatewayProxyWebsocketEventV2 {
  return {
    requestContext: {
      ...requestContext(connection, routeKey, 'MESSAGE', now),
      messageId: randomBytes(8).toString('base64'),
    },
    body,
    isBase64Encoded: false,
  };
}

/** The `$disconnect` event, with the close code and reason. */
export function disconnectEvent(
  connection: ConnectionContext,
  statusCode: number,
  reason: string,
  now = Date.now(),
): APIGatewayProxyWebsocketEventV2 {
  return {
    requestContext: {
      ...requestContext(connection, '$disconnect', 'DISCONNECT', now),
      messageId: '',
      disconnectStatusCode: statusCode,
      disconnectReason: reason,
    } as APIGatewayProxyWebsocketEventV2['requestContext'],
    isBase64Encoded: false,
  };
}

/**
 * The route API Gateway selects with `$request.body.action`: the action of a JSON object body
 * when a route has that key, `$default` otherwise (not JSON, no action, unknown action).
 */
export function selectRoute(body: string, routes: ReadonlySet<string>): string {
  try {
    const json: unknown = JSON.parse(body);
    if (typeof json === 'object' && json !== null && 'action' in json) {
      const { action } = json;
      if (typeof action === 'string' && routes.has(action)) return action;
    }
  } catch {
    // Not JSON: the default route.
  }
  return '$default';
}
