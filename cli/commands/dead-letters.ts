/**
 * `dead-letters`: what the dead-letter store holds, and replaying it through the functions that
 * failed on it.
 *
 *   npm run cli -- dead-letters list [--id <id> ...] [--json]
 *   npm run cli -- dead-letters replay [--id <id> ...]
 */
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { describe } from '../../shared/errors.js';
import { parseCommandLine, USAGE_EXIT_CODE, UsageError } from '../args.js';
import { type Entry, entryJson, entryOf, formatEntry, oneLine } from '../dead-letters/entries.js';
import { lambdaClientOf } from '../dead-letters/invoke.js';
import { replayEntry } from '../dead-letters/replay.js';
import {
  type DeadLetterStore,
  deadLetterStoreOf,
  handBack,
  heldElsewhere,
  receiveAll,
  remove,
  type StoredMessage,
} from '../dead-letters/store.js';
import { loadTarget, type Target } from '../target.js';
import { kinesisClientOf } from './submit.js';

export const summary = 'rejected records and on-failure entries: dead-letters list | replay [--id <id> ...]';

const USAGE = `usage: npm run cli -- dead-letters list [--id <id> ...] [--json] [--stack <file>]
       npm run cli -- dead-letters replay [--id <id> ...] [--stack <file>]

  list             every entry of the dead-letter store, oldest first: records a handler rejected
                   (invalid-record, with the reason) and the event source mappings' on-failure
                   entries (shard and sequence range, condition); a message that is neither is
                   shown as unparseable
  replay           feeds each entry through the function that failed on it, with the records it
                   was given (an on-failure entry's records are read back from the stream while its
                   retention allows); removes an entry only once the function took every record.
                   A rejected record that is still invalid is rejected again: it returns to the
                   store as a new entry with the reason, and the exit code is 1
  --id <id>        only this entry (the id list shows; repeat for several)
  --json           list: the entries as JSON
  --stack <file>   target stack file (default: .local/stack.json)

Exit 0 when everything listed / replayed; 1 when an entry could not be replayed (it stays in the
store, and the reason is printed) or an --id is not in the store; 2 on a bad command line.
`;

/** What the command was asked to do. */
export interface DeadLettersRequest {
  readonly action: 'list' | 'replay';
  readonly ids: readonly string[];
  readonly json: boolean;
  readonly stack?: string;
}

/** Reads the command line; throws a `UsageError` for anything it does not take. */
export function deadLettersRequestOf(args: readonly string[]): DeadLettersRequest | 'help' {
  const { values, positionals } = parseCommandLine(
    args,
    {
      id: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      stack: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    true,
  );
  if (values.help) return 'help';
  const [action, ...extra] = positionals;
  if (action !== 'list' && action !== 'replay')
    throw new UsageError(action === undefined ? 'give list or replay' : `unknown action: ${action}`);
  if (extra.length > 0) throw new UsageError(`unexpected argument: ${extra[0]}`);
  if (values.json && action === 'replay') throw new UsageError('--json is for list');
  const ids = values.id ?? [];
  const empty = ids.find((id) => id.trim() === '');
  if (empty !== undefined) throw new UsageError('--id must not be empty');
  return { action, ids, json: values.json === true, ...(values.stack ? { stack: values.stack } : {}) };
}

/** Runs `dead-letters`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  let request: DeadLettersRequest;
  let target: Target;
  let store: DeadLetterStore;
  try {
    const parsed = deadLettersRequestOf(args);
    if (parsed === 'help') {
      process.stdout.write(USAGE);
      return 0;
    }
    request = parsed;
    target = loadTarget(request.stack === undefined ? [] : ['--stack', request.stack]);
    store = deadLetterStoreOf(target);
    // Without it a replay would invoke functions in whatever account the default credentials reach.
    if (request.action === 'replay' && !target.lambda)
      throw new Error(
        'the stack file names no functions to replay through (lambda): restart `npm start`, or redeploy and rewrite it with `npm run deploy`',
      );
  } catch (err) {
    const usage = err instanceof UsageError ? `\n${USAGE}` : '';
    process.stderr.write(`dead-letters: ${(err as Error).message}\n${usage}`);
    return USAGE_EXIT_CODE;
  }
  try {
    if (request.action === 'list') return await list(store, request);
    const kinesis = kinesisClientOf(target);
    const lambda = lambdaClientOf(target);
    try {
      return await replay(store, request, { target, kinesis, lambda });
    } finally {
      kinesis.destroy();
      lambda.destroy();
    }
  } catch (err) {
    process.stderr.write(`dead-letters: ${describe(err)}\n`);
    return 1;
  } finally {
    store.sqs.destroy();
  }
}

/** Oldest first, so a replay goes in the order things failed. */
function bySent(a: StoredMessage, b: StoredMessage): number {
  return (a.sentAt ?? '').localeCompare(b.sentAt ?? '');
}

/** Splits messages into the ones asked for and the rest; names the ids that are not there. */
function select(messages: readonly StoredMessage[], ids: readonly string[]) {
  if (ids.length === 0) return { chosen: [...messages], others: [], missing: [] };
  const wanted = new Set(ids);
  const present = new Set(messages.map((m) => m.id));
  return {
    chosen: messages.filter((m) => wanted.has(m.id)),
    others: messages.filter((m) => !wanted.has(m.id)),
    missing: [...wanted].filter((id) => !present.has(id)),
  };
}

function reportMissing(missing: readonly string[]): void {
  for (const id of missing)
    process.stderr.write(`dead-letters: no entry ${id} in the store (already replayed, or removed)\n`);
}

/** How long list hides what it reads (it hands everything back at once). */
const LIST_HOLD_SECONDS = 30;

async function list(store: DeadLetterStore, request: DeadLettersRequest): Promise<number> {
  const messages = await receiveAll(store, LIST_HOLD_SECONDS);
  await handBack(store, messages);
  const { chosen, missing } = select(messages, request.ids);
  const entries = chosen.sort(bySent).map(entryOf);
  if (request.json) process.stdout.write(`${JSON.stringify(entries.map(entryJson), null, 2)}\n`);
  else {
    process.stdout.write(entries.map(formatEntry).join(''));
    process.stdout.write(`${tally(entries)}\n`);
  }
  const held = await heldElsewhere(store);
  if (held > 0)
    process.stderr.write(`dead-letters: ${held} more held by another receiver right now; list again later\n`);
  reportMissing(missing);
  return missing.length > 0 ? 1 : 0;
}

function tally(entries: readonly Entry[]): string {
  const count = (kind: Entry['kind']) => entries.filter((e) => e.kind === kind).length;
  return `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}: ${count('invalid-record')} invalid-record, ${count('on-failure')} on-failure, ${count('unparseable')} unparseable`;
}

interface Clients {
  readonly target: Target;
  readonly kinesis: KinesisClient;
  readonly lambda: LambdaClient;
}

/**
 * How long replay hides an entry while it works on it: a replay of work items runs whole
 * generations. Nothing else reads the store, so this only keeps two replays from taking the same
 * entry at once.
 */
const REPLAY_HOLD_SECONDS = 15 * 60;

async function replay(
  store: DeadLetterStore,
  request: DeadLettersRequest,
  clients: Clients,
): Promise<number> {
  const messages = await receiveAll(store, REPLAY_HOLD_SECONDS);
  const { chosen, others, missing } = select(messages, request.ids);
  await handBack(store, others);
  reportMissing(missing);
  const places = new Set<string>();
  const pending = [...chosen].sort(bySent);
  let replayed = 0;
  try {
    while (pending.length > 0) {
      const message = pending[0] as StoredMessage;
      const entry = entryOf(message);
      const outcome = await replayEntry(entry, clients);
      if (outcome.ok) {
        await remove(store, message);
        for (const place of outcome.places) places.add(place);
        replayed++;
        process.stdout.write(`replayed ${message.id} (${entry.kind}): ${outcome.detail}\n`);
      } else {
        await handBack(store, [message]);
        process.stderr.write(
          `not replayed ${message.id} (${entry.kind}), left in the store: ${oneLine(outcome.reason)}\n`,
        );
      }
      pending.shift();
    }
  } finally {
    // Whatever an unexpected error left unprocessed goes back at once.
    await handBack(store, pending).catch(() => {});
  }
  const known = new Set(messages.map((m) => m.id));
  const rejected = await reportRejectedAgain(store, places, known);
  const left = chosen.length - replayed;
  process.stdout.write(
    `replayed ${replayed} of ${chosen.length}; ${left} left in the store; ${rejected} rejected again\n`,
  );
  return left + rejected + missing.length > 0 ? 1 : 0;
}

/**
 * Reports the records a handler rejected again while they were replayed: it sent them back to the
 * store with the reason, as new entries (the ones not there before the replay), which is the outcome
 * of the handler path, so they are named rather than hidden.
 */
async function reportRejectedAgain(
  store: DeadLetterStore,
  places: ReadonlySet<string>,
  before: ReadonlySet<string>,
): Promise<number> {
  if (places.size === 0) return 0;
  const messages = await receiveAll(store, LIST_HOLD_SECONDS);
  await handBack(store, messages);
  let rejected = 0;
  for (const entry of messages.filter((m) => !before.has(m.id)).map(entryOf)) {
    if (entry.kind !== 'invalid-record') continue;
    const { shardId, sequenceNumber } = entry.letter.record;
    if (!places.has(`${shardId}:${sequenceNumber}`)) continue;
    rejected++;
    process.stderr.write(
      `rejected again: ${shardId}:${sequenceNumber} is back in the store as ${entry.message.id}: ${oneLine(entry.letter.reason)}\n`,
    );
  }
  return rejected;
}
