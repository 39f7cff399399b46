import { sqsErrors } from '../errors.js';
import { type Operation, optionalInteger, requiredString } from './context.js';

/** ChangeMessageVisibility of an in-flight message (0 makes it visible at once). */
export const changeMessageVisibility: Operation = async (input, { queues, now }) => {
  const queue = queues.byUrl(requiredString(input, 'QueueUrl'));
  const handle = requiredString(input, 'ReceiptHandle');
  const timeout = optionalInteger(input, 'VisibilityTimeout', 0, 43_200);
  if (timeout === undefined) throw sqsErrors.missingParameter('VisibilityTimeout');
  queue.changeVisibility(handle, timeout, now());
  return {};
};
