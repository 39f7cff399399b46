import type { ErrorInfo, Usage } from '../../shared/contracts/chunk-record.js';
import type { ItemStatus, Waiting } from '../../shared/contracts/stored-item.js';
import {
  type DeltaMessage,
  MAX_FRAME_BYTES,
  type ServerMessage,
  type SnapshotMessage,
} from '../../shared/contracts/websocket.js';
import type { ItemUpdate } from '../../shared/delivery.js';

/**
 * Server messages as WebSocket frames. API Gateway closes a connection that receives a frame over
 * 32 KB, so a message whose text would pass it is split into several frames at code-point
 * boundaries; the frame size counted is that of the serialized JSON (escapes included).
 */

const encoder = new TextEncoder();

/** UTF-8 size of a serialized frame. */
export function frameBytes(frame: string): number {
  return encoder.encode(frame).length;
}

/**
 * Bytes a code point takes inside a JSON string as `JSON.stringify` writes it: short escapes for
 * `"`, `\` and the common control characters, `\u00XX` for the other control characters and for
 * lone surrogates, UTF-8 otherwise.
 */
function jsonCost(text: string, i: number): { bytes: number; units: number } {
  const unit = text.charCodeAt(i);
  if (unit === 0x22 || unit === 0x5c) return { bytes: 2, units: 1 };
  if (unit < 0x20) {
    const short = unit === 0x08 || unit === 0x09 || unit === 0x0a || unit === 0x0c || unit === 0x0d;
    return { bytes: short ? 2 : 6, units: 1 };
  }
  if (unit < 0x80) return { bytes: 1, units: 1 };
  if (unit < 0x800) return { bytes: 2, units: 1 };
  if (unit >= 0xd800 && unit <= 0xdbff) {
    const next = text.charCodeAt(i + 1);
    if (next >= 0xdc00 && next <= 0xdfff) return { bytes: 4, units: 2 };
    return { bytes: 6, units: 1 };
  }
  if (unit >= 0xdc00 && unit <= 0xdfff) return { bytes: 6, units: 1 };
  return { bytes: 3, units: 1 };
}

/**
 * Splits `text` into the fewest pieces such that `render(piece, more)` fits in `maxBytes`, where
 * `more` is true for every piece but the last. Pieces never split a surrogate pair. `render` must
 * place the text once, as a JSON string, in an envelope whose size does not depend on the text.
 */
export function splitIntoFrames(
  text: string,
  render: (text: string, more: boolean) => string,
  maxBytes: number = MAX_FRAME_BYTES,
): string[] {
  const whole = render(text, false);
  if (frameBytes(whole) <= maxBytes) return [whole];
  const envelope = Math.max(frameBytes(render('', true)), frameBytes(render('', false)));
  const budget = maxBytes - envelope;
  // 6 bytes is the largest cost of one code unit, so every piece makes progress.
  if (budget < 6) throw new RangeError(`a frame envelope of ${envelope} bytes leaves no room in ${maxBytes}`);
  const pieces: string[] = [];
  let start = 0;
  let used = 0;
  let i = 0;
  while (i < text.length) {
    const { bytes, units } = jsonCost(text, i);
    if (used + bytes > budget) {
      pieces.push(text.slice(start, i));
      start = i;
      used = 0;
    }
    used += bytes;
    i += units;
  }
  pieces.push(text.slice(start));
  return pieces.map((piece, index) => render(piece, index < pieces.length - 1));
}

/** Serializes a message that is always small (reset, done, failed, error) as one frame. */
export function encodeFrame(message: ServerMessage): string {
  const frame = JSON.stringify(message);
  const bytes = frameBytes(frame);
  if (bytes > MAX_FRAME_BYTES)
    throw new RangeError(
      `a ${message.type} frame of ${bytes} bytes exceeds the ${MAX_FRAME_BYTES}-byte limit`,
    );
  return frame;
}

/** A snapshot before framing: `text` may be any length. */
export interface SnapshotContent {
  readonly itemId: string;
  readonly attempt: number;
  readonly seq: number;
  readonly status: ItemStatus;
  readonly text: string;
  readonly offset?: number;
  readonly usage?: Usage;
  readonly costUsd?: number;
  readonly error?: ErrorInfo;
  readonly waiting?: Waiting;
}

/**
 * A snapshot as frames: every frame carries the same attempt, seq, status and offset; all but the
 * last have `more: true`; usage and error ride on the last.
 */
export function snapshotFrames(content: SnapshotContent): string[] {
  const { itemId, attempt, seq, status, offset, usage, costUsd, error, waiting } = content;
  return splitIntoFrames(content.text, (text, more) => {
    const message: SnapshotMessage = {
      type: 'snapshot',
      itemId,
      attempt,
      seq,
      status,
      text,
      ...(more ? { more: true } : {}),
      ...(offset === undefined ? {} : { offset }),
      ...(more ? {} : { usage, costUsd, error, waiting }),
    };
    return JSON.stringify(message);
  });
}

/**
 * A delta as frames. A split delta keeps the whole record range on every frame (`fromSeq`,
 * `toSeq`) and marks all but the last with `more: true`: the range is applied only once the last
 * frame arrives, so a client that loses the connection mid-delta still resumes from `fromSeq`.
 */
export function deltaFrames(delta: Omit<DeltaMessage, 'type' | 'more'>): string[] {
  const { itemId, attempt, fromSeq, toSeq } = delta;
  return splitIntoFrames(delta.text, (text, more) => {
    const message: DeltaMessage = {
      type: 'delta',
      itemId,
      attempt,
      fromSeq,
      toSeq,
      text,
      ...(more ? { more: true } : {}),
    };
    return JSON.stringify(message);
  });
}

const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0 };
const UNKNOWN_FAILURE: ErrorInfo = { code: 'unknown', message: 'the generation failed', retryable: false };

/**
 * The frames one subscriber receives for what one batch applied to one item, in order: `reset`
 * when the batch began an attempt, the coalesced `delta` (split only past the frame limit; none
 * when the batch added no text), then `done` or `failed` when the batch ended the item.
 */
export function updateFrames(update: ItemUpdate): string[] {
  const { itemId, attempt } = update;
  // A batch that ended the item applied its end (or error) record last, and that record holds no
  // text; an update with no records (a stalled item marked failed) ends where the item stands.
  const seq = Math.max(update.toSeq, update.fromSeq);
  const frames: string[] = [];
  if (update.reset) frames.push(encodeFrame({ type: 'reset', itemId, attempt }));
  if (update.text.length > 0) {
    frames.push(
      ...deltaFrames({ itemId, attempt, fromSeq: update.fromSeq, toSeq: update.toSeq, text: update.text }),
    );
  }
  if (update.status === 'completed') {
    frames.push(
      encodeFrame({
        type: 'done',
        itemId,
        attempt,
        usage: update.usage ?? NO_USAGE,
        ...(update.costUsd === undefined ? {} : { costUsd: update.costUsd }),
        seq,
      }),
    );
  } else if (update.status === 'failed') {
    frames.push(
      encodeFrame({ type: 'failed', itemId, attempt, error: update.error ?? UNKNOWN_FAILURE, seq }),
    );
  }
  return frames;
}

const BATCH_OPEN = '{"type":"batch","messages":[';
const BATCH_CLOSE = ']}';

/**
 * Packs message frames (each already a serialized server message under `maxBytes`) into as few
 * `batch` frames as fit under `maxBytes`, keeping their order. A frame too large to share one is
 * passed on as it is (a batch subscriber also accepts single messages).
 */
export function packBatchFrames(frames: readonly string[], maxBytes: number = MAX_FRAME_BYTES): string[] {
  const envelope = frameBytes(BATCH_OPEN) + frameBytes(BATCH_CLOSE);
  const packed: string[] = [];
  let current: string[] = [];
  let used = envelope;
  const flush = () => {
    if (current.length > 0) packed.push(`${BATCH_OPEN}${current.join(',')}${BATCH_CLOSE}`);
    current = [];
    used = envelope;
  };
  for (const frame of frames) {
    const bytes = frameBytes(frame);
    if (envelope + bytes > maxBytes) {
      flush();
      packed.push(frame);
      continue;
    }
    const cost = bytes + (current.length > 0 ? 1 : 0);
    if (used + cost > maxBytes) flush();
    used += bytes + (current.length > 0 ? 1 : 0);
    current.push(frame);
  }
  flush();
  return packed;
}
