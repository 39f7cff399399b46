import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from 'aws-lambda';

/** `$connect`: checks the token. */
export async function connect(_event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> {
  throw new Error('websocket connect is not implemented yet');
}
/** `$disconnect`: removes the connection and its subscriptions. */
export async function disconnect(_event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> {
  throw new Error('websocket disconnect is not implemented yet');
}
/** `subscribe`, `unsubscribe`, `cancel` and `$default`. */
export async function message(_event: APIGatewayProxyWebsocketEventV2): Promise<APIGatewayProxyResultV2> {
  throw new Error('websocket message is not implemented yet');
}
