import type { IncomingMessage, ServerResponse } from 'node:http';
import { WebSocket } from 'ws';
import { z } from 'zod';
import { MAX_FRAME_BYTES, MAX_MESSAGE_BYTES } from '../../shared/contracts/websocket.js';
import { sleep } from '../../shared/retry.js';
import type { ConnectionContext } from './events.js';

/**
 * The API Gateway management API (`@connections`) of the local gateway, as the real
 * `ApiGatewayManagementApiClient` calls it: `POST` (raw body → one text message), `GET`
 * (connection info, lowerCamel keys, ISO-8601 times), `DELETE` (close). Errors carry
 * `x-amzn-errortype` so the SDK raises typed exceptions (`GoneException`, ...).
 */

/** A connection the gateway holds open. */
export interface LiveConnection {
  readonly context: ConnectionContext;
  readonly socket: WebSocket;
  lastActiveAt: number;
  /** Whether closing it calls `$disconnect` (false: it vanishes as after a lost `$disconnect`). */
  notifyDisconnect: boolean;
}

/** Faults injected on posts to one connection (tests of throttling and slow connections). */
export interface PostFault {
  /** Answer this many of the next posts with 429 `LimitExceededException`. */
  throttle?: number;
  /** Hold every post this long before answering. */
  delayMs?: number;
}

/** Counters of the management API. */
export interface ManagementStats {
  /** `POST @connections` requests, whatever their answer. */
  posts: number;
  /** Posts delivered to a socket. */
  delivered: number;
  deliveredBytes: number;
  largestPostBytes: number;
  /** Posts over the 32 KB frame limit (sent as several frames, as API Gateway must). */
  oversizedPosts: number;
  gone: number;
  throttled: number;
}

/** The gateway state the management API reads and changes. */
export interface ManagementApi {
  readonly stage: string;
  readonly connections: Map<string, LiveConnection>;
  readonly faults: Map<string, PostFault>;
  readonly stats: ManagementStats;
}

const PATH = /^\/(?:([^/@]+)\/)?@connections\/([^/?]+)\/?$/;

const ManagementRequest = z.object({
  method: z.enum(['GET', 'POST', 'DELETE']),
  stage: z.string().optional(),
  connectionId: z.string().min(1).max(256),
});

/** True when `url` is a management API path (`[/{stage}]/@connections/{id}`). */
export function isManagementPath(url: string): boolean {
  return PATH.test(new URL(url, 'http://local').pathname);
}

function fail(res: ServerResponse, status: number, errorType: string, message: string | null): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': errorType });
  res.end(JSON.stringify({ message }));
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  // Read to the end even past the limit: leaving the loop early would destroy the socket.
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size <= limit) chunks.push(buffer);
  }
  return size > limit ? undefined : Buffer.concat(chunks);
}

function send(socket: WebSocket, data: Buffer): Promise<void> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length || pieces.length === 0; at += MAX_FRAME_BYTES)
    pieces.push(data.subarray(at, at + MAX_FRAME_BYTES));
  return new Promise((resolve, reject) => {
    pieces.forEach((piece, index) => {
      const fin = index === pieces.length - 1;
      socket.send(piece, { binary: false, fin }, (err) => {
        if (err) reject(err);
        else if (fin) resolve();
      });
    });
  });
}

/** Serves one management API request. */
export async function handleManagementRequest(
  api: ManagementApi,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const match = PATH.exec(new URL(req.url ?? '/', 'http://local').pathname);
  const parsed = ManagementRequest.safeParse({
    method: req.method,
    stage: match?.[1],
    connectionId: match?.[2] === undefined ? undefined : decodeURIComponent(match[2]),
  });
  if (!match || !parsed.success) {
    req.resume();
    return fail(res, match ? 405 : 404, match ? 'MethodNotAllowedException' : 'NotFoundException', null);
  }
  const { method, stage, connectionId } = parsed.data;
  if (stage !== undefined && stage !== api.stage) {
    req.resume();
    return fail(res, 403, 'ForbiddenException', `no stage ${stage}; this gateway serves ${api.stage}`);
  }
  const connection = api.connections.get(connectionId);
  const open = connection?.socket.readyState === WebSocket.OPEN;

  if (method === 'POST') {
    api.stats.posts++;
    const data = await readBody(req, MAX_MESSAGE_BYTES);
    if (data === undefined) {
      return fail(res, 413, 'PayloadTooLargeException', `the data exceeds ${MAX_MESSAGE_BYTES} bytes`);
    }
    const fault = api.faults.get(connectionId);
    if (fault?.delayMs) await sleep(fault.delayMs);
    if (fault?.throttle && fault.throttle > 0) {
      fault.throttle--;
      api.stats.throttled++;
      return fail(res, 429, 'LimitExceededException', 'Rate exceeded');
    }
    if (!connection || !open) {
      api.stats.gone++;
      return fail(res, 410, 'GoneException', null);
    }
    try {
      await send(connection.socket, data);
    } catch {
      api.stats.gone++;
      return fail(res, 410, 'GoneException', null);
    }
    connection.lastActiveAt = Date.now();
    api.stats.delivered++;
    api.stats.deliveredBytes += data.length;
    api.stats.largestPostBytes = Math.max(api.stats.largestPostBytes, data.length);
    if (data.length > MAX_FRAME_BYTES) api.stats.oversizedPosts++;
    res.writeHead(200).end();
    return;
  }

  req.resume();
  if (!connection || !open) {
    api.stats.gone++;
    return fail(res, 410, 'GoneException', null);
  }
  if (method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        connectedAt: new Date(connection.context.connectedAt).toISOString(),
        lastActiveAt: new Date(connection.lastActiveAt).toISOString(),
        identity: { sourceIp: connection.context.sourceIp, userAgent: connection.context.userAgent },
      }),
    );
    return;
  }
  connection.socket.close(1000, 'Connection deleted');
  res.writeHead(204).end();
}
