/**
 * The OpenAPI 3.1 document of the HTTP query API, its schemas generated from the zod contracts
 * (`shared/contracts/stored-item.ts`). Written to `docs/openapi.json` by `npm run specs`.
 */
import {
  ApiError,
  DEFAULT_LIST_LIMIT,
  ItemList,
  ItemStatus,
  ItemSummary,
  MAX_LIST_LIMIT,
  StoredItem,
} from '../contracts/stored-item.js';
import { ErrorInfo, Usage } from '../contracts/chunk-record.js';
import { ItemId } from '../contracts/work-item.js';
import { componentSchemas, type JsonSchema, ref } from './json-schema.js';

/** The version of the published contracts (chunk records carry `v: 1`). */
export const CONTRACTS_VERSION = '1.0.0';

const errorResponse = (description: string, codes: readonly string[]) => ({
  description: `${description} Codes: ${codes.map((c) => `\`${c}\``).join(', ')}.`,
  content: { 'application/json': { schema: ref('ApiError') } },
});

const RESPONSES = {
  Unauthorized: {
    description: 'The bearer token is missing, malformed, expired or not signed by this stack.',
    headers: { 'WWW-Authenticate': { schema: { type: 'string', const: 'Bearer' } } },
    content: { 'application/json': { schema: ref('ApiError') } },
  },
  Unavailable: {
    description:
      'The item store is throttling or briefly unavailable; try again after `Retry-After` seconds.',
    headers: { 'Retry-After': { schema: { type: 'integer', minimum: 0 } } },
    content: { 'application/json': { schema: ref('ApiError') } },
  },
  Internal: errorResponse('The item store failed in a way a retry will not fix.', ['internal']),
};

function getItem(): JsonSchema {
  return {
    operationId: 'getItem',
    summary: 'One item: its status and all its text so far',
    description:
      "A token of one tenant sees only that tenant's items: another tenant's item is answered 404, exactly like an unknown one.",
    parameters: [
      {
        name: 'itemId',
        in: 'path',
        required: true,
        description: 'URL-encoded item id.',
        schema: ref('ItemId'),
      },
    ],
    responses: {
      '200': {
        description: 'The stored item.',
        content: { 'application/json': { schema: ref('StoredItem') } },
      },
      '400': errorResponse('The item id is malformed.', ['invalid_item_id']),
      '401': { $ref: '#/components/responses/Unauthorized' },
      '403': errorResponse('The token does not grant read.', ['insufficient_scope']),
      '404': errorResponse('No such item (or one of another tenant).', ['item_not_found']),
      '500': { $ref: '#/components/responses/Internal' },
      '503': { $ref: '#/components/responses/Unavailable' },
    },
  };
}

function listItems(): JsonSchema {
  return {
    operationId: 'listItems',
    summary: 'The latest items, newest first, without their text',
    description:
      "Only the token's tenant's items. Read from an eventually consistent index: an item that just changed status may show its previous one for a moment.",
    parameters: [
      {
        name: 'status',
        in: 'query',
        required: false,
        description: 'Only items in this status. Default: every status.',
        schema: ref('ItemStatus'),
      },
      {
        name: 'limit',
        in: 'query',
        required: false,
        description: 'How many items at most.',
        schema: { type: 'integer', minimum: 1, maximum: MAX_LIST_LIMIT, default: DEFAULT_LIST_LIMIT },
      },
      {
        name: 'tenant',
        in: 'query',
        required: false,
        description:
          'For a token of every tenant (`*`): whose items to list (default `default`). A tenant token always lists its own tenant; naming another gives an empty list.',
        schema: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
      },
    ],
    responses: {
      '200': { description: 'The items.', content: { 'application/json': { schema: ref('ItemList') } } },
      '400': errorResponse('A query parameter is unknown or out of range.', [
        'invalid_parameter',
        'invalid_status',
        'invalid_limit',
        'invalid_tenant',
      ]),
      '401': { $ref: '#/components/responses/Unauthorized' },
      '403': errorResponse('The token does not grant read.', ['insufficient_scope']),
      '500': { $ref: '#/components/responses/Internal' },
      '503': { $ref: '#/components/responses/Unavailable' },
    },
  };
}

/** Builds the OpenAPI 3.1 document of the HTTP query API (deterministic: same schemas, same bytes). */
export function openApiDocument(): JsonSchema {
  return {
    openapi: '3.1.0',
    info: {
      title: 'kinesis-model-streams HTTP query API',
      version: CONTRACTS_VERSION,
      description:
        'Reads the items reassembled from the chunk stream. Every request carries `Authorization: Bearer <token>`. Errors are `{ "error": { "code", "message" } }`. See docs/protocol.md.',
    },
    servers: [
      {
        url: '{api}',
        description:
          'The HTTP API: `http.url` in `.local/stack.json`, or the `HttpApiUrl` output of the deployed stack.',
        variables: { api: { default: 'http://127.0.0.1:4000' } },
      },
    ],
    security: [{ bearer: [] }],
    paths: {
      '/items': { get: listItems() },
      '/items/{itemId}': { get: getItem() },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      },
      responses: RESPONSES,
      schemas: componentSchemas({
        ApiError: { schema: ApiError, side: 'output' },
        ErrorInfo: { schema: ErrorInfo, side: 'output' },
        ItemId: { schema: ItemId, side: 'output' },
        ItemList: { schema: ItemList, side: 'output' },
        ItemStatus: { schema: ItemStatus, side: 'output' },
        ItemSummary: { schema: ItemSummary, side: 'output' },
        StoredItem: { schema: StoredItem, side: 'output' },
        Usage: { schema: Usage, side: 'output' },
      }),
    },
  };
}
