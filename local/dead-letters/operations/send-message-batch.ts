import { SqsError, sqsErrors } from '../errors.js';
import { batchEntries } from './batch.js';
import { checkBody, messageAttributes, type Operation, optionalInteger, requiredString } from './context.js';

/** SendMessageBatch: up to 10 entries; an entry's own error goes to `Failed`, the others are sent. */
export const sendMessageBatch: Operation = async (input, { queues, now }) => {
  const queue = queues.byUrl(requiredString(input, 'QueueUrl'));
  const entries = batchEntries(input);
  const total = entries.reduce(
    (sum, e) => sum + (typeof e.MessageBody === 'string' ? Buffer.byteLength(e.MessageBody) : 0),
    0,
  );
  if (total > queue.maximumMessageSize) throw sqsErrors.batchRequestTooLong(total, queue.maximumMessageSize);
  const Successful: Record<string, unknown>[] = [];
  const Failed: Record<string, unknown>[] = [];
  for (const entry of entries) {
    try {
      const body = requiredString(entry, 'MessageBody');
      const { attributes, bytes } = messageAttributes(entry);
      checkBody(body, queue.maximumMessageSize, bytes);
      const delay = optionalInteger(entry, 'DelaySeconds', 0, 900) ?? queue.delaySeconds;
      const message = await queue.send(body, attributes, delay, now());
      Successful.push({
        Id: entry.Id,
        MessageId: message.messageId,
        MD5OfMessageBody: message.md5OfBody,
        ...(message.md5OfMessageAttributes ? { MD5OfMessageAttributes: message.md5OfMessageAttributes } : {}),
      });
    } catch (err) {
      if (!(err instanceof SqsError)) throw err;
      Failed.push({
        Id: entry.Id,
        SenderFault: err.fault === 'Sender',
        Code: err.type,
        Message: err.message,
      });
    }
  }
  return { Successful, Failed };
};
