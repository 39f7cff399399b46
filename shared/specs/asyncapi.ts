/**
 * The AsyncAPI 3 document of the system's messages: work items on the input stream, chunk records
 * on the chunk stream, and the WebSocket protocol. Every payload schema is generated from the zod
 * contracts the handlers validate with. Written to `docs/asyncapi.json` by `npm run specs`.
 */
import { z } from 'zod';
import {
  ChunkRecord,
  DeltaRecord,
  EndRecord,
  ErrorInfo,
  ErrorRecord,
  Usage,
} from '../contracts/chunk-record.js';
import { ItemStatus } from '../contracts/stored-item.js';
import { Traceparent } from '../contracts/traceparent.js';
import { ClientMessage, ServerMessage } from '../contracts/websocket.js';
import { ItemId, MAX_METADATA_BYTES, Message, WorkItem } from '../contracts/work-item.js';
import {
  componentSchemas,
  type JsonSchema,
  type NamedSchemas,
  ref,
  type SchemaAdditions,
} from './json-schema.js';
import { CONTRACTS_VERSION } from './openapi.js';

/** The object variants of a (possibly nested) union, in order. */
function variants(schema: z.ZodType): z.ZodObject[] {
  if (schema instanceof z.ZodObject) return [schema];
  if (schema instanceof z.ZodUnion) return (schema.options as readonly z.ZodType[]).flatMap(variants);
  throw new Error(`a WebSocket message must be an object or a union of objects, not ${schema.def.type}`);
}

/** The value of a literal field of an object schema (`action`, `type`). */
function literal(schema: z.ZodObject, key: string): string {
  const field = schema.shape[key];
  if (field instanceof z.ZodLiteral && typeof field.value === 'string') return field.value;
  throw new Error(`a WebSocket message schema has no string literal '${key}'`);
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** Adds a message schema under its derived name; two variants with one name would hide one of them. */
function named(out: Map<string, z.ZodObject>, name: string, schema: z.ZodObject): void {
  if (out.has(name))
    throw new Error(
      `two WebSocket message variants are both named ${name}: give shared/specs a way to tell them apart`,
    );
  out.set(name, schema);
}

/** Client messages by name: `Subscribe`, `SubscribeAll`, `Unsubscribe`, `UnsubscribeAll`, `Cancel`. */
function clientMessages(): Map<string, z.ZodObject> {
  const out = new Map<string, z.ZodObject>();
  for (const v of variants(ClientMessage))
    named(out, `${capital(literal(v, 'action'))}${'all' in v.shape ? 'All' : ''}`, v);
  return out;
}

/** Server messages by name: `Snapshot`, `Delta`, `Reset`, `Done`, `Failed`, `Error`, ... */
function serverMessages(): Map<string, z.ZodObject> {
  const out = new Map<string, z.ZodObject>();
  for (const v of variants(ServerMessage)) named(out, capital(literal(v, 'type')), v);
  return out;
}

const itemIdCorrelation = {
  description:
    "The item id, also the record's partition key: all records of an item are on one shard, in order.",
  location: '$message.payload#/itemId',
};

/** An AsyncAPI message whose payload is the named schema. */
function message(name: string, summary: string, extra: JsonSchema = {}): JsonSchema {
  return { name, title: name, summary, contentType: 'application/json', payload: ref(name), ...extra };
}

const messageRefs = (names: Iterable<string>, channel: string) =>
  [...names].map((n) => ({ $ref: `#/channels/${channel}/messages/${n}` }));

/** What `WorkItem`'s refinements check, in JSON Schema terms (zod cannot carry refinements over). */
const WORK_ITEM_RULES: SchemaAdditions = new Map<z.ZodType, JsonSchema>([
  [WorkItem, { oneOf: [{ required: ['prompt'] }, { required: ['messages'] }] }],
  [
    WorkItem.shape.metadata.unwrap(),
    { description: `Echoed onto the stored item; at most ${MAX_METADATA_BYTES} bytes as JSON.` },
  ],
]);

/** Builds the AsyncAPI 3 document (deterministic: same schemas, same bytes). */
export function asyncApiDocument(): JsonSchema {
  const client = clientMessages();
  const server = serverMessages();
  const named: Record<string, NamedSchemas[string]> = {
    WorkItem: { schema: WorkItem, side: 'input' },
    Message: { schema: Message, side: 'input' },
    ClientMessage: { schema: ClientMessage, side: 'input' },
    ChunkRecord: { schema: ChunkRecord, side: 'output' },
    DeltaRecord: { schema: DeltaRecord, side: 'output' },
    EndRecord: { schema: EndRecord, side: 'output' },
    ErrorRecord: { schema: ErrorRecord, side: 'output' },
    ServerMessage: { schema: ServerMessage, side: 'output' },
    ItemId: { schema: ItemId, side: 'output' },
    Traceparent: { schema: Traceparent, side: 'output' },
    ItemStatus: { schema: ItemStatus, side: 'output' },
    Usage: { schema: Usage, side: 'output' },
    ErrorInfo: { schema: ErrorInfo, side: 'output' },
  };
  for (const [name, schema] of client) named[name] = { schema, side: 'input' };
  for (const [name, schema] of server) named[`${name}Message`] = { schema, side: 'output' };

  const wsMessages: Record<string, JsonSchema> = {};
  for (const name of client.keys()) wsMessages[name] = { $ref: `#/components/messages/${name}` };
  for (const name of server.keys())
    wsMessages[`${name}Message`] = { $ref: `#/components/messages/${name}Message` };
  const messages: Record<string, JsonSchema> = {
    WorkItem: message('WorkItem', 'A request for one generation, written by upstream systems.', {
      correlationId: itemIdCorrelation,
    }),
    ChunkRecord: message(
      'ChunkRecord',
      'One ordered piece of an attempt: a delta of text, its end, or its error.',
      {
        correlationId: itemIdCorrelation,
      },
    ),
  };
  for (const name of client.keys())
    messages[name] = message(
      name,
      `Client → server: \`${literal(client.get(name) as z.ZodObject, 'action')}\`.`,
    );
  for (const name of server.keys())
    messages[`${name}Message`] = message(`${name}Message`, `Server → client: \`${name.toLowerCase()}\`.`);

  return {
    asyncapi: '3.1.0',
    info: {
      title: 'kinesis-model-streams messages',
      version: CONTRACTS_VERSION,
      description:
        'Work items in, chunk records between producer and consumer, and the WebSocket protocol viewers speak. Readers ignore fields they do not know. See docs/protocol.md, including the order in which a client applies a snapshot and the deltas around it.',
    },
    defaultContentType: 'application/json',
    servers: {
      websocket: {
        host: '{apiId}.execute-api.{region}.amazonaws.com',
        pathname: '/{stage}',
        protocol: 'wss',
        description:
          'The API Gateway WebSocket stage (`websocket.url` in `.local/stack.json` locally, plain `ws`).',
        variables: {
          apiId: { description: 'The WebSocket API id.' },
          region: { default: 'us-east-1' },
          stage: { default: 'live' },
        },
        security: [{ $ref: '#/components/securitySchemes/token' }],
      },
      kinesis: {
        host: 'kinesis.{region}.amazonaws.com',
        protocol: 'kinesis',
        description:
          'Amazon Kinesis Data Streams (`kinesis.endpoint` in `.local/stack.json` locally). Records are JSON; the partition key is the item id.',
        variables: { region: { default: 'us-east-1' } },
      },
    },
    channels: {
      inputStream: {
        address: '{inputStream}',
        title: 'Input stream',
        description:
          'Work items written by upstream systems (PutRecord / PutRecords, plain or KPL-aggregated).',
        parameters: {
          inputStream: { description: 'The stream name: `kinesis.inputStream` in `.local/stack.json`.' },
        },
        servers: [{ $ref: '#/servers/kinesis' }],
        messages: { WorkItem: { $ref: '#/components/messages/WorkItem' } },
      },
      chunkStream: {
        address: '{chunkStream}',
        title: 'Chunk stream',
        description: 'Chunk records written by the producer and reassembled by the consumer.',
        parameters: {
          chunkStream: { description: 'The stream name: `kinesis.chunkStream` in `.local/stack.json`.' },
        },
        servers: [{ $ref: '#/servers/kinesis' }],
        messages: { ChunkRecord: { $ref: '#/components/messages/ChunkRecord' } },
      },
      websocket: {
        address: '/',
        title: 'WebSocket',
        description: 'JSON text frames. Connect with `?token=<token>`; a bad token is refused at `$connect`.',
        servers: [{ $ref: '#/servers/websocket' }],
        messages: wsMessages,
      },
    },
    operations: {
      receiveWorkItems: {
        action: 'receive',
        title: 'The producer reads work items',
        channel: { $ref: '#/channels/inputStream' },
        messages: messageRefs(['WorkItem'], 'inputStream'),
      },
      sendChunkRecords: {
        action: 'send',
        title: 'The producer writes chunk records',
        channel: { $ref: '#/channels/chunkStream' },
        messages: messageRefs(['ChunkRecord'], 'chunkStream'),
      },
      receiveChunkRecords: {
        action: 'receive',
        title: 'The consumer reassembles chunk records',
        channel: { $ref: '#/channels/chunkStream' },
        messages: messageRefs(['ChunkRecord'], 'chunkStream'),
      },
      receiveClientMessages: {
        action: 'receive',
        title: 'The WebSocket routes read client messages',
        channel: { $ref: '#/channels/websocket' },
        messages: messageRefs(client.keys(), 'websocket'),
      },
      sendServerMessages: {
        action: 'send',
        title: 'Snapshots, deltas and endings are pushed to viewers',
        channel: { $ref: '#/channels/websocket' },
        messages: messageRefs(
          [...server.keys()].map((n) => `${n}Message`),
          'websocket',
        ),
      },
    },
    components: {
      securitySchemes: {
        token: {
          type: 'httpApiKey',
          name: 'token',
          in: 'query',
          description: 'A JWT (see docs/protocol.md, Tokens).',
        },
      },
      messages,
      schemas: componentSchemas(named, WORK_ITEM_RULES),
    },
  };
}
