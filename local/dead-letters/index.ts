export { SqsError } from './errors.js';
export type { MessageAttributeValue, StoredMessage } from './queue.js';
export {
  DEFAULT_QUEUE,
  type DeadLetterMessage,
  type DeadLetterStore,
  type DeadLetterStoreOptions,
  startDeadLetterStore,
} from './server.js';
