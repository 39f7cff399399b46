import { z } from 'zod';
import { ValidationError } from '../../shared/errors.js';

/**
 * The parts of an API Gateway WebSocket event (`APIGatewayProxyWebsocketEventV2`, with
 * `queryStringParameters` on `$connect`) the routes use. Other fields pass through untouched.
 */
export const WebSocketEvent = z.looseObject({
  requestContext: z.looseObject({
    connectionId: z.string().min(1),
    routeKey: z.string().min(1),
    eventType: z.enum(['CONNECT', 'MESSAGE', 'DISCONNECT']),
    domainName: z.string().min(1),
    stage: z.string().min(1),
    connectedAt: z.number().optional(),
    requestId: z.string().optional(),
  }),
  queryStringParameters: z.record(z.string(), z.string().optional()).nullish(),
  body: z.string().nullish(),
  isBase64Encoded: z.boolean().optional(),
});
export type WebSocketEvent = z.infer<typeof WebSocketEvent>;

/** Parses an event, or throws a `ValidationError` naming what is missing. */
export function parseWebSocketEvent(event: unknown): WebSocketEvent {
  const parsed = WebSocketEvent.safeParse(event);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`);
    throw new ValidationError(`not an API Gateway WebSocket event: ${problems.join('; ')}`);
  }
  return parsed.data;
}

const LOOPBACK = /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/;

/**
 * The management API endpoint (callback URL) of the stage an event came through: the configured
 * one when set (custom domains, the local stack), else `https://{domainName}/{stage}` as API
 * Gateway documents it. A loopback domain is the local gateway, which speaks plain HTTP.
 */
export function managementEndpointOf(event: WebSocketEvent, configured: string | undefined): string {
  if (configured) return configured;
  const { domainName, stage } = event.requestContext;
  const scheme = LOOPBACK.test(domainName) ? 'http' : 'https';
  return `${scheme}://${domainName}/${stage}`;
}
