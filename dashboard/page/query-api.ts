import { z } from 'zod';
import { ApiError, ItemSummary, type ItemStatus } from '../../shared/contracts/stored-item.js';

const ItemList = z.object({ items: z.array(ItemSummary) });

/** A request to the query API failed; `status` 0 means it never got an HTTP answer. */
export class QueryApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QueryApiError';
    this.status = status;
    this.code = code;
  }
}

/** The part of the HTTP query API the page uses. */
export interface QueryApi {
  /** `GET /items?status=&limit=`: the latest items, without their text. */
  listItems(query: { readonly status?: ItemStatus; readonly limit: number }): Promise<ItemSummary[]>;
}

type Fetch = (input: string, init: { headers: Record<string, string> }) => Promise<Response>;

/** A query API client sending `Authorization: Bearer <token>`. */
export function createQueryApi(baseUrl: string, token: string, fetchFn: Fetch = fetch): QueryApi {
  return {
    async listItems({ status, limit }) {
      const query = new URLSearchParams({ limit: String(limit) });
      if (status) query.set('status', status);
      const url = `${baseUrl}/items?${query}`;
      let response: Response;
      try {
        response = await fetchFn(url, { headers: { authorization: `Bearer ${token}` } });
      } catch (err) {
        throw new QueryApiError(0, 'unreachable', `the query API at ${baseUrl} did not answer`, {
          cause: err,
        });
      }
      const body: unknown = await response.json().catch(() => undefined);
      if (!response.ok) {
        const error = ApiError.safeParse(body);
        throw new QueryApiError(
          response.status,
          error.success ? error.data.error.code : 'http_error',
          error.success ? error.data.error.message : `GET /items answered ${response.status}`,
        );
      }
      const list = ItemList.safeParse(body);
      if (!list.success) {
        throw new QueryApiError(response.status, 'bad_response', `GET /items answered an unexpected body`);
      }
      return list.data.items;
    },
  };
}
