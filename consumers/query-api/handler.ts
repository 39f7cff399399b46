import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { createAwsClients } from '../../shared/aws-clients.js';
import { loadConfig } from '../../shared/config.js';
import { addLambdaContext, createLogger } from '../../shared/telemetry.js';
import { createQueryApiHandler } from './api.js';

export { createQueryApiHandler, type QueryApiDeps } from './api.js';

type Handler = (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2>;

const logger = createLogger('query-api');
let instance: Handler | undefined;

/** Dependencies are built once per cold start, on the first request. */
function build(): Handler {
  const config = loadConfig();
  return createQueryApiHandler({
    config,
    clients: createAwsClients(config),
    logger,
  });
}

/** HTTP API: GET /items/{itemId}, GET /items. */
export async function handler(
  event: APIGatewayProxyEventV2,
  context?: Context,
): Promise<APIGatewayProxyStructuredResultV2> {
  addLambdaContext(context, logger);
  instance ??= build();
  return instance(event);
}
