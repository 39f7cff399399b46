import { checkBody, messageAttributes, type Operation, optionalInteger, requiredString } from './context.js';

/** SendMessage: the message is in the queue's file before the answer. */
export const sendMessage: Operation = async (input, { queues, now }) => {
  const queue = queues.byUrl(requiredString(input, 'QueueUrl'));
  const body = requiredString(input, 'MessageBody');
  const { attributes, bytes } = messageAttributes(input);
  checkBody(body, queue.maximumMessageSize, bytes);
  const delay = optionalInteger(input, 'DelaySeconds', 0, 900) ?? queue.delaySeconds;
  const message = await queue.send(body, attributes, delay, now());
  return {
    MessageId: message.messageId,
    MD5OfMessageBody: message.md5OfBody,
    ...(message.md5OfMessageAttributes ? { MD5OfMessageAttributes: message.md5OfMessageAttributes } : {}),
  };
};
