import { SqsError } from '../errors.js';
import { batchEntries } from './batch.js';
import { type Operation, requiredString } from './context.js';

/** DeleteMessageBatch: up to 10 receipt handles; an invalid one goes to `Failed`. */
export const deleteMessageBatch: Operation = async (input, { queues }) => {
  const queue = queues.byUrl(requiredString(input, 'QueueUrl'));
  const Successful: Record<string, unknown>[] = [];
  const Failed: Record<string, unknown>[] = [];
  for (const entry of batchEntries(input)) {
    try {
      await queue.delete(requiredString(entry, 'ReceiptHandle'));
      Successful.push({ Id: entry.Id });
    } catch (err) {
      if (!(err instanceof SqsError)) throw err;
      Failed.push({ Id: entry.Id, SenderFault: true, Code: err.type, Message: err.message });
    }
  }
  return { Successful, Failed };
};
