import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';
import { createAwsClients } from '../../shared/aws-clients.js';
import { loadConfig } from '../../shared/config.js';
import { createLogger, createMetrics } from '../../shared/telemetry.js';
import { createWebSocketHandlers, type WebSocketHandlers } from './routes.js';

export { createWebSocketHandlers, type WebSocketDeps, type WebSocketHandlers } from './routes.js';

let handlers: WebSocketHandlers | undefined;

/** Dependencies are built once per cold start, from the environment. */
function live(): WebSocketHandlers {
  if (!handlers) {
    const config = loadConfig();
    handlers = createWebSocketHandlers({
      config,
      clients: createAwsClients(config),
      logger: createLogger('websocket'),
      metrics: createMetrics('websocket'),
    });
  }
  return handlers;
}

/** `$connect`: checks the token. */
export function connect(event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> {
  return live().connect(event);
}
/** `$disconnect`: removes the connection and its subscriptions. */
export function disconnect(event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> {
  return live().disconnect(event);
}
/** `subscribe`, `unsubscribe`, `cancel` and `$default`. */
export function message(event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> {
  return live().message(event);
}
