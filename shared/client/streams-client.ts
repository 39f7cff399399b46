import {
  BehaviorSubject,
  concat,
  concatMap,
  defer,
  distinctUntilChanged,
  EMPTY,
  filter,
  map,
  merge,
  mergeMap,
  type Observable,
  of,
  Subject,
  takeWhile,
  throwError,
} from 'rxjs';
import type { ErrorInfo } from '../contracts/chunk-record.js';
import { type ClientMessage, ServerFrame, type ServerMessage } from '../contracts/websocket.js';
import { type ItemChange, type ItemMessage, ItemTracker, type ItemView } from './item-tracker.js';
import { Pacer } from './pacer.js';
import { equalJitterDelayMs, SubscribeRetries } from './subscribe-retries.js';

/**
 * Every item, packed: the server sends one `batch` frame per consumer batch instead of one message
 * per item, which is what keeps a dashboard cheap when many items stream at once.
 */
const SUBSCRIBE_ALL: ClientMessage = { action: 'subscribe', all: true, batch: true };
/** The every-item subscription's key among the subscribe retries (never an item id: `*` is not allowed in one). */
const ALL_ITEMS = '*';

/**
 * The parts of a WebSocket the client uses: the browser's global `WebSocket` and the `ws`
 * package's class both fit. Handlers are assigned, so their types are left to the implementation.
 */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: unknown;
  onmessage: unknown;
  onclose: unknown;
  onerror: unknown;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** What a UI shows about the connection; `closed` is final. */
export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Reconnect backoff (see `reconnectDelayMs`). */
export interface ReconnectOptions {
  /** Delay cap before the first reconnect, in ms. Default 250. */
  readonly initialDelayMs?: number;
  /** Largest delay cap, in ms. Default 10,000. */
  readonly maxDelayMs?: number;
  /** Reconnects in a row before giving up (state `closed`). Default: never give up. */
  readonly maxAttempts?: number;
}

/**
 * How a subscribe answered `not_found` is asked again: the item may not exist yet (it exists from
 * its producer's claim on), so the client keeps asking, with jittered exponential backoff, until
 * the deadline; then it reports the item as not found.
 */
export interface NotFoundRetryOptions {
  /** Delay cap before the first retry, in ms. Default 100. */
  readonly initialDelayMs?: number;
  /** Largest delay cap, in ms. Default 2,000. */
  readonly maxDelayMs?: number;
  /** How long after the first `not_found` the client gives up, in ms. Default 60,000. */
  readonly deadlineMs?: number;
}

const NOT_FOUND_RETRY = { initialDelayMs: 100, maxDelayMs: 2_000, deadlineMs: 60_000 } as const;

/** Where to connect, with which token and WebSocket class. */
export interface StreamsClientOptions {
  /** The WebSocket API's URL (`wss://…/{stage}`); the token is added as `?token=`. */
  readonly url: string;
  /** A token, or a function giving one (called again on every reconnect, so it can refresh). */
  readonly token: string | (() => string | Promise<string>);
  /** The WebSocket class. Default: the global `WebSocket` (browsers, Node 22+). In Node 20 pass `ws`. */
  readonly WebSocket?: WebSocketConstructor;
  readonly reconnect?: ReconnectOptions;
  /** How long and how often a subscribe to an item that does not exist (yet) is repeated. */
  readonly notFoundRetry?: NotFoundRetryOptions;
  /**
   * Messages the client sends a second, on average, and twice that at once. Default 12: the
   * server's default limit is 20 a second counted over 5-s windows (past it messages are dropped
   * unanswered), and this sends at most 7 × 12 = 84 of those 100 in a window.
   */
  readonly maxMessagesPerSecond?: number;
  /** Source of jitter. Default `Math.random`. */
  readonly random?: () => number;
}

/** A rejected request or a server-side failure, as the server reported it. */
export interface ServerError {
  /** The `error` message's code (`not_found`, `forbidden`, …); absent on API Gateway's own failures. */
  readonly code?: string;
  readonly message: string;
  readonly itemId?: string;
}

/** An item's generation failed (`failed` message); carries the error and the text produced. */
export class ItemFailedError extends Error {
  readonly itemId: string;
  readonly error: ErrorInfo;
  readonly text: string;
  constructor(view: ItemView) {
    const error = view.error ?? { code: 'unknown', message: 'the generation failed', retryable: false };
    super(`item ${view.itemId} failed: ${error.code}: ${error.message}`);
    this.name = 'ItemFailedError';
    this.itemId = view.itemId;
    this.error = error;
    this.text = view.text;
  }
}

/**
 * An item was still unknown (it does not exist, or is another tenant's) when the client stopped
 * asking for it (`NotFoundRetryOptions.deadlineMs`).
 */
export class ItemNotFoundError extends Error {
  readonly itemId: string;
  constructor(itemId: string, waitedMs: number) {
    super(
      `item ${itemId} not found: it did not exist (for this token) within ${Math.round(waitedMs / 1000)} s`,
    );
    this.name = 'ItemNotFoundError';
    this.itemId = itemId;
  }
}

/** A live connection to the WebSocket API that keeps items' texts exact across reconnects. */
export interface StreamsClient {
  /** Connection state for UIs; replays the current state; completes once `closed`. */
  readonly state$: Observable<ConnectionState>;
  /** Every change to every tracked item. */
  readonly changes$: Observable<ItemChange>;
  /**
   * Error replies from the server (bad requests, failed cancels), and items given up as not found.
   * A `not_found` answering a subscribe is not reported while the client still asks again.
   */
  readonly errors$: Observable<ServerError>;
  /** Watches an item (idempotent); resumed automatically after a reconnect. */
  subscribe(itemId: string): void;
  /** Watches every item (dashboards): items appear as their first message arrives. */
  subscribeAll(): void;
  unsubscribe(itemId: string): void;
  unsubscribeAll(): void;
  /** Asks the server to stop an item's generation; viewers then receive `failed` / `cancelled`. */
  cancel(itemId: string): void;
  /** The current view of an item, if known. */
  view(itemId: string): ItemView | undefined;
  /**
   * An item's view now (if known) and after every change; completes after it completes or fails,
   * errors with `ItemNotFoundError` when the item stays unknown. Subscribes to the item.
   */
  item$(itemId: string): Observable<ItemView>;
  /**
   * An item's text so far, on every change; completes when it completes, errors with
   * `ItemFailedError` when it fails and `ItemNotFoundError` when it stays unknown.
   */
  text$(itemId: string): Observable<string>;
  /** Closes the connection for good. */
  close(): void;
}

const OPEN = 1;

/** The options given, without the ones left undefined (so defaults apply to them). */
const definedOf = <T extends object>(value: T | undefined): Partial<T> =>
  Object.fromEntries(Object.entries(value ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;

/** Reconnect delay: exponential cap with "equal jitter" (never 0, so a refusing server is not hammered). */
export function reconnectDelayMs(
  retry: number,
  options: ReconnectOptions = {},
  random = Math.random,
): number {
  return equalJitterDelayMs(retry, options, RECONNECT, random);
}

const RECONNECT = { initialDelayMs: 250, maxDelayMs: 10_000 } as const;
const MESSAGES_PER_SECOND = 12;

/**
 * Connects to the WebSocket API and keeps it connected. Works in browsers and in Node (pass the
 * `ws` class); imports nothing from Node.
 *
 * @example
 * ```ts
 * const client = createStreamsClient({ url, token, WebSocket });
 * client.text$('item-1').subscribe({ next: (text) => render(text), error: (e) => show(e) });
 * ```
 */
export function createStreamsClient(options: StreamsClientOptions): StreamsClient {
  const Socket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!Socket) throw new Error('no WebSocket class: pass options.WebSocket (in Node 20, the `ws` package)');
  const random = options.random ?? Math.random;
  const state$ = new BehaviorSubject<ConnectionState>('connecting');
  const changes$ = new Subject<ItemChange>();
  const errors$ = new Subject<ServerError>();
  const trackers = new Map<string, ItemTracker>();
  /** Items asked for by `subscribe` (as opposed to seen through the every-item subscription). */
  const wanted = new Set<string>();
  const outbox: ClientMessage[] = [];
  /** The last request sent about each item: an error reply naming the item answers it. */
  const lastAction = new Map<string, ClientMessage['action']>();
  const subscribeRetries = new SubscribeRetries({
    failure: { ...RECONNECT, ...definedOf(options.reconnect) },
    notFound: { ...NOT_FOUND_RETRY, ...definedOf(options.notFoundRetry) },
    random,
  });
  /** Items given up as not found: `item$` of such an item errors. */
  const notFound$ = new Subject<ItemNotFoundError>();
  let all = false;
  let socket: WebSocketLike | undefined;
  let retries = 0;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const perSecond = options.maxMessagesPerSecond ?? MESSAGES_PER_SECOND;
  const pacer = new Pacer<ClientMessage>({ perSecond, burst: 2 * perSecond }, (message) => {
    if (socket?.readyState !== OPEN) return false;
    if ('itemId' in message) lastAction.set(message.itemId, message.action);
    socket.send(JSON.stringify(message));
    return true;
  });
  const send = (message: ClientMessage) => {
    if (socket?.readyState === OPEN) pacer.push(message);
    else if (message.action === 'cancel') outbox.push(message);
    // Subscriptions are state: they are sent again on every open.
  };

  const emit = (changes: readonly ItemChange[]) => {
    for (const change of changes) changes$.next(change);
  };

  const resubscribe = (tracker: ItemTracker) => {
    if (socket?.readyState === OPEN) send(tracker.subscribeRequest());
  };

  const onItemMessage = (message: ItemMessage) => {
    let tracker = trackers.get(message.itemId);
    if (!tracker) {
      if (!all) return;
      tracker = new ItemTracker(message.itemId);
      trackers.set(message.itemId, tracker);
      if (!tracker.adopt(message)) {
        // Joined mid-stream: the item's snapshot gives what came before.
        tracker.receive(message);
        resubscribe(tracker);
        return;
      }
    }
    // A message for an item not asked for by itself came through the every-item subscription: it holds.
    if (all && !wanted.has(message.itemId)) subscribeRetries.succeeded(ALL_ITEMS);
    const result = tracker.receive(message);
    if (message.type === 'snapshot' && !message.more) subscribeRetries.succeeded(message.itemId);
    emit(result.changes);
    if (result.resubscribe) resubscribe(tracker);
  };

  const onMessage = (data: unknown) => {
    if (typeof data !== 'string') return;
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      errors$.next({ message: `unreadable message from the server: ${data.slice(0, 200)}` });
      return;
    }
    const parsed = ServerFrame.safeParse(json);
    if (!parsed.success) {
      // API Gateway's own reply when an integration fails: {"message":"Internal server error",...}.
      const message = (json as { message?: unknown } | null)?.message;
      errors$.next({
        message: typeof message === 'string' ? message : `unexpected message: ${data.slice(0, 200)}`,
      });
      return;
    }
    // A `batch` frame holds the messages of one consumer batch, in the order they were sent.
    const messages = parsed.data.type === 'batch' ? parsed.data.messages : [parsed.data];
    for (const message of messages) onServerMessage(message);
  };

  const onServerMessage = (message: ServerMessage) => {
    if (message.type === 'error') onErrorMessage(message);
    else onItemMessage(message);
  };

  /** An `error` reply; one answering a subscribe (it names the item) asks again after a pause. */
  const onErrorMessage = (message: Extract<ServerMessage, { type: 'error' }>) => {
    const { code, itemId } = message;
    const tracker = itemId ? trackers.get(itemId) : undefined;
    const answersSubscribe =
      tracker?.awaitingSnapshot === true && lastAction.get(tracker.itemId) === 'subscribe';
    if (!tracker || !answersSubscribe) {
      errors$.next(itemId ? { code, message: message.message, itemId } : { code, message: message.message });
      if (!itemId && all) retryAll(code);
      return;
    }
    tracker.connectionLost();
    const decision = subscribeRetries.failed(tracker.itemId, code);
    if (decision.kind === 'give-up') return giveUp(tracker.itemId, decision.waitedMs);
    // An item that does not exist yet is expected (subscribed before it was submitted): not reported.
    if (code !== 'not_found') errors$.next({ code, message: message.message, itemId: tracker.itemId });
    subscribeRetries.schedule(tracker.itemId, decision.delayMs, () => {
      if (trackers.get(tracker.itemId) === tracker && !tracker.awaitingSnapshot) resubscribe(tracker);
    });
  };

  /**
   * An error naming no item while every item is watched: it may answer the every-item subscribe
   * (the only request without an item the client sends, and the server answers its success with
   * nothing), so that subscribe is sent again with the failure backoff. Sending it twice is harmless.
   */
  const retryAll = (code: string) => {
    const decision = subscribeRetries.failed(ALL_ITEMS, code);
    if (decision.kind !== 'retry') return;
    subscribeRetries.schedule(ALL_ITEMS, decision.delayMs, () => {
      if (all) send(SUBSCRIBE_ALL);
    });
  };

  /** Stops asking for an item that stayed unknown, and reports it. */
  const giveUp = (itemId: string, waitedMs: number) => {
    const error = new ItemNotFoundError(itemId, waitedMs);
    wanted.delete(itemId);
    trackers.delete(itemId);
    errors$.next({ code: 'not_found', message: error.message, itemId });
    notFound$.next(error);
  };

  const onOpen = () => {
    retries = 0;
    state$.next('open');
    // A new connection asks afresh: a retry pending from the last one is dropped.
    subscribeRetries.forget(ALL_ITEMS);
    if (all) send(SUBSCRIBE_ALL);
    // Every item still changing is resumed from what it holds (or fetched whole).
    for (const tracker of trackers.values()) if (!tracker.terminal) send(tracker.subscribeRequest());
    for (const message of outbox.splice(0)) send(message);
  };

  const onClose = () => {
    socket = undefined;
    // Requests not sent yet: subscriptions are sent again on the next open, cancels wait for it.
    for (const message of pacer.clear()) if (message.action === 'cancel') outbox.push(message);
    for (const tracker of trackers.values()) tracker.connectionLost();
    if (closed) return;
    retries++;
    const limit = options.reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY;
    if (retries > limit) {
      finish();
      return;
    }
    state$.next('reconnecting');
    timer = setTimeout(() => void connect(), reconnectDelayMs(retries, options.reconnect, random));
  };

  /** Closed for good (by `close()` or after the last reconnect attempt): every stream completes. */
  const finish = () => {
    closed = true;
    pacer.clear();
    if (timer) clearTimeout(timer);
    subscribeRetries.clear();
    notFound$.complete();
    state$.next('closed');
    state$.complete();
    changes$.complete();
    errors$.complete();
  };

  const connect = async () => {
    timer = undefined;
    if (closed) return;
    let token: string;
    try {
      token = typeof options.token === 'function' ? await options.token() : options.token;
    } catch (err) {
      errors$.next({ message: `no token: ${err instanceof Error ? err.message : String(err)}` });
      onClose();
      return;
    }
    if (closed) return;
    const separator = options.url.includes('?') ? '&' : '?';
    const ws = new Socket(`${options.url}${separator}token=${encodeURIComponent(token)}`);
    socket = ws;
    ws.onopen = () => {
      if (socket === ws) onOpen();
    };
    ws.onmessage = (event: { data: unknown }) => {
      if (socket === ws) onMessage(event.data);
    };
    ws.onclose = () => {
      if (socket === ws) onClose();
    };
    // A failed handshake (401) or network error is followed by a close, handled there.
    ws.onerror = () => {};
  };

  const item$ = (itemId: string): Observable<ItemView> => {
    client.subscribe(itemId);
    return defer(() => {
      const now = trackers.get(itemId)?.view;
      return concat(
        now ? of(now) : EMPTY,
        merge(
          changes$.pipe(
            filter((change) => change.view.itemId === itemId),
            map((change) => change.view),
          ),
          notFound$.pipe(
            filter((error) => error.itemId === itemId),
            mergeMap((error) => throwError(() => error)),
          ),
        ),
      );
    }).pipe(takeWhile((view) => view.status !== 'completed' && view.status !== 'failed', true));
  };

  const client: StreamsClient = {
    state$: state$.asObservable(),
    changes$: changes$.asObservable(),
    errors$: errors$.asObservable(),
    subscribe(itemId) {
      if (wanted.has(itemId)) return;
      wanted.add(itemId);
      let tracker = trackers.get(itemId);
      if (!tracker) {
        tracker = new ItemTracker(itemId);
        trackers.set(itemId, tracker);
      }
      // One subscribe in flight per item, so the frames of two split snapshots never interleave.
      if (!tracker.awaitingSnapshot && !tracker.terminal) resubscribe(tracker);
    },
    subscribeAll() {
      if (all) return;
      all = true;
      send(SUBSCRIBE_ALL);
    },
    unsubscribe(itemId) {
      wanted.delete(itemId);
      trackers.delete(itemId);
      subscribeRetries.forget(itemId);
      send({ action: 'unsubscribe', itemId });
    },
    unsubscribeAll() {
      if (!all) return;
      all = false;
      subscribeRetries.forget(ALL_ITEMS);
      send({ action: 'unsubscribe', all: true });
      for (const itemId of [...trackers.keys()]) if (!wanted.has(itemId)) trackers.delete(itemId);
    },
    cancel(itemId) {
      send({ action: 'cancel', itemId });
    },
    view: (itemId) => trackers.get(itemId)?.view,
    item$,
    text$: (itemId) =>
      item$(itemId).pipe(
        concatMap((view) =>
          view.status === 'failed'
            ? concat(
                of(view.text),
                throwError(() => new ItemFailedError(view)),
              )
            : of(view.text),
        ),
        distinctUntilChanged(),
      ),
    close() {
      if (closed) return;
      const ws = socket;
      socket = undefined;
      ws?.close(1000, 'client closed');
      finish();
    },
  };

  void connect();
  return client;
}
