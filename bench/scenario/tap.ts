import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { closeServer, listenOnLoopback } from '../../local/listen.js';
import { nowMs } from '../support/clock.js';

/**
 * How a bench item's prompt starts: `bench item <itemId> [tap] ...` when its tokens should be timed,
 * `bench item <itemId> - ...` otherwise. Only timed streams are decoded, so the tap costs little at
 * a thousand concurrent streams; every stream's end is reported.
 */
export const TAP_MARKER = '[tap]';
export const promptOf = (itemId: string, tapped: boolean, text: string) =>
  `bench item ${itemId} ${tapped ? TAP_MARKER : '-'} ${text}`;
const ITEM_IN_PROMPT = /bench item ([A-Za-z0-9._:-]+) (\[tap\]|-) /;

/** When each token of one response stream left the model stand-in. */
export interface TappedStream {
  readonly itemId: string;
  /** Token i ends at UTF-16 offset `ends[i]` of the answer. */
  readonly ends: number[];
  /** `nowMs()` at which token i was read from the stand-in's socket. */
  readonly times: number[];
  /** The answer as streamed (to check what viewers end with). */
  readonly text: string;
  /** The stream ended with the model's final event. */
  readonly complete: boolean;
}

export interface TapProxy {
  readonly endpoint: string;
  /** Whether a timed stream of this item has started. */
  isTapped(itemId: string): boolean;
  stop(): Promise<void>;
}

const codec = new EventStreamCodec(toUtf8, fromUtf8);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

/**
 * A loopback proxy in front of the model stand-in that timestamps the tokens of marked streams as
 * they pass: the moment a token is read here is the moment it left the model (same thread, one
 * loopback hop). Bodies and answers go through unchanged; both flows under test call the model
 * through it, so both pay the same hop.
 */
export async function startTapProxy(options: {
  readonly target: string;
  /** A marked stream ended, with its timings. */
  readonly onStream: (stream: TappedStream) => void;
  /** Any response stream of a bench item ended (however it ended). */
  readonly onStreamEnd: (itemId: string) => void;
}): Promise<TapProxy> {
  const upstream = new URL(options.target);
  const tapped = new Set<string>();

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => forward(req, res, Buffer.concat(chunks)));
  });

  function forward(req: IncomingMessage, res: ServerResponse, body: Buffer) {
    const headers: IncomingHttpHeaders = { ...req.headers, 'content-length': String(body.length) };
    const found = req.url?.endsWith('/invoke-with-response-stream')
      ? ITEM_IN_PROMPT.exec(body.toString('utf8'))
      : undefined;
    const itemId = found?.[1];
    const out = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (itemId && found?.[2] === TAP_MARKER && up.statusCode === 200) tapStream(up, itemId);
        if (itemId) up.on('close', () => options.onStreamEnd(itemId));
        up.pipe(res);
      },
    );
    out.on('error', () => res.destroy());
    // A caller that goes away (an abort, a cancel) ends the model's stream too.
    res.on('close', () => {
      if (!res.writableFinished) out.destroy();
    });
    out.end(body);
  }

  function tapStream(up: IncomingMessage, itemId: string) {
    tapped.add(itemId);
    const ends: number[] = [];
    const times: number[] = [];
    let text = '';
    let complete = false;
    let pending: Buffer = Buffer.alloc(0);
    up.on('data', (chunk: Buffer) => {
      const at = nowMs();
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= 4) {
        const length = pending.readUInt32BE(0);
        if (pending.length < length) break;
        const message = codec.decode(pending.subarray(0, length));
        pending = pending.subarray(length);
        const event = modelEvent(message.body);
        if (event?.type === 'content_block_delta') {
          text += event.delta?.text ?? '';
          ends.push(text.length);
          times.push(at);
        } else if (event?.type === 'message_stop') complete = true;
      }
    });
    up.on('close', () => options.onStream({ itemId, ends, times, text, complete }));
  }

  const port = await listenOnLoopback(server, 0);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    isTapped: (itemId) => tapped.has(itemId),
    stop: () => closeServer(server),
  };
}

interface AnthropicStreamEvent {
  type?: string;
  delta?: { text?: string };
}

/** The model's JSON event inside one chunk frame (`{"bytes":"<base64>"}`), if it is one. */
function modelEvent(payload: Uint8Array): AnthropicStreamEvent | undefined {
  try {
    const { bytes } = JSON.parse(toUtf8(payload)) as { bytes?: string };
    return bytes
      ? (JSON.parse(Buffer.from(bytes, 'base64').toString('utf8')) as AnthropicStreamEvent)
      : undefined;
  } catch {
    return undefined;
  }
}
