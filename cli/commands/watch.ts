/**
 * `watch`: prints an item's text as it streams over the WebSocket API, or every item's (`--all`),
 * through the client library, so it survives reconnects and never repeats or loses text.
 *
 *   npm run cli -- watch <itemId> [--stack <file>]
 *   npm run cli -- watch --all [--stack <file>]
 */
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import {
  createStreamsClient,
  type ItemChange,
  type NotFoundRetryOptions,
  type WebSocketConstructor,
} from '../../shared/client/index.js';
import { ItemId } from '../../shared/contracts/work-item.js';
import { loadTarget } from '../target.js';

export const summary = "print an item's text as it streams: watch <itemId> | watch --all";

const USAGE = `usage: npm run cli -- watch <itemId> [--stack <file>]
       npm run cli -- watch --all [--stack <file>]

  <itemId>         print this item's text as it streams; exit 0 when it completes, 1 when it fails
                   (or is still unknown a minute after watching began: it may be submitted meanwhile)
  --all            print every item's lines, prefixed with the item id, until Ctrl-C
  --stack <file>   target stack file (default: .local/stack.json)

Progress and connection notes go to stderr; the text alone goes to stdout.
`;

/** Where `watch` writes: the text, and notes about it. */
export interface WatchOutput {
  readonly out: { write(text: string): unknown };
  readonly err: { write(text: string): unknown };
}

/** What to watch, and where. */
export interface WatchOptions {
  readonly url: string;
  readonly token: string;
  /** One item, or every item when undefined. */
  readonly itemId?: string;
  readonly WebSocket?: WebSocketConstructor;
  /** Stops watching (exit code 0 for `--all`, 130 for one item). */
  readonly signal?: AbortSignal;
  /** How long an item not submitted yet is waited for (default: the client library's, a minute). */
  readonly notFoundRetry?: NotFoundRetryOptions;
}

const describeEnd = (change: ItemChange): string => {
  const { view } = change;
  if (change.kind === 'failed')
    return `failed: ${view.error?.code ?? 'unknown'}: ${view.error?.message ?? ''}`;
  const tokens = view.usage ? `, ${view.usage.outputTokens} output tokens` : '';
  const cost = view.costUsd !== undefined ? `, ~$${view.costUsd.toFixed(6)}` : '';
  return `completed (attempt ${view.attempt}${tokens}${cost})`;
};

/**
 * Watches one item or all of them until the item ends, the signal aborts, or the connection is
 * given up. Returns the exit code: 0 completed (or `--all` stopped), 1 failed, 130 interrupted.
 */
export function watch(options: WatchOptions, io: WatchOutput): Promise<number> {
  const client = createStreamsClient({
    url: options.url,
    token: options.token,
    WebSocket: options.WebSocket ?? WebSocket,
    ...(options.notFoundRetry ? { notFoundRetry: options.notFoundRetry } : {}),
  });
  const { itemId } = options;
  return new Promise<number>((resolve) => {
    let lastState = '';
    const finish = (code: number) => {
      resolve(code);
      client.close();
    };
    options.signal?.addEventListener('abort', () => finish(itemId ? 130 : 0), { once: true });
    client.state$.subscribe((state) => {
      if (state === 'reconnecting' && lastState !== 'reconnecting')
        io.err.write('\n[connection lost; reconnecting]\n');
      if (state === 'open' && lastState === 'reconnecting') io.err.write('[reconnected; resuming]\n');
      if (state === 'closed' && !options.signal?.aborted) resolve(1);
      lastState = state;
    });
    client.errors$.subscribe((error) => {
      io.err.write(`[server: ${error.message}]\n`);
      // The item stayed unknown until the client stopped asking (it retries not_found meanwhile).
      if (itemId && error.code === 'not_found' && error.itemId === itemId) finish(1);
    });

    if (itemId) {
      let printed = '';
      client.changes$.subscribe((change) => {
        if (change.view.itemId !== itemId) return;
        if (change.kind === 'reset' && printed) {
          io.err.write(`\n[attempt ${change.view.attempt} began; its text starts over]\n`);
          printed = '';
        } else if (change.kind === 'text') {
          if (change.replaced && printed)
            io.err.write(`\n[text replaced by attempt ${change.view.attempt}]\n`);
          const text = change.replaced ? change.view.text : change.appended;
          io.out.write(text);
          printed = change.replaced ? text : printed + text;
        } else if (change.kind === 'done' || change.kind === 'failed') {
          if (printed && !printed.endsWith('\n')) io.out.write('\n');
          io.err.write(`[${describeEnd(change)}]\n`);
          finish(change.kind === 'done' ? 0 : 1);
        }
      });
      client.subscribe(itemId);
      return;
    }

    // Every item: whole lines, each prefixed with its item id; a partial line waits for its end.
    const partial = new Map<string, string>();
    const flush = (id: string) => {
      const rest = partial.get(id);
      if (rest) io.out.write(`${id} │ ${rest}\n`);
      partial.delete(id);
    };
    client.changes$.subscribe((change) => {
      const id = change.view.itemId;
      if (change.kind === 'reset' || (change.kind === 'text' && change.replaced)) {
        partial.delete(id);
        io.out.write(`${id} ↺ attempt ${change.view.attempt}\n`);
      }
      if (change.kind === 'text') {
        const lines = (
          (partial.get(id) ?? '') + (change.replaced ? change.view.text : change.appended)
        ).split('\n');
        partial.set(id, lines.pop() ?? '');
        for (const line of lines) io.out.write(`${id} │ ${line}\n`);
      }
      if (change.kind === 'done' || change.kind === 'failed') {
        flush(id);
        io.out.write(`${id} ${change.kind === 'done' ? '✓' : '✗'} ${describeEnd(change)}\n`);
      }
    });
    client.subscribeAll();
  });
}

/** Runs `watch`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  let itemId: string | undefined;
  let stackArgs: string[];
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        all: { type: 'boolean' },
        stack: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (values.all === true) {
      if (positionals.length > 0) throw new Error('give an item id or --all, not both');
    } else {
      if (positionals.length !== 1 || !positionals[0]) throw new Error('give exactly one item id, or --all');
      const parsed = ItemId.safeParse(positionals[0]);
      if (!parsed.success)
        throw new Error(`${JSON.stringify(positionals[0])}: ${parsed.error.issues[0]?.message}`);
      itemId = parsed.data;
    }
    stackArgs = values.stack === undefined ? [] : ['--stack', values.stack];
  } catch (err) {
    process.stderr.write(`watch: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  let target: ReturnType<typeof loadTarget>;
  try {
    target = loadTarget(stackArgs);
  } catch (err) {
    process.stderr.write(`watch: ${(err as Error).message}\n`);
    return 2;
  }
  const interrupt = new AbortController();
  const onSigint = () => interrupt.abort();
  process.once('SIGINT', onSigint);
  try {
    return await watch(
      {
        url: target.websocket.url,
        token: target.token,
        ...(itemId ? { itemId } : {}),
        signal: interrupt.signal,
      },
      { out: process.stdout, err: process.stderr },
    );
  } finally {
    process.off('SIGINT', onSigint);
  }
}
