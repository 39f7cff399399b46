import type { ItemHead } from '../../shared/items.js';
import type { SnapshotContent } from './framing.js';

/** What a subscribing client says it already holds (all optional). */
export interface ResumePoint {
  readonly attempt?: number;
  /** The next seq it needs. */
  readonly seq?: number;
  /** The length of the text it holds for `attempt`, in UTF-16 code units. */
  readonly offset?: number;
}

/**
 * The snapshot a subscriber receives, from the item's head and full text read after its
 * subscription was written.
 *
 * - No head: the not-started view (`queued`, attempt 0, seq 0, no text), what a client holds before
 *   an item begins; the routes answer `not_found` instead of sending it.
 * - Resume, when the client's attempt is the stored one and its seq is not ahead of the head:
 *   with an `offset` it can have, only the text after it (`offset` set); without one, a client
 *   whose seq is the head's next seq holds the whole text, so the snapshot carries none
 *   (`offset` = the text's length).
 * - Otherwise the whole text (no `offset`): the client replaces what it holds.
 * Usage and cost ride on a completed item's snapshot, the error on a failed one's.
 */
export function planSnapshot(
  itemId: string,
  head: ItemHead | undefined,
  text: string,
  resume: ResumePoint = {},
): SnapshotContent {
  if (!head) return { itemId, attempt: 0, seq: 0, status: 'queued', text: '' };
  const base = {
    itemId,
    attempt: head.attempt,
    seq: head.nextSeq,
    status: head.status,
    ...(head.status === 'completed' && head.usage ? { usage: head.usage } : {}),
    ...(head.status === 'completed' && head.costUsd !== null ? { costUsd: head.costUsd } : {}),
    ...(head.status === 'failed' && head.error ? { error: head.error } : {}),
    ...(head.status === 'queued' && head.waiting ? { waiting: head.waiting } : {}),
  };
  const sameAttempt =
    resume.attempt === head.attempt && resume.seq !== undefined && resume.seq <= head.nextSeq;
  if (sameAttempt && resume.offset !== undefined && resume.offset <= text.length)
    return { ...base, offset: resume.offset, text: text.slice(resume.offset) };
  if (sameAttempt && resume.offset === undefined && resume.seq === head.nextSeq)
    return { ...base, offset: text.length, text: '' };
  return { ...base, text };
}
