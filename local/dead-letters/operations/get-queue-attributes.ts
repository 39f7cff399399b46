import { sqsErrors } from '../errors.js';
import { ENFORCED_ATTRIBUTES, STORED_ONLY_ATTRIBUTES } from '../queue.js';
import { type Operation, optionalStrings, requiredString } from './context.js';

const COMPUTED = [
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'CreatedTimestamp',
  'LastModifiedTimestamp',
  'QueueArn',
];
const KNOWN = new Set([...COMPUTED, ...Object.keys(ENFORCED_ATTRIBUTES), ...STORED_ONLY_ATTRIBUTES]);

/** GetQueueAttributes: the named attributes (or `All`); counts are exact here, approximate in SQS. */
export const getQueueAttributes: Operation = async (input, { queues, now }) => {
  const queue = queues.byUrl(requiredString(input, 'QueueUrl'));
  const names = optionalStrings(input, 'AttributeNames') ?? [];
  for (const name of names)
    if (name !== 'All' && !KNOWN.has(name)) throw sqsErrors.invalidAttributeName(name);
  if (names.length === 0) return {};
  const counts = queue.counts(now());
  const created = String(Math.floor(queue.createdTimestamp / 1000));
  const all: Record<string, string> = {
    ...queue.attributes,
    ApproximateNumberOfMessages: String(counts.visible),
    ApproximateNumberOfMessagesNotVisible: String(counts.notVisible),
    ApproximateNumberOfMessagesDelayed: String(counts.delayed),
    CreatedTimestamp: created,
    LastModifiedTimestamp: created,
    QueueArn: queues.arnOf(queue.name),
  };
  const wanted = names.includes('All') ? Object.keys(all) : names;
  const Attributes = Object.fromEntries(wanted.filter((n) => all[n] !== undefined).map((n) => [n, all[n]!]));
  return { Attributes };
};
