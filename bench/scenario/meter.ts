import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { crc32 } from 'node:zlib';
import { closeServer, listenOnLoopback } from '../../local/listen.js';
import { nowMs } from '../support/clock.js';

/** What the handlers wrote to one DynamoDB table. */
export interface TableWrites {
  /** Successful write requests (each put/delete inside a BatchWriteItem counts once). */
  writes: number;
  /** Write units DynamoDB reported: per write, 1 per started KB of the larger of the item before and after. */
  units: number;
  /** Conditional writes refused (AWS charges them too: counted at 1 unit each, a lower bound). */
  conditionalFailures: number;
}

/** What the handlers put on one Kinesis stream. */
export interface StreamPuts {
  /** PutRecords and PutRecord calls. */
  calls: number;
  /** Records in those calls that Kinesis accepted. */
  records: number;
  /** Data bytes of the accepted records (partition keys not included). */
  bytes: number;
}

export interface MeterStats {
  readonly tables: Record<string, TableWrites>;
  readonly streams: Record<string, StreamPuts>;
  /** Requests forwarded, by operation (`GetItem`, `PutRecords`...). */
  readonly operations: Record<string, number>;
}

/** One delta record the handlers put on a stream: where an item's text stood when it reached Kinesis. */
export interface DeltaPut {
  readonly attempt: number;
  readonly seq: number;
  /** UTF-16 length of the record's text. */
  readonly length: number;
  /** The record's `emittedAt` (the producer's clock when it built the record). */
  readonly emittedAt: number;
  /** `nowMs()` when Kinesis accepted it. */
  readonly putAt: number;
}

export interface MeterProxy {
  readonly endpoint: string;
  stats(): MeterStats;
  /** Delta records put for these items, in the order Kinesis accepted them. */
  deltaPuts(itemIds: readonly string[]): Record<string, DeltaPut[]>;
  stop(): Promise<void>;
}

type Json = Record<string, unknown>;

const DYNAMO_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem']);
const KINESIS_PUTS = new Set(['PutRecords', 'PutRecord']);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY });

/**
 * A loopback proxy in front of DynamoDB or Kinesis (AWS JSON 1.0/1.1 protocols) that counts what
 * goes through it without changing what callers see:
 * - DynamoDB writes are sent with `ReturnConsumedCapacity: TOTAL` (dynalite then reports
 *   DynamoDB's own rule: 1 unit per KB of the larger of the old and new item) and the units are
 *   added up per table; the field is removed from the answer again when the caller did not ask.
 * - Kinesis puts are counted per stream: calls, accepted records and their data bytes.
 * Every other request is piped through untouched. The emulators do not check signatures, so a
 * rewritten body is accepted.
 */
export async function startMeterProxy(
  target: string,
  /** Items whose delta records are decoded and kept (`deltaPuts`); by partition key, so others cost nothing. Default none. */
  keepDeltasOf: (itemId: string) => boolean = () => false,
): Promise<MeterProxy> {
  const upstream = new URL(target);
  const tables: Record<string, TableWrites> = {};
  const streams: Record<string, StreamPuts> = {};
  const operations: Record<string, number> = {};
  const deltas = new Map<string, DeltaPut[]>();
  const table = (name: string) => {
    tables[name] ??= { writes: 0, units: 0, conditionalFailures: 0 };
    return tables[name];
  };
  const stream = (name: string) => {
    streams[name] ??= { calls: 0, records: 0, bytes: 0 };
    return streams[name];
  };

  const send = (req: IncomingMessage, body: Buffer): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const headers: IncomingHttpHeaders = { ...req.headers, 'content-length': String(body.length) };
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent },
        resolve,
      );
      out.on('error', reject);
      out.end(body);
    });

  const readAll = (stream: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => resolve(Buffer.concat(chunks)));
      stream.on('error', reject);
    });

  const reply = (res: ServerResponse, up: IncomingMessage, body: Buffer) => {
    const headers: IncomingHttpHeaders = { ...up.headers, 'content-length': String(body.length) };
    delete headers['transfer-encoding'];
    // The SDK checks DynamoDB answers against this checksum.
    if (headers['x-amz-crc32'] !== undefined) headers['x-amz-crc32'] = String(crc32(body));
    res.writeHead(up.statusCode ?? 502, headers);
    res.end(body);
  };

  const pipeThrough = async (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const up = await send(req, body);
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  };

  async function dynamoWrite(req: IncomingMessage, res: ServerResponse, operation: string, body: Buffer) {
    const request = JSON.parse(body.toString('utf8')) as Json;
    const asked = request.ReturnConsumedCapacity;
    request.ReturnConsumedCapacity = 'TOTAL';
    const up = await send(req, Buffer.from(JSON.stringify(request)));
    const raw = await readAll(up);
    const answer = JSON.parse(raw.toString('utf8') || '{}') as Json;
    if (up.statusCode !== 200) {
      if (String(answer.__type ?? '').endsWith('ConditionalCheckFailedException')) {
        const entry = table(String(request.TableName));
        entry.conditionalFailures++;
        entry.units++;
      }
      return reply(res, up, raw);
    }
    const consumed = [answer.ConsumedCapacity ?? []].flat() as Array<{
      TableName?: string;
      CapacityUnits?: number;
    }>;
    for (const c of consumed) table(String(c.TableName)).units += c.CapacityUnits ?? 0;
    if (operation === 'BatchWriteItem') {
      const requested = (request.RequestItems ?? {}) as Record<string, unknown[]>;
      const left = (answer.UnprocessedItems ?? {}) as Record<string, unknown[]>;
      for (const [name, writes] of Object.entries(requested))
        table(name).writes += writes.length - (left[name]?.length ?? 0);
    } else table(String(request.TableName)).writes++;
    if (asked === undefined || asked === 'NONE') {
      delete answer.ConsumedCapacity;
      return reply(res, up, Buffer.from(JSON.stringify(answer)));
    }
    return reply(res, up, raw);
  }

  async function kinesisPut(req: IncomingMessage, res: ServerResponse, operation: string, body: Buffer) {
    const request = JSON.parse(body.toString('utf8')) as Json;
    const entry = stream(String(request.StreamName ?? request.StreamARN ?? 'unknown'));
    const records = (operation === 'PutRecords' ? request.Records : [request]) as Array<{
      Data?: string;
      PartitionKey?: string;
    }>;
    const up = await send(req, body);
    const raw = await readAll(up);
    entry.calls++;
    if (up.statusCode === 200) {
      const answer = JSON.parse(raw.toString('utf8')) as { Records?: Array<{ ErrorCode?: string }> };
      const putAt = nowMs();
      records.forEach((record, i) => {
        if (answer.Records?.[i]?.ErrorCode) return;
        entry.records++;
        entry.bytes += base64Bytes(record.Data ?? '');
        if (keepDeltasOf(record.PartitionKey ?? '')) noteDelta(record.Data, putAt);
      });
    }
    reply(res, up, raw);
  }

  /** Keeps where a bench item's delta record stood (only records that carry `emittedAt`). */
  function noteDelta(data: string | undefined, putAt: number) {
    const record = chunkOf(data);
    if (record?.type !== 'delta' || typeof record.emittedAt !== 'number') return;
    const list = deltas.get(record.itemId) ?? [];
    if (list.length === 0) deltas.set(record.itemId, list);
    list.push({
      attempt: record.attempt,
      seq: record.seq,
      length: record.text.length,
      emittedAt: record.emittedAt,
      putAt,
    });
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '';
      const name = operation === 'UpdateItem' ? updateName(body) : operation;
      operations[name] = (operations[name] ?? 0) + 1;
      const handled = DYNAMO_WRITES.has(operation)
        ? dynamoWrite(req, res, operation, body)
        : KINESIS_PUTS.has(operation)
          ? kinesisPut(req, res, operation, body)
          : pipeThrough(req, res, body);
      handled.catch((err: unknown) => {
        if (res.headersSent) res.destroy();
        else res.writeHead(502).end(String(err));
      });
    });
  });
  server.keepAliveTimeout = 70_000;
  const port = await listenOnLoopback(server, 0);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stats: () => ({
      tables: structuredClone(tables),
      streams: structuredClone(streams),
      operations: { ...operations },
    }),
    deltaPuts: (itemIds) => Object.fromEntries(itemIds.map((id) => [id, deltas.get(id) ?? []])),
    stop: () => closeServer(server),
  };
}

/**
 * `UpdateItem (SET x)` for an update that sets one attribute and nothing else (a lease renewal, a
 * cancel flag), plain `UpdateItem` otherwise: enough to tell housekeeping writes from data writes.
 */
function updateName(body: Buffer): string {
  try {
    const { UpdateExpression } = JSON.parse(body.toString('utf8')) as { UpdateExpression?: string };
    const single = /^SET ([#\w]+) = :\w+$/.exec(UpdateExpression?.trim() ?? '');
    return single ? `UpdateItem (SET ${single[1]})` : 'UpdateItem';
  } catch {
    return 'UpdateItem';
  }
}

interface ChunkFields {
  type?: unknown;
  itemId: string;
  attempt: number;
  seq: number;
  text: string;
  emittedAt?: unknown;
}

/** A chunk record's fields, when `data` (base64 JSON) is one. */
function chunkOf(data: string | undefined): ChunkFields | undefined {
  if (!data) return undefined;
  try {
    const record = JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as Partial<ChunkFields>;
    return typeof record.itemId === 'string' &&
      typeof record.attempt === 'number' &&
      typeof record.seq === 'number' &&
      typeof record.text === 'string'
      ? (record as ChunkFields)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Decoded size of a base64 string. */
function base64Bytes(data: string): number {
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  return Math.floor((data.length * 3) / 4) - padding;
}
