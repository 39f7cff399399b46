/**
 * `get`: prints a stored item as JSON (or only its text with `--text`), read through the HTTP
 * query API with the target's token.
 *
 *   npm run cli -- get <itemId> [--text] [--stack <file>]
 */
import { parseArgs } from 'node:util';
import { ApiError, StoredItem } from '../../shared/contracts/stored-item.js';
import { ItemId } from '../../shared/contracts/work-item.js';
import { describe } from '../../shared/errors.js';
import { loadTarget, type Target } from '../target.js';

export const summary = 'print a stored item as JSON: get <itemId> [--text]';

const USAGE = `usage: npm run cli -- get <itemId> [--text] [--stack <file>]

  --text           print only the item's text
  --stack <file>   target stack file (default: .local/stack.json)
`;

/** The URL of an item in the query API at `baseUrl`. */
export function itemUrl(baseUrl: string, itemId: string): string {
  // Valid ids are safe in a path segment as they are; anything else is encoded and the API says why it is bad.
  const segment = ItemId.safeParse(itemId).success ? itemId : encodeURIComponent(itemId);
  return `${baseUrl.replace(/\/+$/, '')}/items/${segment}`;
}

/** Runs `get`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  let itemId: string;
  let textOnly: boolean;
  let stackArgs: string[];
  let target: Target;
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        text: { type: 'boolean' },
        stack: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (positionals.length !== 1 || !positionals[0]) throw new Error('give exactly one item id');
    itemId = positionals[0];
    textOnly = values.text === true;
    stackArgs = values.stack === undefined ? [] : ['--stack', values.stack];
  } catch (err) {
    process.stderr.write(`get: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  try {
    target = loadTarget(stackArgs);
  } catch (err) {
    process.stderr.write(`get: ${(err as Error).message}\n`);
    return 2;
  }
  const url = itemUrl(target.http.url, itemId);
  let response: Response;
  let body: unknown;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${target.token}` } });
    const raw = await response.text();
    try {
      body = JSON.parse(raw);
    } catch {
      body = raw;
    }
  } catch (err) {
    process.stderr.write(`get: could not reach the query API at ${url}: ${describe(err)}\n`);
    return 1;
  }
  if (!response.ok) {
    const error = ApiError.safeParse(body);
    const detail = error.success
      ? `${error.data.error.message} (${error.data.error.code})`
      : JSON.stringify(body);
    process.stderr.write(`get: ${detail} [HTTP ${response.status}]\n`);
    return 1;
  }
  const item = StoredItem.safeParse(body);
  if (!item.success) {
    process.stderr.write(
      `get: the query API answered something that is not a stored item: ${item.error.message}\n`,
    );
    return 1;
  }
  process.stdout.write(textOnly ? `${item.data.text}\n` : `${JSON.stringify(item.data, null, 2)}\n`);
  return 0;
}
