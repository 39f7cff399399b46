import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import type { ModelEvent } from './model-events.js';

/**
 * Frames of `application/vnd.amazon.eventstream`, the binary framing of
 * InvokeModelWithResponseStream: each frame has a prelude, typed headers, a payload and CRCs.
 */

/** The exception frames Bedrock can end a response stream with (members of the SDK's `ResponseStream`). */
export const STREAM_EXCEPTIONS = [
  'modelStreamErrorException',
  'serviceUnavailableException',
  'throttlingException',
  'internalServerException',
  'modelTimeoutException',
] as const;
export type StreamException = (typeof STREAM_EXCEPTIONS)[number];

const codec = new EventStreamCodec(toUtf8, fromUtf8);

const text = (value: string) => ({ type: 'string' as const, value });

const CHUNK_HEADERS = {
  ':event-type': text('chunk'),
  ':content-type': text('application/json'),
  ':message-type': text('event'),
};

const PADDING = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/**
 * A `chunk` event carrying one model event: payload `{"bytes": base64(JSON), "p": padding}`.
 * Bedrock pads each payload with a run of filler characters (`p`) so frame sizes do not reveal
 * the text; the SDK ignores it, and clients must too.
 */
export function chunkFrame(event: ModelEvent): Uint8Array {
  const bytes = Buffer.from(JSON.stringify(event), 'utf8').toString('base64');
  const p = PADDING.slice(0, 1 + ((bytes.length * 7) % PADDING.length));
  return codec.encode({ headers: CHUNK_HEADERS, body: Buffer.from(JSON.stringify({ bytes, p }), 'utf8') });
}

/** An exception frame: the SDK's `for await` over the stream throws the matching typed error. */
export function exceptionFrame(type: StreamException, body: Record<string, unknown>): Uint8Array {
  return codec.encode({
    headers: {
      ':exception-type': text(type),
      ':content-type': text('application/json'),
      ':message-type': text('exception'),
    },
    body: Buffer.from(JSON.stringify(body), 'utf8'),
  });
}
