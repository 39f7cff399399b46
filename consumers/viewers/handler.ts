import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2, Context } from 'aws-lambda';
import { createAwsClients } from '../../shared/aws-clients.js';
import { loadConfig } from '../../shared/config.js';
import { addLambdaContext, createLogger, createMetrics } from '../../shared/telemetry.js';
import { createExpirySweep, type ExpirySweepResult } from './expiry-sweep.js';
import { createWebSocketHandlers, type WebSocketHandlers } from './routes.js';

export { createExpirySweep, type ExpirySweepDeps, type ExpirySweepResult } from './expiry-sweep.js';
export { createWebSocketHandlers, type WebSocketDeps, type WebSocketHandlers } from './routes.js';

const logger = createLogger('websocket');
let handlers: WebSocketHandlers | undefined;

/** Dependencies are built once per cold start, from the environment; the logger learns each invocation. */
function live(context: Context | undefined): WebSocketHandlers {
  addLambdaContext(context, logger);
  if (!handlers) {
    const config = loadConfig();
    handlers = createWebSocketHandlers({
      config,
      clients: createAwsClients(config),
      logger,
      metrics: createMetrics('websocket'),
    });
  }
  return handlers;
}

/** `$connect`: checks the token. */
export function connect(
  event: APIGatewayProxyWebsocketEventV2,
  context?: Context,
): Promise<APIGatewayProxyResultV2> {
  return live(context).connect(event);
}
/** `$disconnect`: removes the connection and its subscriptions. */
export function disconnect(
  event: APIGatewayProxyWebsocketEventV2,
  context?: Context,
): Promise<APIGatewayProxyResultV2> {
  return live(context).disconnect(event, context?.getRemainingTimeInMillis());
}
/** `subscribe`, `unsubscribe`, `cancel` and `$default`. */
export function message(
  event: APIGatewayProxyWebsocketEventV2,
  context?: Context,
): Promise<APIGatewayProxyResultV2> {
  return live(context).message(event);
}

let sweep: ((remainingMs?: number) => Promise<ExpirySweepResult>) | undefined;

/** Scheduled (EventBridge rule): closes connections whose token expired and removes their rows. */
export function sweepExpired(_event?: unknown, context?: Context): Promise<ExpirySweepResult> {
  addLambdaContext(context, logger);
  if (!sweep) {
    const config = loadConfig();
    sweep = createExpirySweep({
      config,
      clients: createAwsClients(config),
      logger,
      metrics: createMetrics('expiry-sweep'),
    });
  }
  return sweep(context?.getRemainingTimeInMillis());
}
