/**
 * The dead-letter store's messages as entries: a record a handler rejected (`invalid-record`, with
 * the reason), an event source mapping's on-failure entry (`on-failure`, Lambda's record of a batch
 * it gave up on: shard and sequence range), or a message that is neither (`unparseable`, shown
 * with why, never dropped).
 */
import { z } from 'zod';
import {
  InvalidRecordLetter,
  MappingFailureLetter,
  type DeadRecord,
} from '../../shared/contracts/dead-letter.js';
import { streamNameOf } from './read-back.js';
import type { StoredMessage } from './store.js';

/**
 * An on-failure entry as read: the contract's shape, but any `condition` Lambda may name in future is
 * still an entry with a range to replay, never a message left unreadable.
 */
const OnFailureLetter = MappingFailureLetter.extend({
  requestContext: MappingFailureLetter.shape.requestContext.extend({ condition: z.string() }),
});
export type OnFailureLetter = z.infer<typeof OnFailureLetter>;

/** One message of the store, read. */
export type Entry = { readonly message: StoredMessage } & (
  | { readonly kind: 'invalid-record'; readonly letter: InvalidRecordLetter }
  | { readonly kind: 'on-failure'; readonly letter: OnFailureLetter }
  | { readonly kind: 'unparseable'; readonly reason: string }
);

/** Reads a message with the schemas the senders write with. */
export function entryOf(message: StoredMessage): Entry {
  let body: unknown;
  try {
    body = JSON.parse(message.body);
  } catch (err) {
    return { message, kind: 'unparseable', reason: `not JSON (${(err as Error).message})` };
  }
  const kind = typeof body === 'object' && body !== null && 'kind' in body ? body.kind : undefined;
  if (kind === 'invalid-record') {
    const letter = InvalidRecordLetter.safeParse(body);
    if (letter.success) return { message, kind: 'invalid-record', letter: letter.data };
    return {
      message,
      kind: 'unparseable',
      reason: `a malformed invalid-record letter: ${issues(letter.error)}`,
    };
  }
  if (kind !== undefined)
    return { message, kind: 'unparseable', reason: `an unknown letter kind ${JSON.stringify(kind)}` };
  const letter = OnFailureLetter.safeParse(body);
  if (letter.success) return { message, kind: 'on-failure', letter: letter.data };
  return {
    message,
    kind: 'unparseable',
    reason: `neither a rejected record nor an on-failure entry: ${issues(letter.error)}`,
  };
}

function issues(error: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> }): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

/** Where a rejected record was: `<shard>:<sequence number>[/<index in its KPL aggregate>]`. */
export function recordPlace(record: DeadRecord): string {
  const sub = record.subSequenceNumber === undefined ? '' : `/${record.subSequenceNumber}`;
  return `${record.shardId ?? '?'}:${record.sequenceNumber}${sub}`;
}

/** The function name in a function ARN (or the text itself). */
function functionName(arn: string): string {
  return /:function:([^:]+)/.exec(arn)?.[1] ?? arn;
}

/** Reasons may span lines (zod's); a listing keeps each on one. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

/** Two lines per entry: what and where, then why. */
export function formatEntry(entry: Entry): string {
  const head = `${entry.message.id}  ${entry.kind}`;
  switch (entry.kind) {
    case 'invalid-record': {
      const { letter } = entry;
      return (
        `${head}  ${letter.source}  ${recordPlace(letter.record)}  key ${letter.record.partitionKey}  ${letter.failedAt}\n` +
        `    reason: ${oneLine(letter.reason)}\n`
      );
    }
    case 'on-failure': {
      const { requestContext: rc, KinesisBatchInfo: b } = entry.letter;
      const stream = streamNameOf(b.streamArn) ?? b.streamArn;
      return (
        `${head}  ${functionName(rc.functionArn)}  ${stream}/${b.shardId}  ${b.startSequenceNumber}..${b.endSequenceNumber}  ${b.batchSize} record(s)  ${entry.letter.timestamp}\n` +
        `    reason: ${rc.condition} after ${rc.approximateInvokeCount} invocation(s)${entry.letter.responseContext.functionError ? ` (${entry.letter.responseContext.functionError})` : ''}; records arrived ${b.approximateArrivalOfFirstRecord} .. ${b.approximateArrivalOfLastRecord}\n`
      );
    }
    case 'unparseable':
      return `${head}  ${entry.message.sentAt ?? ''}\n    reason: ${oneLine(entry.reason)}\n    body: ${oneLine(entry.message.body.slice(0, 300))}\n`;
  }
}

/** The entry as `--json` prints it. */
export function entryJson(entry: Entry): Record<string, unknown> {
  const base = { id: entry.message.id, kind: entry.kind, sentAt: entry.message.sentAt };
  if (entry.kind === 'unparseable') return { ...base, reason: entry.reason, body: entry.message.body };
  return { ...base, letter: entry.letter };
}
