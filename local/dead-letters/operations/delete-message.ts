import { type Operation, requiredString } from './context.js';

/** DeleteMessage by receipt handle; `ReceiptHandleIsInvalid` for a handle this queue never issued. */
export const deleteMessage: Operation = async (input, { queues }) => {
  const queue = queues.byUrl(requiredString(input, 'QueueUrl'));
  await queue.delete(requiredString(input, 'ReceiptHandle'));
  return {};
};
