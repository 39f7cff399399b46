/**
 * The viewer client library (Node and browsers): `createStreamsClient` connects to the WebSocket
 * API, resumes after reconnects and exposes each item's exact text as an RxJS Observable.
 */
export {
  type ItemChange,
  type ItemMessage,
  ItemTracker,
  type ItemView,
  type TrackerResult,
} from './item-tracker.js';
export {
  type ConnectionState,
  createStreamsClient,
  ItemFailedError,
  ItemNotFoundError,
  type NotFoundRetryOptions,
  type ReconnectOptions,
  reconnectDelayMs,
  type ServerError,
  type StreamsClient,
  type StreamsClientOptions,
  type WebSocketConstructor,
  type WebSocketLike,
} from './streams-client.js';
