import { WebSocket } from 'ws';
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
  readonly receipts: Receipt[];
  terminal: 'completed' | 'failed' | undefined;
}

/** What a viewer saw that an exactly-once client must not see. */
export interface ViewerAnomalies {
  /** Deltas already held (dropped here by seq, as the client library drops them). */
  duplicates: number;
  /** Deltas or records that skipped a seq. */
  gaps: number;
}

type Frame = Record<string, unknown> & { type?: string; itemId?: string };

/**
 * A measuring viewer on the real WebSocket gateway: understands the pipeline's protocol
 * (snapshot, delta, reset, done, failed, split frames) and the naive baseline's per-record
 * messages, keeps each item's text and the time every message arrived. Lighter than the client
 * library (no reconnects, no observables), so a thousand of them fit beside the stack.
 */
export class BenchViewer {
  readonly items = new Map<string, ViewedItem>();
  readonly messages: Record<string, number> = {};
  readonly anomalies: ViewerAnomalies = { duplicates: 0, gaps: 0 };
  /** Called once per item when it ends. */
  onTerminal: ((itemId: string, status: 'completed' | 'failed') => void) | undefined;
  private readonly snapshots = new Map<string, () => void>();
  private readonly parts = new Map<string, string[]>();

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => this.receive(data.toString('utf8')));
  }

  /** Opens a connection with `token`; rejects when the gateway refuses it. */
  static connect(url: string, token: string): Promise<BenchViewer> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`${url}?token=${encodeURIComponent(token)}`);
      socket.once('open', () => resolve(new BenchViewer(socket)));
      socket.once('error', reject);
      socket.once('unexpected-response', (_req, res) => reject(new Error(`refused: HTTP ${res.statusCode}`)));
    });
  }

  /** Subscribes to one item; resolves when its snapshot has arrived. */
  subscribe(itemId: string): Promise<void> {
    this.items.set(itemId, newItem());
    return new Promise((resolve) => {
      this.snapshots.set(itemId, resolve);
      this.socket.send(JSON.stringify({ action: 'subscribe', itemId }));
    });
  }

  unsubscribe(itemId: string): void {
    this.socket.send(JSON.stringify({ action: 'unsubscribe', itemId }));
  }

  /** Asks for every item (a dashboard); the route sends no reply, so callers check the store. */
  subscribeAll(): void {
    this.socket.send(JSON.stringify({ action: 'subscribe', all: true }));
  }

  /** Messages received, of every type. */
  get messageCount(): number {
    return Object.values(this.messages).reduce((sum, n) => sum + n, 0);
  }

  close(): void {
    this.socket.terminate();
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
    const type = String(frame.type ?? 'unknown');
    this.count(type);
    const itemId = frame.itemId;
    if (typeof itemId !== 'string') return;
    if (type === 'error') {
      // A subscribe the route could not serve: ask again, as the client library does.
      if (this.snapshots.has(itemId))
        setTimeout(() => this.socket.send(JSON.stringify({ action: 'subscribe', itemId })), 100);
      return;
    }
    // Split frames (`more: true`) are applied once, whole.
    if (frame.more === true) {
      const key = `${type}\u0000${itemId}`;
      const held = this.parts.get(key) ?? [];
      held.push(String(frame.text ?? ''));
      this.parts.set(key, held);
      return;
    }
    const key = `${type}\u0000${itemId}`;
    const held = this.parts.get(key);
    if (held) this.parts.delete(key);
    const text = (held ?? []).join('') + String(frame.text ?? '');
    let item = this.items.get(itemId);
    if (!item) {
      item = newItem();
      this.items.set(itemId, item);
    }
    this.apply(item, type, frame, text, at);
    if (type === 'snapshot') {
      this.snapshots.get(itemId)?.();
      this.snapshots.delete(itemId);
    }
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
          this.anomalies.duplicates++;
          return;
        }
        if (num('fromSeq') !== item.nextSeq) this.anomalies.gaps++;
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

function newItem(): ViewedItem {
  return { text: '', attempt: 0, nextSeq: 0, receipts: [], terminal: undefined };
}
