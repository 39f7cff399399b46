/**
 * The HTTP query API (API Gateway HTTP API, payload format 2.0):
 * `GET /items/{itemId}` → the stored item; `GET /items?status=&limit=` → the latest items of the
 * token's tenant without their text. Every request needs `Authorization: Bearer <token>`. An item
 * of another tenant is a 404 exactly like an unknown one. Errors are
 * `{ "error": { "code", "message" } }`.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { AuthError, bearerToken, type TokenVerifier } from '../../shared/auth.js';
import type { AwsClients } from '../../shared/aws-clients.js';
import type { Config } from '../../shared/config.js';
import {
  type ApiError,
  DEFAULT_LIST_LIMIT,
  type ItemList,
  ItemStatus,
  MAX_LIST_LIMIT,
} from '../../shared/contracts/stored-item.js';
import { ItemId } from '../../shared/contracts/work-item.js';
import { classifyAwsError, describe, StreamsError } from '../../shared/errors.js';
import { readItem } from '../../shared/items.js';
import { withRetry } from '../../shared/retry.js';
import type { Logger } from '../../shared/telemetry.js';
import {
  ALL_TENANTS,
  DEFAULT_TENANT,
  mayRead,
  mayReadAny,
  type Principal,
  Tenant,
} from '../../shared/tenancy.js';
import { createTokenVerifier } from '../../shared/token-verifier.js';
import { listItems } from './list-items.js';

export interface QueryApiDeps {
  readonly config: Config;
  readonly clients: Pick<AwsClients, 'dynamo' | 'secrets'>;
  readonly logger: Logger;
  /** Default: the one the configuration asks for (`createTokenVerifier`). */
  readonly verifier?: TokenVerifier;
}

type Response = APIGatewayProxyStructuredResultV2;

const json = (statusCode: number, body: unknown, headers: Record<string, string> = {}): Response => ({
  statusCode,
  headers: { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers },
  body: JSON.stringify(body),
});

const failure = (statusCode: number, code: string, message: string, headers?: Record<string, string>) =>
  json(statusCode, { error: { code, message } } satisfies ApiError, headers);

/** A value echoed in an error message, quoted and cut short. */
const shown = (value: string) => JSON.stringify(value.length > 140 ? `${value.slice(0, 140)}…` : value);

type Route = { readonly name: 'get-item'; readonly itemId: string } | { readonly name: 'list-items' };

/**
 * The route of a request: from the route key when API Gateway matched one, else from the path
 * (a `$default` or proxy route), without the stage prefix of a named stage.
 */
function routeOf(event: APIGatewayProxyEventV2): Route | 'wrong-method' | undefined {
  if (event.routeKey === 'GET /items') return { name: 'list-items' };
  if (event.routeKey === 'GET /items/{itemId}' && event.pathParameters?.itemId !== undefined) {
    return { name: 'get-item', itemId: event.pathParameters.itemId };
  }
  const stage = event.requestContext.stage;
  let path = event.rawPath;
  if (stage && stage !== '$default' && path.startsWith(`/${stage}/`)) path = path.slice(stage.length + 1);
  const match = /^\/items(?:\/([^/]*))?\/?$/.exec(path);
  if (!match) return undefined;
  if (event.requestContext.http.method !== 'GET') return 'wrong-method';
  return match[1] === undefined ? { name: 'list-items' } : { name: 'get-item', itemId: match[1] };
}

/** Builds the query API handler. Fails at once when token verification is not configured. */
export function createQueryApiHandler(
  deps: QueryApiDeps,
): (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyStructuredResultV2> {
  const { config, logger } = deps;
  const dynamo = deps.clients.dynamo;
  const verifier = deps.verifier ?? createTokenVerifier(config.auth, deps.clients.secrets);

  async function getItem(principal: Principal, rawId: string): Promise<Response> {
    let itemId = rawId;
    if (rawId.includes('%')) {
      try {
        itemId = decodeURIComponent(rawId);
      } catch {
        return failure(400, 'invalid_item_id', `the item id ${shown(rawId)} is not validly URL-encoded`);
      }
    }
    if (!ItemId.safeParse(itemId).success) {
      return failure(
        400,
        'invalid_item_id',
        `the item id ${shown(itemId)} is malformed: an item id is 1–128 characters of A-Z a-z 0-9 . _ : -`,
      );
    }
    // DynamoDB errors are retried inside readItem; here only a read that raced a new attempt.
    const item = await withRetry(() => readItem(dynamo, config.tables, itemId), {
      what: `reading item ${itemId}`,
      maxAttempts: 3,
      retryOn: (_kind, err) => err instanceof StreamsError && err.code === 'text_parts_missing',
    });
    // Another tenant's item answers exactly like an unknown one: existence never leaks.
    if (!item || !mayRead(principal, item.tenant))
      return failure(404, 'item_not_found', `no item with id ${shown(itemId)}`);
    return json(200, item);
  }

  async function list(principal: Principal, query: Record<string, string | undefined>): Promise<Response> {
    const unknown = Object.keys(query).filter((name) => !['status', 'limit', 'tenant'].includes(name));
    if (unknown.length > 0) {
      return failure(
        400,
        'invalid_parameter',
        `unknown query parameter ${unknown.map(shown).join(', ')}: GET /items takes status, limit and tenant`,
      );
    }
    if (query.tenant !== undefined && !Tenant.safeParse(query.tenant).success) {
      return failure(
        400,
        'invalid_tenant',
        `tenant must be 1–64 characters of A-Z a-z 0-9 . _ -; got ${shown(query.tenant)}`,
      );
    }
    let statuses: ItemStatus[] = [...ItemStatus.options];
    if (query.status !== undefined) {
      const status = ItemStatus.safeParse(query.status);
      if (!status.success) {
        return failure(
          400,
          'invalid_status',
          `status must be one of ${ItemStatus.options.join(', ')}; got ${shown(query.status)}`,
        );
      }
      statuses = [status.data];
    }
    let limit = DEFAULT_LIST_LIMIT;
    if (query.limit !== undefined) {
      limit = /^\d{1,4}$/.test(query.limit) ? Number(query.limit) : Number.NaN;
      if (!(limit >= 1 && limit <= MAX_LIST_LIMIT)) {
        return failure(
          400,
          'invalid_limit',
          `limit must be a whole number from 1 to ${MAX_LIST_LIMIT}; got ${shown(query.limit)}`,
        );
      }
    }
    // A tenant token lists its own tenant, whatever it asks for; a `*` token one tenant at a time.
    const tenant = principal.tenant === ALL_TENANTS ? (query.tenant ?? DEFAULT_TENANT) : principal.tenant;
    if (query.tenant !== undefined && query.tenant !== tenant)
      return json(200, { items: [] } satisfies ItemList);
    const body: ItemList = { items: await listItems(dynamo, config.tables.items, tenant, statuses, limit) };
    return json(200, body);
  }

  return async (event) => {
    let principal: Principal;
    try {
      principal = await verifier.verify(bearerToken(event.headers?.authorization));
    } catch (err) {
      if (err instanceof AuthError) {
        return failure(401, 'unauthorized', err.message, { 'www-authenticate': 'Bearer' });
      }
      throw err;
    }
    const route = routeOf(event);
    const method = event.requestContext.http.method;
    if (route === undefined)
      return failure(404, 'route_not_found', `no route for ${method} ${event.rawPath}`);
    if (route === 'wrong-method') {
      return failure(405, 'method_not_allowed', `${method} is not allowed on ${event.rawPath}: use GET`, {
        allow: 'GET',
      });
    }
    if (!mayReadAny(principal)) {
      return failure(403, 'insufficient_scope', 'the token does not grant read (scope read or admin)', {
        'www-authenticate': 'Bearer error="insufficient_scope"',
      });
    }
    try {
      return route.name === 'get-item'
        ? await getItem(principal, route.itemId)
        : await list(principal, event.queryStringParameters ?? {});
    } catch (err) {
      const kind = classifyAwsError(err);
      logger.error('query failed', { route: route.name, kind, error: describe(err) });
      return kind === 'throttling' || kind === 'transient'
        ? failure(503, 'unavailable', 'the item store is busy; try again shortly', { 'retry-after': '1' })
        : failure(500, 'internal', 'the item could not be read');
    }
  };
}
