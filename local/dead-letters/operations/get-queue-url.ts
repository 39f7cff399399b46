import { type Operation, requiredString } from './context.js';

/** GetQueueUrl: `QueueDoesNotExist` for an unknown name. */
export const getQueueUrl: Operation = async (input, { queues }) => {
  const name = requiredString(input, 'QueueName');
  queues.get(name);
  return { QueueUrl: queues.urlOf(name) };
};
