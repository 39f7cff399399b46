/**
 * `cancel`: stops an item's generation through the WebSocket API's `cancel` action, the same
 * request a dashboard sends. It subscribes first (so it knows the item exists and is still running,
 * and sees it end), sends `cancel`, and waits for the item to end as `failed` / `cancelled`.
 *
 *   npm run cli -- cancel <itemId> [--wait <seconds>]
 */
import { WebSocket } from 'ws';
import { ServerMessage } from '../../shared/contracts/websocket.js';
import { ItemId } from '../../shared/contracts/work-item.js';
import { describe } from '../../shared/errors.js';
import { parseCommandLine, USAGE_EXIT_CODE, UsageError, wholeNumber } from '../args.js';
import { loadTarget, type Target } from '../target.js';

export const summary = 'stop a queued or streaming item (it ends as failed / cancelled): cancel <itemId>';

const USAGE = `usage: npm run cli -- cancel <itemId> [--wait <seconds>] [--stack <file>]

  --wait <seconds>   how long to wait for the item to end after the request (default 10; 0: do not wait)
  --stack <file>     target stack file (default: .local/stack.json)

Exit 0 once the item ended as cancelled, or the request was accepted and the item has not ended
within --wait (a queued item ends when the producer next looks at it); 1 when the item does not
exist, has already ended, ended otherwise, or the API could not be reached.
`;

/** How a cancel request went. */
export type CancelOutcome =
  | { readonly kind: 'cancelled'; readonly textLength: number }
  | { readonly kind: 'requested'; readonly status: string }
  | { readonly kind: 'refused'; readonly message: string }
  | { readonly kind: 'ended'; readonly status: 'completed' | 'failed'; readonly detail: string }
  | { readonly kind: 'unreachable'; readonly message: string };

/** Where to send the request, and how long to wait for the item to end. */
export interface CancelOptions {
  readonly url: string;
  readonly token: string;
  readonly itemId: string;
  readonly waitMs: number;
  /** Gives up on connecting and on the snapshot after this long. Default 10 s. */
  readonly connectTimeoutMs?: number;
}

/** Sends `cancel` for one item over the WebSocket API and reports how it went; never throws. */
export function cancelItem(options: CancelOptions): Promise<CancelOutcome> {
  const { itemId } = options;
  const url = new URL(options.url);
  url.searchParams.set('token', options.token);
  return new Promise((resolve) => {
    const socket = new WebSocket(url);
    let status = 'unknown';
    let requested = false;
    let text = 0;
    let timer: NodeJS.Timeout | undefined;
    const finish = (outcome: CancelOutcome) => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.terminate();
      resolve(outcome);
    };
    const expire = (ms: number, outcome: () => CancelOutcome) => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(outcome()), ms);
    };
    expire(options.connectTimeoutMs ?? 10_000, () => ({
      kind: 'unreachable',
      message: `no answer from ${options.url} about ${itemId}`,
    }));
    socket.on('open', () => socket.send(JSON.stringify({ action: 'subscribe', itemId })));
    socket.on('error', (err) => finish({ kind: 'unreachable', message: describe(err) }));
    socket.on('close', (code) =>
      finish({ kind: 'unreachable', message: `the connection closed (code ${code}) before ${itemId} ended` }),
    );
    socket.on('message', (data) => {
      const parsed = ServerMessage.safeParse(safeJson(String(data)));
      if (!parsed.success) return;
      const message = parsed.data;
      if (message.type === 'error') {
        if (message.itemId === undefined || message.itemId === itemId)
          finish({ kind: 'refused', message: message.message });
        return;
      }
      if (message.itemId !== itemId) return;
      if (message.type === 'snapshot') {
        status = message.status;
        text = message.text.length + (message.offset ?? 0);
        if (message.more || requested) return;
        if (message.status === 'completed' || message.status === 'failed') {
          const detail = message.error
            ? `${message.error.code}: ${message.error.message}`
            : 'nothing to cancel';
          return finish({
            kind: 'ended',
            status: message.status,
            detail: `it had already ${message.status} (${detail})`,
          });
        }
        socket.send(JSON.stringify({ action: 'cancel', itemId }));
        requested = true;
        if (options.waitMs <= 0) {
          // No reply means the request was recorded; a refusal comes back at once.
          return expire(1_000, () => ({ kind: 'requested', status }));
        }
        return expire(options.waitMs, () => ({ kind: 'requested', status }));
      }
      if (message.type === 'delta') text += message.text.length;
      if (message.type === 'reset') text = 0;
      if (message.type === 'done') {
        finish({ kind: 'ended', status: 'completed', detail: 'it completed before the cancel took effect' });
      }
      if (message.type === 'failed') {
        if (message.error.code === 'cancelled') finish({ kind: 'cancelled', textLength: text });
        else
          finish({
            kind: 'ended',
            status: 'failed',
            detail: `it failed: ${message.error.code}: ${message.error.message}`,
          });
      }
    });
  });
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Runs `cancel`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  let itemId: string;
  let waitMs: number;
  let target: Target;
  try {
    const { values, positionals } = parseCommandLine(
      args,
      { wait: { type: 'string' }, stack: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      true,
    );
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (positionals.length !== 1 || !positionals[0]) throw new UsageError('give exactly one item id');
    const id = ItemId.safeParse(positionals[0]);
    if (!id.success)
      throw new UsageError(
        `${JSON.stringify(positionals[0])} is not an item id: ${id.error.issues[0]?.message}`,
      );
    itemId = id.data;
    waitMs = values.wait === undefined ? 10_000 : wholeNumber('--wait', values.wait, { max: 3600 }) * 1000;
    target = loadTarget(values.stack === undefined ? [] : ['--stack', values.stack]);
  } catch (err) {
    process.stderr.write(
      `cancel: ${(err as Error).message}\n${err instanceof UsageError ? `\n${USAGE}` : ''}`,
    );
    return USAGE_EXIT_CODE;
  }
  const outcome = await cancelItem({ url: target.websocket.url, token: target.token, itemId, waitMs });
  switch (outcome.kind) {
    case 'cancelled':
      process.stdout.write(
        `${itemId} cancelled (failed / cancelled, ${outcome.textLength} characters kept)\n`,
      );
      return 0;
    case 'requested':
      process.stdout.write(`${itemId}: cancel requested; it has not ended yet (it is ${outcome.status})\n`);
      return 0;
    case 'refused':
      process.stderr.write(`cancel: ${outcome.message}\n`);
      return 1;
    case 'ended':
      process.stderr.write(`cancel: ${itemId} was not cancelled: ${outcome.detail}\n`);
      return 1;
    case 'unreachable':
      process.stderr.write(
        `cancel: could not reach the WebSocket API at ${target.websocket.url}: ${outcome.message}\n`,
      );
      return 1;
  }
}
