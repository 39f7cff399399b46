/**
 * The local stand-in of Lambda's Invoke API (`POST /2015-03-31/functions/{name}/invocations`), so
 * that tools replay records through the very handlers the local stack runs, with the real
 * `LambdaClient` and only an endpoint override, exactly as they would invoke a deployed function.
 *
 * Request-response only. A function is named by its name or by an ARN ending in
 * `:function:<name>` (what on-failure letters carry). A handler that throws is answered as Lambda
 * answers it: 200 with `X-Amz-Function-Error: Unhandled` and `{ errorType, errorMessage }`. No
 * signature check, as for the other stand-ins.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { closeServer, listenOnLoopback } from './listen.js';

/** A function the stand-in runs: the event in, the handler's result out. */
export type LocalFunction = (event: unknown) => Promise<unknown>;

export interface LambdaInvokeOptions {
  /** Functions by name. */
  readonly functions: Readonly<Record<string, LocalFunction>>;
  /** 0 or omitted picks a free port. */
  readonly port?: number;
}

export interface RunningLambdaInvoke {
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Lambda's limit on a synchronous invocation's payload. */
const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;
const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

/** The function name in a name or an ARN (`arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]`). */
export function functionNameOf(nameOrArn: string): string {
  const match = /:function:([^:]+)/.exec(nameOrArn);
  return match?.[1] ?? nameOrArn;
}

function answer(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** Answers an error as Lambda's REST API does: the type in `x-amzn-errortype`, which the SDK reads. */
function refuse(res: ServerResponse, status: number, type: string, message: string) {
  answer(res, status, { Type: 'User', message }, { 'x-amzn-errortype': type });
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_PAYLOAD_BYTES) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function invoke(
  functions: LambdaInvokeOptions['functions'],
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const match = INVOKE_PATH.exec(path);
  if (req.method !== 'POST' || !match?.[1]) return refuse(res, 404, 'UnknownOperationException', path);
  const name = functionNameOf(decodeURIComponent(match[1]));
  const fn = functions[name];
  if (!fn) return refuse(res, 404, 'ResourceNotFoundException', `Function not found: ${name}`);
  const type = req.headers['x-amz-invocation-type'];
  if (type !== undefined && type !== 'RequestResponse')
    return refuse(res, 400, 'InvalidParameterValueException', `only RequestResponse is supported locally`);
  const body = await readBody(req);
  if (body === undefined)
    return refuse(res, 413, 'RequestTooLargeException', `payload over ${MAX_PAYLOAD_BYTES} bytes`);
  let event: unknown;
  try {
    event = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  } catch {
    return refuse(res, 400, 'InvalidRequestContentException', 'the payload is not JSON');
  }
  const headers = { 'x-amz-executed-version': '$LATEST' };
  try {
    answer(res, 200, (await fn(event)) ?? null, headers);
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    answer(
      res,
      200,
      { errorType: error.name, errorMessage: error.message },
      { ...headers, 'x-amz-function-error': 'Unhandled' },
    );
  }
}

/** Starts the Invoke stand-in on loopback. */
export async function startLambdaInvoke(options: LambdaInvokeOptions): Promise<RunningLambdaInvoke> {
  const server = createServer((req, res) => {
    invoke(options.functions, req, res).catch((err: unknown) => {
      if (!res.headersSent) refuse(res, 500, 'ServiceException', String(err));
      else res.end();
    });
  });
  const port = await listenOnLoopback(server, options.port ?? 0);
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => closeServer(server) };
}
