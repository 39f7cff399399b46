import { WebSocket } from 'ws';
import { Pacer } from '../../shared/client/pacer.js';
import { nowMs } from '../support/clock.js';

/** The text length a viewer held for an item right after a message, and when it got it. */
export interface Receipt {
  readonly at: number;
  readonly length: number;
}

/** One item as one viewer saw it. */
export interface ViewedItem {
  text: string;
  attempt: number;
  /** Next seq expected (pipeline) or next seq seen (naive). */
  nextSeq: number;
  /** Every delta received, as `attempt:fromSeq`: a second copy is a duplicate. */
  readonly deltasSeen: Set<string>;
  readonly receipts: Receipt[];
  terminal: 'completed' | 'failed' | undefined;
}

/** What a viewer saw that an exactly-once client must not see. */
export interface ViewerAnomalies {
  /**
   * Deltas received a second time (dropped here by seq, as the client library drops them). A delta
   * that arrives after a snapshot already holding it is not one: the snapshot and the fan-out are
   * posted by different functions, so that order is allowed (DESIGN: order); it counts as
   * `covered` in the messages.
   */
  duplicates: number;
  /** Deltas or records that skipped a seq. */
  gaps: number;
}

type Frame = Record<string, unknown> & { type?: string; itemId?: string };

/** A message that arrived for an item whose snapshot is still awaited. */
interface Held {
  readonly type: string;
  readonly frame: Frame;
  readonly text: string;
  readonly at: number;
}

/**
 * A measuring viewer on the real WebSocket gateway: understands the pipeline's protocol
 * (snapshot, delta, reset, done, failed, split frames, `batch` frames) and the naive baseline's
 * per-record messages, keeps each item's text and the time every message arrived. When the server
 * closes the connection (a slow viewer dropped from a consumer batch) it reconnects and resumes
 * every unfinished item from the seq it holds, as the client library does. Lighter than the client
 * library (no observables), so a thousand of them fit beside the stack.
 */
export class BenchViewer {
  readonly items = new Map<string, ViewedItem>();
  readonly messages: Record<string, number> = {};
  readonly anomalies: ViewerAnomalies = { duplicates: 0, gaps: 0 };
  /** Times the server closed the connection and the viewer reconnected. */
  reconnects = 0;
  /** Called once per item when it ends. */
  onTerminal: ((itemId: string, status: 'completed' | 'failed') => void) | undefined;
  /** Items whose snapshot is awaited, with the messages that arrived before it. */
  private readonly awaiting = new Map<string, { resolve: () => void; held: Held[] }>();
  private readonly parts = new Map<string, string[]>();
  /** Items answered `not_found`: how often, since when (epoch ms of the bench clock). */
  private readonly notFound = new Map<string, { tries: number; since: number }>();
  private all: { readonly batch: boolean } | undefined;
  private closing = false;
  /** Messages not sent yet: the server drops what a connection sends past its rate limit. */
  private readonly outbox = new Pacer<Record<string, unknown>>(
    { perSecond: SEND_RATE, burst: SEND_BURST, now: nowMs },
    (message) => {
      if (this.socket.readyState !== WebSocket.OPEN || this.closing) return false;
      this.socket.send(JSON.stringify(message));
      return true;
    },
  );

  private constructor(
    private socket: WebSocket,
    private readonly url: string,
    private readonly token: string,
  ) {
    this.attach(socket);
  }

  /** Opens a connection with `token`; rejects when the gateway refuses it. */
  static async connect(url: string, token: string): Promise<BenchViewer> {
    return new BenchViewer(await open(url, token), url, token);
  }

  /**
   * Subscribes to an item; resolves once the server has answered: with its snapshot, or with
   * `not_found` when it does not exist yet (a viewer subscribing before its item is submitted), in
   * which case the viewer keeps asking, backing off, until the item exists.
   */
  subscribe(itemId: string): Promise<void> {
    this.items.set(itemId, newItem());
    return new Promise((resolve) => {
      this.awaiting.set(itemId, { resolve, held: [] });
      this.send({ action: 'subscribe', itemId });
    });
  }

  unsubscribe(itemId: string): void {
    this.send({ action: 'unsubscribe', itemId });
  }

  /**
   * Asks for every item (a dashboard), packed in `batch` frames when `batch`; the route sends no
   * reply, so callers check the store.
   */
  subscribeAll(batch = false): void {
    this.all = { batch };
    this.send({ action: 'subscribe', all: true, ...(batch ? { batch: true } : {}) });
  }

  /** Messages received, of every type. */
  get messageCount(): number {
    return Object.values(this.messages).reduce((sum, n) => sum + n, 0);
  }

  close(): void {
    this.closing = true;
    this.outbox.clear();
    this.socket.terminate();
  }

  /**
   * Sends within the server's limit of 20 messages a second per connection (over 5 s), as a
   * token bucket under it; the rest waits its turn. A reconnect resubscribing hundreds of
   * unfinished items would otherwise have most of them dropped, unanswered.
   */
  private send(message: Record<string, unknown>): void {
    this.outbox.push(message);
  }

  private attach(socket: WebSocket): void {
    socket.on('message', (data: Buffer) => this.receive(data.toString('utf8')));
    socket.once('close', () => {
      if (!this.closing) void this.reconnect();
    });
  }

  /** Reconnects (a few tries, jittered) and resumes every unfinished item from what it holds. */
  private async reconnect(): Promise<void> {
    this.reconnects++;
    for (let attempt = 1; attempt <= 20 && !this.closing; attempt++) {
      await sleep(50 + Math.random() * 200 * attempt);
      try {
        this.socket = await open(this.url, this.token);
      } catch {
        continue;
      }
      this.attach(this.socket);
      // What the last connection had not sent yet is asked afresh below.
      this.outbox.clear();
      if (this.all) this.subscribeAll(this.all.batch);
      for (const [itemId, item] of this.items) {
        if (item.terminal) continue;
        this.awaiting.set(itemId, { resolve: () => {}, held: [] });
        this.send({ action: 'subscribe', itemId, attempt: item.attempt, seq: item.nextSeq });
      }
      return;
    }
  }

  private receive(raw: string): void {
    const at = nowMs();
    let frame: Frame;
    try {
      frame = JSON.parse(raw) as Frame;
    } catch {
      this.count('unreadable');
      return;
    }
    if (frame.type === 'batch' && Array.isArray(frame.messages)) {
      this.count('batch');
      for (const message of frame.messages as Frame[]) this.receiveFrame(message, at, false);
      return;
    }
    this.receiveFrame(frame, at, true);
  }

  private receiveFrame(frame: Frame, at: number, counted: boolean): void {
    const type = String(frame.type ?? 'unknown');
    if (counted) this.count(type);
    const itemId = frame.itemId;
    if (typeof itemId !== 'string') return;
    if (type === 'error') {
      this.refused(itemId, frame.code === 'not_found');
      return;
    }
    // Split frames (`more: true`) are applied once, whole.
    const key = `${type}\u0000${itemId}`;
    if (frame.more === true) {
      const held = this.parts.get(key) ?? [];
      held.push(String(frame.text ?? ''));
      this.parts.set(key, held);
      return;
    }
    const parts = this.parts.get(key);
    if (parts) this.parts.delete(key);
    const text = (parts ?? []).join('') + String(frame.text ?? '');
    let item = this.items.get(itemId);
    if (!item) {
      // A late frame of an item this viewer no longer follows (unsubscribed, or cleared after the
      // warm-up); a dashboard follows every item.
      if (!this.all) return;
      item = newItem();
      this.items.set(itemId, item);
    }
    if (type === 'delta') {
      const key = `${Number(frame.attempt ?? 0)}:${Number(frame.fromSeq ?? 0)}`;
      if (item.deltasSeen.has(key)) {
        this.anomalies.duplicates++;
        return;
      }
      item.deltasSeen.add(key);
    }
    const waiting = this.awaiting.get(itemId);
    if (waiting && type !== 'snapshot') {
      // The snapshot and the fan-out come from different functions: hold until the snapshot.
      waiting.held.push({ type, frame, text, at });
      return;
    }
    if ((type === 'delta' && this.skips(item, frame)) || (ENDS.has(type) && this.missesEnd(item, frame))) {
      // Deltas were missed (sent while this viewer was away, or given up by the fan-out): count it
      // and resume from a snapshot, as the client library does, holding this one meanwhile.
      this.anomalies.gaps++;
      this.awaiting.set(itemId, { resolve: () => {}, held: [{ type, frame, text, at }] });
      this.resubscribe(itemId);
      return;
    }
    this.apply(item, type, frame, text, at);
    if (type === 'snapshot' && waiting) {
      this.awaiting.delete(itemId);
      this.notFound.delete(itemId);
      for (const h of waiting.held) {
        // Deltas the snapshot already holds are expected here, not duplicates.
        const covered = h.type === 'delta' && Number(h.frame.toSeq) < item.nextSeq;
        if (!covered || Number(h.frame.attempt) > item.attempt)
          this.apply(item, h.type, h.frame, h.text, h.at);
      }
      waiting.resolve();
    }
  }

  /**
   * A subscribe the route could not serve: ask again, as the client library does. An item that does
   * not exist yet (`not_found`) is asked for with jittered backoff (25 ms doubling to 400 ms) for up
   * to `NOT_FOUND_DEADLINE_MS`; the subscribe promise resolves at the first answer either way.
   */
  private refused(itemId: string, notFound: boolean): void {
    const waiting = this.awaiting.get(itemId);
    if (!waiting) return;
    waiting.resolve();
    if (!notFound) {
      setTimeout(() => this.resubscribe(itemId), 100);
      return;
    }
    const tries = (this.notFound.get(itemId)?.tries ?? 0) + 1;
    const since = this.notFound.get(itemId)?.since ?? nowMs();
    this.notFound.set(itemId, { tries, since });
    if (nowMs() - since > NOT_FOUND_DEADLINE_MS) {
      this.awaiting.delete(itemId);
      this.count('notFoundGivenUp');
      return;
    }
    const cap = Math.min(400, 25 * 2 ** (tries - 1));
    setTimeout(
      () => {
        if (this.awaiting.get(itemId) === waiting && !this.closing) this.resubscribe(itemId);
      },
      cap / 2 + (Math.random() * cap) / 2,
    );
  }

  /** Whether a delta starts past the next seq `item` expects, in the attempt it holds. */
  private skips(item: ViewedItem, frame: Frame): boolean {
    const attempt = Number(frame.attempt ?? 0);
    const fromSeq = Number(frame.fromSeq ?? 0);
    return attempt === item.attempt ? fromSeq > item.nextSeq : attempt > item.attempt && fromSeq > 0;
  }

  /** Whether an ending says the attempt had deltas past what `item` holds (its `seq` is the end's). */
  private missesEnd(item: ViewedItem, frame: Frame): boolean {
    if (typeof frame.seq !== 'number') return false;
    const attempt = Number(frame.attempt ?? item.attempt);
    return attempt > item.attempt ? frame.seq > 0 : attempt === item.attempt && frame.seq > item.nextSeq;
  }

  private resubscribe(itemId: string): void {
    const item = this.items.get(itemId);
    this.send(
      item && item.receipts.length > 0
        ? { action: 'subscribe', itemId, attempt: item.attempt, seq: item.nextSeq }
        : { action: 'subscribe', itemId },
    );
  }

  private apply(item: ViewedItem, type: string, frame: Frame, text: string, at: number): void {
    const num = (name: string) => Number(frame[name] ?? 0);
    switch (type) {
      case 'snapshot': {
        const offset = frame.offset === undefined ? 0 : num('offset');
        item.text = item.text.slice(0, offset) + text;
        item.attempt = num('attempt');
        item.nextSeq = num('seq');
        item.receipts.push({ at, length: item.text.length });
        if (frame.status === 'completed' || frame.status === 'failed') this.end(frame, item, frame.status);
        return;
      }
      case 'reset':
        item.text = '';
        item.attempt = num('attempt');
        item.nextSeq = 0;
        item.receipts.push({ at, length: 0 });
        return;
      case 'delta': {
        const attempt = num('attempt');
        if (attempt < item.attempt) return;
        if (attempt > item.attempt) {
          item.attempt = attempt;
          item.text = '';
          item.nextSeq = 0;
        }
        if (num('toSeq') < item.nextSeq) {
          // Already in a snapshot that overtook it (a second copy was caught on receipt).
          this.count('covered');
          return;
        }
        item.text += text;
        item.nextSeq = num('toSeq') + 1;
        item.receipts.push({ at, length: item.text.length });
        return;
      }
      case 'chunk':
        if (num('seq') !== item.nextSeq) this.anomalies.gaps++;
        item.text += text;
        item.nextSeq = num('seq') + 1;
        item.receipts.push({ at, length: item.text.length });
        return;
      case 'done':
      case 'end':
        this.end(frame, item, 'completed');
        return;
      case 'failed':
        this.end(frame, item, 'failed');
        return;
    }
  }

  private end(frame: Frame, item: ViewedItem, status: 'completed' | 'failed'): void {
    if (item.terminal) return;
    item.terminal = status;
    this.onTerminal?.(String(frame.itemId), status);
  }

  private count(type: string): void {
    this.messages[type] = (this.messages[type] ?? 0) + 1;
  }
}

function open(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
    socket.once('unexpected-response', (_req, res) => reject(new Error(`refused: HTTP ${res.statusCode}`)));
  });
}

/** Endings that carry the end record's `seq`. */
const ENDS = new Set(['done', 'failed']);
/**
 * Messages a viewer sends a second, and at once: the server's default is 20 a second counted over
 * 5-s windows, so at most 24 + 5 × 12 = 84 of its 100 a window.
 */
const SEND_RATE = 12;
const SEND_BURST = 24;

/** How long a viewer asks for an item that does not exist yet before giving it up. */
const NOT_FOUND_DEADLINE_MS = 300_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function newItem(): ViewedItem {
  return { text: '', attempt: 0, nextSeq: 0, deltasSeen: new Set(), receipts: [], terminal: undefined };
}
