import { sqsErrors } from '../errors.js';
import { type Operation, requiredString } from './context.js';

/** PurgeQueue: deletes every message; a second purge within the cooldown (60 s in SQS) is refused. */
export const purgeQueue: Operation = async (input, { queues, now, purgeCooldownMs }) => {
  const queue = queues.byUrl(requiredString(input, 'QueueUrl'));
  const at = now();
  if (queue.lastPurgeAt > 0 && at - queue.lastPurgeAt < purgeCooldownMs)
    throw sqsErrors.purgeQueueInProgress(queue.name, purgeCooldownMs);
  queue.lastPurgeAt = at;
  await queue.purge();
  return {};
};
