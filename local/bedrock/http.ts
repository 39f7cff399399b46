import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Bedrock Runtime's request body limit is far lower; this only bounds the stand-in's memory. */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** A request the stand-in refuses, answered the way AWS answers it. */
export class AwsErrorResponse extends Error {
  constructor(
    readonly status: number,
    /** The error's shape name, sent as `x-amzn-errortype`: the SDK raises the class of that name. */
    readonly errorType: string,
    message: string,
  ) {
    super(message);
    this.name = 'AwsErrorResponse';
  }
}

/** A fresh request id, sent as `x-amzn-requestid` (the SDK reports it in `$metadata.requestId`). */
export const newRequestId = (): string => randomUUID();

/** Reads a request body, refusing one over `MAX_BODY_BYTES` with a `ValidationException`. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(
          new AwsErrorResponse(400, 'ValidationException', `Request body exceeds ${MAX_BODY_BYTES} bytes.`),
        );
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Parses a JSON body, refusing anything else with a `ValidationException` that quotes the parse error. */
export function parseJsonBody(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new AwsErrorResponse(
      400,
      'ValidationException',
      `Malformed input request: ${what} body is not valid JSON (${err instanceof Error ? err.message : String(err)}).`,
    );
  }
}

/** Sends a JSON response. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string | number> = {},
): void {
  const payload = Buffer.from(JSON.stringify(body), 'utf8');
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': payload.length, ...headers });
  res.end(payload);
}

/**
 * Sends an AWS JSON error: the SDK reads the error's type from `x-amzn-errortype` and its message
 * from the body's `message`, and throws the typed exception (`ValidationException`, ...).
 */
export function sendAwsError(res: ServerResponse, error: AwsErrorResponse, requestId: string): void {
  sendJson(
    res,
    error.status,
    { message: error.message },
    {
      'x-amzn-errortype': error.errorType,
      'x-amzn-requestid': requestId,
    },
  );
}
