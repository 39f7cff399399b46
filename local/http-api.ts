/**
 * The local stand-in of the API Gateway HTTP API: a loopback HTTP server that turns each request
 * into a payload-format-2.0 event and calls the same handler the Lambda function runs.
 *
 * Routes are those of the deployed API: `GET /items`, `GET /items/{itemId}`, and `$default` for
 * every other request (the handler answers it with a JSON 404/405), unless `fallback` serves it
 * first (the dashboard's static files). `GET /openapi.json` and `GET /asyncapi.json` serve the
 * contracts (`shared/specs`), without a token, so that client generators can point at the stack.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2 } from 'aws-lambda';
import { specFiles } from '../shared/specs/index.js';
import { closeServer, listenOnLoopback } from './listen.js';

export interface HttpApiOptions {
  readonly handler: (event: APIGatewayProxyEventV2) => Promise<APIGatewayProxyResultV2>;
  /** 0 or omitted picks a free port. */
  readonly port?: number;
  /** Called for requests no API route matches; returns true when it has answered the request. */
  readonly fallback?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Told about handler failures (answered 500 as API Gateway does); default: standard error. */
  readonly onError?: (err: unknown) => void;
}

export interface RunningHttpApi {
  /** Base URL, without a trailing slash. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/** API Gateway's limit on a request payload. */
const MAX_BODY_BYTES = 10 * 1024 * 1024;

interface RouteMatch {
  readonly routeKey: string;
  readonly pathParameters?: Record<string, string>;
}

const decodeSegment = (segment: string) => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
};

function matchRoute(method: string, path: string): RouteMatch | undefined {
  if (method !== 'GET') return undefined;
  if (path === '/items') return { routeKey: 'GET /items' };
  const match = /^\/items\/([^/]+)$/.exec(path);
  if (match?.[1])
    return { routeKey: 'GET /items/{itemId}', pathParameters: { itemId: decodeSegment(match[1]) } };
  return undefined;
}

const TEXTUAL = /^(text\/|application\/(json|x-www-form-urlencoded|xml|javascript))/;

/** `12/Mar/2020:19:03:58 +0000`, the format of `requestContext.time`. */
function requestTime(date: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(date.getUTCDate())}/${months[date.getUTCMonth()]}/${date.getUTCFullYear()}:${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`;
}

/** Builds the HTTP API event API Gateway would send for a request. */
export function toHttpApiEvent(
  req: IncomingMessage,
  body: Buffer,
  route: RouteMatch | undefined,
  now = new Date(),
): APIGatewayProxyEventV2 {
  const target = req.url ?? '/';
  const queryAt = target.indexOf('?');
  const rawPath = queryAt >= 0 ? target.slice(0, queryAt) : target;
  const rawQueryString = queryAt >= 0 ? target.slice(queryAt + 1) : '';
  const query: Record<string, string> = {};
  // Repeated parameters arrive joined with commas, as API Gateway joins them.
  for (const [name, value] of new URLSearchParams(rawQueryString)) {
    query[name] = query[name] === undefined ? value : `${query[name]},${value}`;
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || name === 'cookie') continue;
    headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const cookies = req.headers.cookie?.split(/;\s*/).filter(Boolean);
  const routeKey = route?.routeKey ?? '$default';
  const host = headers.host ?? 'localhost';
  const textual = body.length === 0 || TEXTUAL.test(headers['content-type'] ?? 'text/plain');
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    ...(cookies?.length ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length > 0 ? { queryStringParameters: query } : {}),
    ...(route?.pathParameters ? { pathParameters: route.pathParameters } : {}),
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: host,
      domainPrefix: host.split('.')[0] ?? host,
      http: {
        method: req.method ?? 'GET',
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: requestTime(now),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 ? { body: body.toString(textual ? 'utf8' : 'base64') } : {}),
    isBase64Encoded: body.length > 0 && !textual,
  };
}

/** Writes a handler's result the way API Gateway turns it into an HTTP response. */
function writeResult(res: ServerResponse, result: APIGatewayProxyResultV2): void {
  if (typeof result === 'string') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(result);
    return;
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(result.headers ?? {})) headers[name] = String(value);
  res.statusCode = result.statusCode ?? 200;
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  if (result.cookies?.length) res.setHeader('set-cookie', result.cookies);
  const body = result.body ?? '';
  res.end(result.isBase64Encoded ? Buffer.from(body, 'base64') : body);
}

function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** The contract documents by request path, rendered on the first request for one. */
function specRoutes(): (path: string) => string | undefined {
  let routes: Map<string, string> | undefined;
  return (path) => {
    if (path !== '/openapi.json' && path !== '/asyncapi.json') return undefined;
    routes ??= new Map(
      Object.entries(specFiles()).map(([file, text]) => [`/${file.split('/').pop()}`, text]),
    );
    return routes.get(path);
  };
}

/** Starts the local HTTP API on loopback. */
export async function startHttpApi(options: HttpApiOptions): Promise<RunningHttpApi> {
  const specs = specRoutes();
  const onError =
    options.onError ?? ((err: unknown) => process.stderr.write(`http api: handler failed: ${String(err)}\n`));
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const route = matchRoute(req.method ?? 'GET', path);
    const spec = req.method === 'GET' ? specs(path) : undefined;
    if (spec !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(spec);
      return;
    }
    if (!route && options.fallback?.(req, res)) return;
    void (async () => {
      try {
        const body = await readBody(req);
        if (body === undefined) {
          res
            .writeHead(413, { 'content-type': 'application/json' })
            .end('{"message":"Request Entity Too Large"}');
          return;
        }
        writeResult(res, await options.handler(toHttpApiEvent(req, body, route)));
      } catch (err) {
        onError(err);
        if (!res.headersSent) {
          res.writeHead(500, { 'content-type': 'application/json' });
        }
        res.end('{"message":"Internal Server Error"}');
      }
    })();
  });
  const port = await listenOnLoopback(server, options.port ?? 0);
  return { url: `http://127.0.0.1:${port}`, port, stop: () => closeServer(server) };
}
