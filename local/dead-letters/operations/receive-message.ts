import { sleep } from '../../../shared/retry.js';
import type { LiveMessage } from '../queue.js';
import { type Operation, optionalInteger, optionalStrings, requiredString } from './context.js';

const SYSTEM_ATTRIBUTES = [
  'SenderId',
  'SentTimestamp',
  'ApproximateReceiveCount',
  'ApproximateFirstReceiveTimestamp',
];

function systemAttributes(message: LiveMessage, names: string[]): Record<string, string> | undefined {
  const wanted = names.includes('All')
    ? SYSTEM_ATTRIBUTES
    : names.filter((n) => SYSTEM_ATTRIBUTES.includes(n));
  if (wanted.length === 0) return undefined;
  const values: Record<string, string> = {
    SenderId: '000000000000',
    SentTimestamp: String(message.sentTimestamp),
    ApproximateReceiveCount: String(message.receiveCount),
    ApproximateFirstReceiveTimestamp: String(message.firstReceiveTimestamp ?? ''),
  };
  return Object.fromEntries(wanted.map((n) => [n, values[n]!]));
}

function selectedMessageAttributes(message: LiveMessage, names: string[]): LiveMessage['messageAttributes'] {
  if (!message.messageAttributes || names.length === 0) return undefined;
  const all = names.includes('All') || names.includes('.*');
  const picked = Object.entries(message.messageAttributes).filter(
    ([name]) => all || names.some((n) => (n.endsWith('.*') ? name.startsWith(n.slice(0, -1)) : name === n)),
  );
  return picked.length > 0 ? Object.fromEntries(picked) : undefined;
}

/**
 * ReceiveMessage: up to `MaxNumberOfMessages` (1–10) visible messages, hidden for the visibility
 * timeout. With `WaitTimeSeconds` (0–20) it long-polls until a message is visible or time is up.
 */
export const receiveMessage: Operation = async (input, { queues, now, maxWaitTimeSeconds, stopping }) => {
  const queue = queues.byUrl(requiredString(input, 'QueueUrl'));
  const max = optionalInteger(input, 'MaxNumberOfMessages', 1, 10) ?? 1;
  const visibility = optionalInteger(input, 'VisibilityTimeout', 0, 43_200) ?? queue.visibilityTimeoutSeconds;
  const waitSeconds = optionalInteger(input, 'WaitTimeSeconds', 0, 20) ?? queue.receiveWaitTimeSeconds;
  const attributeNames = [
    ...(optionalStrings(input, 'AttributeNames') ?? []),
    ...(optionalStrings(input, 'MessageSystemAttributeNames') ?? []),
  ];
  const messageAttributeNames = optionalStrings(input, 'MessageAttributeNames') ?? [];
  const deadline = now() + Math.min(waitSeconds, maxWaitTimeSeconds) * 1000;
  let taken = queue.receive(max, visibility, now());
  while (taken.length === 0 && now() < deadline && !stopping.aborted) {
    const change = queue.waitForChange();
    // Wake for a send, for an in-flight message becoming visible again, or at the deadline.
    const next = queue.nextVisibleAt(now());
    const until = Math.min(deadline, next ?? deadline);
    try {
      await Promise.race([change.promise, sleep(Math.max(1, until - now()), stopping)]);
    } catch {
      // Stopping: answer what there is (nothing).
    } finally {
      change.cancel();
    }
    taken = queue.receive(max, visibility, now());
  }
  if (taken.length === 0) return {};
  return {
    Messages: taken.map((m) => {
      const attributes = systemAttributes(m, attributeNames);
      const selected = selectedMessageAttributes(m, messageAttributeNames);
      return {
        MessageId: m.messageId,
        ReceiptHandle: m.receiptHandle,
        MD5OfBody: m.md5OfBody,
        Body: m.body,
        ...(attributes ? { Attributes: attributes } : {}),
        ...(selected
          ? { MessageAttributes: selected, MD5OfMessageAttributes: m.md5OfMessageAttributes }
          : {}),
      };
    }),
  };
};
