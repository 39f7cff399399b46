import type { ErrorInfo, Usage } from '../contracts/chunk-record.js';
import type { ItemStatus } from '../contracts/stored-item.js';
import type {
  ClientMessage,
  DeltaMessage,
  DoneMessage,
  FailedMessage,
  ResetMessage,
  SnapshotMessage,
} from '../contracts/websocket.js';

/** What a viewer knows about one item. */
export interface ItemView {
  readonly itemId: string;
  readonly attempt: number;
  /** The next seq expected. */
  readonly seq: number;
  readonly status: ItemStatus;
  readonly text: string;
  readonly usage?: Usage;
  readonly costUsd?: number;
  readonly error?: ErrorInfo;
}

/** A change to an item's view, with the view after it. */
export type ItemChange =
  /** Text arrived. `replaced`: the whole text changed (redraw); otherwise `appended` was added. */
  | { readonly kind: 'text'; readonly view: ItemView; readonly appended: string; readonly replaced: boolean }
  /** A new attempt began: the text was dropped. */
  | { readonly kind: 'reset'; readonly view: ItemView }
  | { readonly kind: 'done'; readonly view: ItemView }
  | { readonly kind: 'failed'; readonly view: ItemView };

/** Server messages about one item. */
export type ItemMessage = SnapshotMessage | DeltaMessage | ResetMessage | DoneMessage | FailedMessage;

/** What receiving a message led to; `resubscribe`: send `subscribeRequest()` now. */
export interface TrackerResult {
  readonly changes: ItemChange[];
  readonly resubscribe: boolean;
}

type LiveMessage = Exclude<ItemMessage, SnapshotMessage>;

const NOTHING: TrackerResult = { changes: [], resubscribe: false };

const isTerminal = (status: ItemStatus) => status === 'completed' || status === 'failed';

/**
 * Whether an attempt's end arrived before the last of its text: the end's `seq` is past the next
 * seq expected, so deltas were missed with no later delta to show the gap.
 */
const missesText = (view: ItemView, end: DoneMessage | FailedMessage) =>
  end.seq !== undefined && view.seq < end.seq;

/**
 * One item's text as a viewer reassembles it from snapshots and deltas, exactly once. Pure: no
 * I/O; the client library feeds it messages and sends the subscribe requests it asks for.
 *
 * - Frames of a split snapshot or delta (`more: true`) are joined before anything is applied.
 * - Until the snapshot answering a subscribe arrives, messages are held, then replayed on top.
 * - Duplicates are dropped by (attempt, seq): an older attempt, or a delta ending before the
 *   next seq expected (already in the snapshot, or received twice).
 * - A delta starting past the next seq (a missed delta), an end whose `seq` is past it (missed
 *   last deltas), a delta or end of an attempt never seen begun, or a resumed snapshot that does
 *   not fit the text held asks for a resubscribe.
 */
export class ItemTracker {
  readonly itemId: string;
  #view: ItemView | undefined;
  #awaiting = false;
  #fullNext = false;
  #held: LiveMessage[] = [];
  #snapshotParts: SnapshotMessage[] = [];
  #deltaParts: DeltaMessage[] = [];

  constructor(itemId: string) {
    this.itemId = itemId;
  }

  /** The view, once a snapshot (or the item's beginning) has been seen. */
  get view(): ItemView | undefined {
    return this.#view;
  }

  /** A subscribe was sent and its snapshot has not arrived. */
  get awaitingSnapshot(): boolean {
    return this.#awaiting;
  }

  /** The item ended (completed or failed): nothing more will change. */
  get terminal(): boolean {
    return this.#view !== undefined && isTerminal(this.#view.status);
  }

  /**
   * The subscribe message to send, resuming from what is held when anything is (attempt, next
   * seq, text length); marks the tracker as waiting for its snapshot.
   */
  subscribeRequest(): Extract<ClientMessage, { action: 'subscribe'; itemId: string }> {
    this.#awaiting = true;
    const view = this.#view;
    if (!view || this.#fullNext) {
      this.#fullNext = false;
      return { action: 'subscribe', itemId: this.itemId };
    }
    return {
      action: 'subscribe',
      itemId: this.itemId,
      attempt: view.attempt,
      seq: view.seq,
      offset: view.text.length,
    };
  }

  /**
   * Starts an item seen first through an every-item subscription. Returns true when `first` is
   * its beginning (a `reset`, or a delta from seq 0): the tracker then needs no snapshot and
   * `first` should be passed to `receive`. Otherwise the item must be subscribed to.
   */
  adopt(first: ItemMessage): boolean {
    const fromStart = first.type === 'reset' || (first.type === 'delta' && first.fromSeq === 0);
    if (fromStart) this.#view = { itemId: this.itemId, attempt: 0, seq: 0, status: 'queued', text: '' };
    return fromStart;
  }

  /** The connection closed: partly received split messages are dropped, the subscribe is void. */
  connectionLost(): void {
    this.#snapshotParts = [];
    this.#deltaParts = [];
    this.#awaiting = false;
  }

  /** Applies one server message about this item. */
  receive(message: ItemMessage): TrackerResult {
    if (message.type === 'snapshot') {
      const snapshot = this.#join(message);
      return snapshot ? this.#applySnapshot(snapshot) : NOTHING;
    }
    let whole: LiveMessage | undefined = message;
    if (message.type === 'delta') whole = this.#joinDelta(message);
    if (!whole) return NOTHING;
    if (!this.#view || this.#awaiting) {
      this.#held.push(whole);
      return NOTHING;
    }
    return this.#applyLive(whole);
  }

  #join(frame: SnapshotMessage): SnapshotMessage | undefined {
    const first = this.#snapshotParts[0];
    const same =
      first !== undefined &&
      first.attempt === frame.attempt &&
      first.seq === frame.seq &&
      first.offset === frame.offset;
    if (!same) this.#snapshotParts = [];
    this.#snapshotParts.push(frame);
    if (frame.more) return undefined;
    const parts = this.#snapshotParts;
    this.#snapshotParts = [];
    return { ...frame, text: parts.map((p) => p.text).join(''), more: undefined };
  }

  #joinDelta(frame: DeltaMessage): DeltaMessage | undefined {
    if (!frame.more && this.#deltaParts.length === 0) return frame;
    const first = this.#deltaParts[0];
    const same =
      first !== undefined &&
      first.attempt === frame.attempt &&
      first.fromSeq === frame.fromSeq &&
      first.toSeq === frame.toSeq;
    if (!same) this.#deltaParts = [];
    this.#deltaParts.push(frame);
    if (frame.more) return undefined;
    const parts = this.#deltaParts;
    this.#deltaParts = [];
    return { ...frame, text: parts.map((p) => p.text).join(''), more: undefined };
  }

  #resync(message?: LiveMessage): TrackerResult {
    if (message) this.#held.push(message);
    if (this.#awaiting) return NOTHING;
    this.#awaiting = true;
    return { changes: [], resubscribe: true };
  }

  #applySnapshot(snapshot: SnapshotMessage): TrackerResult {
    const held = this.#view;
    if (!this.#awaiting && held) {
      // Not asked for (a duplicate answer): only ever move forward.
      const newer =
        snapshot.attempt > held.attempt || (snapshot.attempt === held.attempt && snapshot.seq > held.seq);
      if (!newer || snapshot.offset !== undefined) return NOTHING;
    }
    let text: string;
    if (snapshot.offset !== undefined) {
      if (!held || held.attempt !== snapshot.attempt || snapshot.offset > held.text.length) {
        // The server resumed from a point this tracker does not hold: start over, in full.
        this.#awaiting = false;
        this.#fullNext = true;
        return this.#resync();
      }
      text = held.text.slice(0, snapshot.offset) + snapshot.text;
    } else text = snapshot.text;

    // Nothing held reads as an empty text; a different attempt's text is never a prefix.
    const before = !held ? '' : held.attempt === snapshot.attempt ? held.text : undefined;
    const appended = before !== undefined && text.startsWith(before) ? text.slice(before.length) : undefined;
    this.#view = {
      itemId: this.itemId,
      attempt: snapshot.attempt,
      seq: snapshot.seq,
      status: snapshot.status,
      text,
      ...(snapshot.usage ? { usage: snapshot.usage } : {}),
      ...(snapshot.costUsd !== undefined ? { costUsd: snapshot.costUsd } : {}),
      ...(snapshot.error ? { error: snapshot.error } : {}),
    };
    this.#awaiting = false;
    const changes: ItemChange[] = [
      {
        kind: 'text',
        view: this.#view,
        appended: appended ?? text,
        replaced: appended === undefined,
      },
    ];
    if (snapshot.status === 'completed') changes.push({ kind: 'done', view: this.#view });
    if (snapshot.status === 'failed') changes.push({ kind: 'failed', view: this.#view });

    const replay = this.#held;
    this.#held = [];
    let resubscribe = false;
    for (const message of replay) {
      if (this.#awaiting) {
        this.#held.push(message);
        continue;
      }
      const result = this.#applyLive(message);
      changes.push(...result.changes);
      resubscribe ||= result.resubscribe;
    }
    return { changes, resubscribe };
  }

  #applyLive(message: LiveMessage): TrackerResult {
    const view = this.#view;
    if (!view || isTerminal(view.status)) return NOTHING;
    if (message.attempt < view.attempt) return NOTHING;
    switch (message.type) {
      case 'reset': {
        if (message.attempt === view.attempt) return NOTHING;
        this.#view = { itemId: this.itemId, attempt: message.attempt, seq: 0, status: 'streaming', text: '' };
        return { changes: [{ kind: 'reset', view: this.#view }], resubscribe: false };
      }
      case 'delta': {
        const changes: ItemChange[] = [];
        let current = view;
        if (message.attempt > view.attempt) {
          if (message.fromSeq !== 0) return this.#resync(message);
          current = { itemId: this.itemId, attempt: message.attempt, seq: 0, status: 'streaming', text: '' };
          changes.push({ kind: 'reset', view: current });
        }
        if (message.toSeq < current.seq) return NOTHING;
        if (message.fromSeq !== current.seq) return this.#resync(message);
        this.#view = {
          ...current,
          seq: message.toSeq + 1,
          status: 'streaming',
          text: current.text + message.text,
        };
        changes.push({ kind: 'text', view: this.#view, appended: message.text, replaced: false });
        return { changes, resubscribe: false };
      }
      case 'done': {
        if (message.attempt > view.attempt || missesText(view, message)) return this.#resync(message);
        this.#view = {
          ...view,
          status: 'completed',
          usage: message.usage,
          ...(message.costUsd !== undefined ? { costUsd: message.costUsd } : {}),
        };
        return { changes: [{ kind: 'done', view: this.#view }], resubscribe: false };
      }
      case 'failed': {
        if (message.attempt > view.attempt || missesText(view, message)) return this.#resync(message);
        this.#view = { ...view, status: 'failed', error: message.error };
        return { changes: [{ kind: 'failed', view: this.#view }], resubscribe: false };
      }
    }
  }
}
