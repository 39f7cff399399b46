import { type Operation, optionalStringMap, requiredString } from './context.js';

/** CreateQueue: idempotent for the same attributes, `QueueNameExists` for different ones. */
export const createQueue: Operation = async (input, { queues }) => {
  const name = requiredString(input, 'QueueName');
  await queues.create(name, optionalStringMap(input, 'Attributes'));
  return { QueueUrl: queues.urlOf(name) };
};
