/**
 * `list`: the latest items, newest first, read through the HTTP query API (`GET /items`) with the
 * target's token: one line each, or JSON with `--json`.
 *
 *   npm run cli -- list [--status <status>] [--tenant <tenant>] [--limit <n>] [--json]
 */
import { z } from 'zod';
import { ApiError, ItemStatus, ItemSummary } from '../../shared/contracts/stored-item.js';
import { describe } from '../../shared/errors.js';
import { oneOf, parseCommandLine, USAGE_EXIT_CODE, UsageError, wholeNumber } from '../args.js';
import { loadTarget, type Target } from '../target.js';

export const summary = 'list the latest items: list [--status <status>] [--tenant <tenant>] [--limit <n>]';

/** The query API's page size limit. */
const MAX_LIMIT = 100;

const USAGE = `usage: npm run cli -- list [--status <status>] [--tenant <tenant>] [--limit <n>] [--json]

  --status <status>   only items in this status: ${ItemStatus.options.join(', ')}
  --tenant <tenant>   only items of this tenant (a token for all tenants sees every tenant's items)
  --limit <n>         at most n items, 1 to ${MAX_LIMIT} (default 20)
  --json              print the API's entries as JSON instead of one line per item
  --stack <file>      target stack file (default: .local/stack.json)
`;

/** An entry of `GET /items`; items stored before tenancy belong to `default`. */
const ListedItem = ItemSummary.extend({ tenant: z.string().default('default') });
type ListedItem = z.infer<typeof ListedItem>;
const ListResponse = z.object({ items: z.array(ListedItem) });

/** What `list` asks for. */
export interface ListRequest {
  readonly status?: ItemStatus;
  readonly tenant?: string;
  readonly limit: number;
  readonly json: boolean;
  readonly stack?: string;
}

/** Reads `list`'s command line; throws a `UsageError` for anything it does not take. */
export function listRequestOf(args: readonly string[]): ListRequest | 'help' {
  const { values } = parseCommandLine(args, {
    status: { type: 'string' },
    tenant: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean' },
    stack: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) return 'help';
  if (values.tenant !== undefined && !/^[A-Za-z0-9._-]{1,64}$/.test(values.tenant)) {
    throw new UsageError(
      `--tenant must be 1-64 characters of A-Z a-z 0-9 . _ -; got ${JSON.stringify(values.tenant)}`,
    );
  }
  return {
    ...(values.status !== undefined ? { status: oneOf('--status', values.status, ItemStatus.options) } : {}),
    ...(values.tenant !== undefined ? { tenant: values.tenant } : {}),
    limit: values.limit === undefined ? 20 : wholeNumber('--limit', values.limit, { min: 1, max: MAX_LIMIT }),
    json: values.json === true,
    ...(values.stack !== undefined ? { stack: values.stack } : {}),
  };
}

/** The `GET /items` URL for a request. A tenant filter reads a full page, then keeps that tenant's. */
export function listUrl(baseUrl: string, request: ListRequest): string {
  const query = new URLSearchParams();
  if (request.status) query.set('status', request.status);
  query.set('limit', String(request.tenant ? MAX_LIMIT : request.limit));
  return `${baseUrl.replace(/\/+$/, '')}/items?${query}`;
}

/** One line per item: id, status, tenant, model, created, and the error of a failed one. */
export function formatItem(item: ListedItem): string {
  const error = item.error ? `  ${item.error.code}: ${item.error.message}` : '';
  return `${item.itemId}  ${item.status.padEnd(9)}  ${item.tenant}  ${item.modelId}  ${item.createdAt}${error}`;
}

/** Runs `list`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  let request: ListRequest;
  let target: Target;
  try {
    const parsed = listRequestOf(args);
    if (parsed === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    request = parsed;
    target = loadTarget(request.stack === undefined ? [] : ['--stack', request.stack]);
  } catch (err) {
    process.stderr.write(`list: ${(err as Error).message}\n${err instanceof UsageError ? `\n${USAGE}` : ''}`);
    return USAGE_EXIT_CODE;
  }
  const url = listUrl(target.http.url, request);
  let response: Response;
  let body: unknown;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${target.token}` } });
    const raw = await response.text();
    body = raw === '' ? undefined : JSON.parse(raw);
  } catch (err) {
    process.stderr.write(`list: could not read ${url}: ${describe(err)}\n`);
    return 1;
  }
  if (!response.ok) {
    const error = ApiError.safeParse(body);
    const detail = error.success
      ? `${error.data.error.message} (${error.data.error.code})`
      : JSON.stringify(body);
    process.stderr.write(`list: ${detail} [HTTP ${response.status}]\n`);
    return 1;
  }
  const page = ListResponse.safeParse(body);
  if (!page.success) {
    process.stderr.write(
      `list: the query API answered something that is not a list of items: ${page.error.message}\n`,
    );
    return 1;
  }
  const items = page.data.items
    .filter((item) => request.tenant === undefined || item.tenant === request.tenant)
    .slice(0, request.limit);
  process.stdout.write(
    request.json
      ? `${JSON.stringify(items, null, 2)}\n`
      : items.map((item) => `${formatItem(item)}\n`).join(''),
  );
  return 0;
}
