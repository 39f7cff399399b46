/**
 * Reading and removing messages of the dead-letter store (an SQS queue in AWS, the SQS-compatible
 * stand-in locally) with the real SQS client.
 *
 * SQS has no "peek": the only way to see a message is to receive it, which hides it from other
 * receivers for a visibility timeout. `list` therefore hands every message back at once
 * (visibility 0) after reading it, and `replay` holds the ones it replays until it deletes them
 * (replayed) or hands them back (not selected, or the replay failed).
 */
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { withRetry } from '../../shared/retry.js';
import type { Target } from '../target.js';

/** One received message of the store. */
export interface StoredMessage {
  /** SQS's message id: stable for the message's whole life in the queue. */
  readonly id: string;
  /** Valid for this receive only; needed to delete the message or hand it back. */
  readonly receiptHandle: string;
  readonly body: string;
  /** When the message was sent (ISO 8601), when the store says. */
  readonly sentAt?: string;
}

/** Where the store is and a client for it. */
export interface DeadLetterStore {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
}

/** The most messages one command reads; a store holding more is read in several runs. */
export const MAX_MESSAGES = 10_000;

/** A client for the target's dead-letter store; throws when the stack file does not name one. */
export function deadLetterStoreOf(target: Target): DeadLetterStore {
  const store = target.deadLetters;
  if (!store)
    throw new Error(
      'the stack file names no dead-letter store (deadLetters.queueUrl): redeploy and rewrite it with `npm run deploy`',
    );
  const endpoint = store.endpoint;
  const sqs = new SQSClient({
    region: target.region,
    ...(endpoint ? { endpoint } : {}),
    ...(target.credentials ? { credentials: target.credentials } : {}),
    ...(endpoint?.startsWith('http://') ? { requestHandler: new NodeHttpHandler() } : {}),
  });
  return { sqs, queueUrl: store.queueUrl };
}

const retry = (what: string) => ({ what, maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 2_000 });

/**
 * Receives every visible message, hiding each for `visibilitySeconds`. Long polling (1 s) asks
 * every SQS server, so an empty answer means the queue has no visible message left.
 */
export async function receiveAll(
  store: DeadLetterStore,
  visibilitySeconds: number,
): Promise<StoredMessage[]> {
  const seen = new Map<string, StoredMessage>();
  while (seen.size < MAX_MESSAGES) {
    const { Messages = [] } = await withRetry(
      () =>
        store.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: store.queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 1,
            VisibilityTimeout: visibilitySeconds,
            MessageSystemAttributeNames: ['SentTimestamp'],
          }),
        ),
      retry('ReceiveMessage from the dead-letter store'),
    );
    if (Messages.length === 0) break;
    for (const m of Messages) {
      if (!m.MessageId || !m.ReceiptHandle) continue;
      const sent = Number(m.Attributes?.SentTimestamp);
      // A standard queue may deliver a message twice; the later receipt handle is the valid one.
      seen.set(m.MessageId, {
        id: m.MessageId,
        receiptHandle: m.ReceiptHandle,
        body: m.Body ?? '',
        ...(Number.isFinite(sent) ? { sentAt: new Date(sent).toISOString() } : {}),
      });
    }
  }
  return [...seen.values()];
}

/** Makes messages visible again at once (they stay in the store). */
export async function handBack(store: DeadLetterStore, messages: readonly StoredMessage[]): Promise<void> {
  for (const m of messages) {
    await withRetry(
      () =>
        store.sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl: store.queueUrl,
            ReceiptHandle: m.receiptHandle,
            VisibilityTimeout: 0,
          }),
        ),
      retry('ChangeMessageVisibility on the dead-letter store'),
    );
  }
}

/** Deletes one message (after its replay succeeded). */
export async function remove(store: DeadLetterStore, message: StoredMessage): Promise<void> {
  await withRetry(
    () =>
      store.sqs.send(
        new DeleteMessageCommand({ QueueUrl: store.queueUrl, ReceiptHandle: message.receiptHandle }),
      ),
    retry('DeleteMessage from the dead-letter store'),
  );
}

/** Messages another receiver holds right now (they cannot be listed until it lets them go). */
export async function heldElsewhere(store: DeadLetterStore): Promise<number> {
  const { Attributes } = await withRetry(
    () =>
      store.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: store.queueUrl,
          AttributeNames: ['ApproximateNumberOfMessagesNotVisible'],
        }),
      ),
    retry('GetQueueAttributes of the dead-letter store'),
  );
  return Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
}
