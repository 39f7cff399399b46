/**
 * DynamoDB access of the reassembler: head rows in the items table, sealed parts and held records
 * in the item-text table. Every call retries throttling and transient failures a bounded number of
 * times with jittered backoff; everything else is thrown to the caller, which fails the item.
 */
import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { ConsumedCapacity } from '@aws-sdk/client-dynamodb';
import { z } from 'zod';
import { ChunkRecord } from '../../shared/contracts/chunk-record.js';
import { classifyAwsError, RetriesExhaustedError } from '../../shared/errors.js';
import { ItemHead, type ItemTables, textKeys } from '../../shared/items.js';
import { backoffDelayMs, DEFAULT_BACKOFF, sleep, withRetry } from '../../shared/retry.js';
import { TENANT_STATUS_ATTRIBUTE, TTL_ATTRIBUTE } from '../../shared/tables.js';
import { DEFAULT_TENANT, tenantStatusKey } from '../../shared/tenancy.js';
import type { HeldKey, ItemState, SealedPart } from './core.js';

/**
 * How long a held record is kept. A gap is filled by a redelivery or a producer's retry within
 * minutes; a week covers the event source mapping's longest record age, after which no record
 * that could fill the gap is delivered any more.
 */
export const HELD_TTL_SECONDS = 7 * 24 * 3600;

/** Model id of a head row the consumer had to create (records of an item no producer claimed). */
export const UNKNOWN_MODEL_ID = 'unknown';

/** BatchGetItem reads at most 100 keys, BatchWriteItem writes at most 25 rows. */
const BATCH_GET_MAX = 100;
const BATCH_WRITE_MAX = 25;
/** Calls made to finish a batch call's unprocessed keys or rows (the first call included). */
const BATCH_ROUNDS = 5;
const CALL_ATTEMPTS = 4;

/** Counts the DynamoDB calls a store makes, and the capacity units DynamoDB reports for them. */
export interface StoreMeter {
  /** Calls by operation name, retries included. */
  readonly calls: Record<string, number>;
  writeUnits: number;
  readUnits: number;
}

/** A meter at zero. */
export function createStoreMeter(): StoreMeter {
  return { calls: {}, writeUnits: 0, readUnits: 0 };
}

const WRITE_OPERATIONS = new Set(['UpdateItem', 'BatchWriteItem', 'PutItem', 'DeleteItem']);

function record(
  meter: StoreMeter,
  operation: string,
  consumed: ConsumedCapacity | ConsumedCapacity[] | undefined,
) {
  meter.calls[operation] = (meter.calls[operation] ?? 0) + 1;
  const units = [consumed ?? []].flat().reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
  if (WRITE_OPERATIONS.has(operation)) meter.writeUnits += units;
  else meter.readUnits += units;
}

export interface ReadHeads {
  readonly heads: ReadonlyMap<string, ItemHead>;
  /** Ids whose heads could not be read in the bounded number of rounds. Absent ids are in neither. */
  readonly unread: ReadonlySet<string>;
}

/** Expected state of a head before a write: its version, or absent (no head row yet). */
/** The head a write expects: its version, and its tenant (part of the index key written with the status). */
export type Expected = { readonly version: number; readonly tenant: string } | 'absent';

export interface ItemStore {
  /** Reads heads (strongly consistent), 100 per call, retrying unprocessed keys a bounded number of times. */
  readHeads(itemIds: readonly string[]): Promise<ReadHeads>;
  /** Reads one head (strongly consistent). */
  readHead(itemId: string): Promise<ItemHead | undefined>;
  /** Reads the records held for an item, in key order. */
  readHeld(itemId: string): Promise<ChunkRecord[]>;
  /** Puts sealed parts and held records (idempotent: the same key always gets the same content). */
  putTextRows(
    itemId: string,
    parts: readonly SealedPart[],
    holds: readonly ChunkRecord[],
    nowMs: number,
  ): Promise<void>;
  /** Writes the consumer-owned fields of a head if it is still as expected, bumping its version. */
  commitHead(
    itemId: string,
    expected: Expected,
    state: ItemState,
    now: string,
  ): Promise<'committed' | 'conflict'>;
  /** Deletes held rows that are no longer needed. */
  deleteHeld(itemId: string, keys: readonly HeldKey[]): Promise<void>;
  /** Deletes the part rows of attempts older than `attempt`; returns how many it deleted. */
  deleteSupersededParts(itemId: string, attempt: number): Promise<number>;
}

export interface ItemStoreOptions {
  readonly dynamo: DynamoDBDocumentClient;
  readonly tables: ItemTables;
  /** Counts calls and capacity; a private meter when omitted. */
  readonly meter?: StoreMeter;
}

const HeldRow = z.object({ record: z.string() });

const chunks = <T>(values: readonly T[], size: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < values.length; i += size) out.push(values.slice(i, i + size));
  return out;
};

/** The reassembler's DynamoDB store. */
export function createItemStore(options: ItemStoreOptions): ItemStore {
  const { dynamo, tables } = options;
  const meter = options.meter ?? createStoreMeter();

  const call = <T extends { ConsumedCapacity?: ConsumedCapacity | ConsumedCapacity[] }>(
    operation: string,
    table: string,
    send: () => Promise<T>,
  ): Promise<T> =>
    withRetry(
      async () => {
        try {
          const output = await send();
          record(meter, operation, output.ConsumedCapacity);
          return output;
        } catch (err) {
          record(meter, operation, undefined);
          throw err;
        }
      },
      { what: `${operation} on ${table}`, maxAttempts: CALL_ATTEMPTS },
    );

  /** Writes rows 25 at a time, resending unprocessed ones with backoff, a bounded number of times. */
  async function batchWrite(
    requests: ReadonlyArray<NonNullable<BatchWriteCommand['input']['RequestItems']>[string][number]>,
  ): Promise<void> {
    for (const group of chunks(requests, BATCH_WRITE_MAX)) {
      let pending = group;
      for (let round = 1; pending.length > 0; round++) {
        if (round > BATCH_ROUNDS) {
          throw new RetriesExhaustedError(
            `BatchWriteItem on ${tables.text}`,
            BATCH_ROUNDS,
            new Error(`${pending.length} of ${group.length} rows were still unprocessed`),
          );
        }
        if (round > 1) await sleep(backoffDelayMs(round - 1, DEFAULT_BACKOFF));
        const output = await call('BatchWriteItem', tables.text, () =>
          dynamo.send(
            new BatchWriteCommand({
              RequestItems: { [tables.text]: pending },
              ReturnConsumedCapacity: 'TOTAL',
            }),
          ),
        );
        pending = output.UnprocessedItems?.[tables.text] ?? [];
      }
    }
  }

  return {
    async readHeads(itemIds) {
      const heads = new Map<string, ItemHead>();
      const unread = new Set<string>();
      for (const group of chunks([...new Set(itemIds)], BATCH_GET_MAX)) {
        let keys: Record<string, unknown>[] = group.map((itemId) => ({ itemId }));
        for (let round = 1; keys.length > 0 && round <= BATCH_ROUNDS; round++) {
          if (round > 1) await sleep(backoffDelayMs(round - 1, DEFAULT_BACKOFF));
          const output = await call('BatchGetItem', tables.items, () =>
            dynamo.send(
              new BatchGetCommand({
                // Strongly consistent: a stale head would only cost a failed conditional write and a
                // re-read, but the batch right after a write would meet one every time.
                RequestItems: { [tables.items]: { Keys: keys, ConsistentRead: true } },
                ReturnConsumedCapacity: 'TOTAL',
              }),
            ),
          );
          for (const row of output.Responses?.[tables.items] ?? []) {
            const head = ItemHead.parse(row);
            heads.set(head.itemId, head);
          }
          keys = output.UnprocessedKeys?.[tables.items]?.Keys ?? [];
        }
        for (const key of keys) unread.add(z.object({ itemId: z.string() }).parse(key).itemId);
      }
      return { heads, unread };
    },

    async readHead(itemId) {
      const { Item } = await call('GetItem', tables.items, () =>
        dynamo.send(
          new GetCommand({
            TableName: tables.items,
            Key: { itemId },
            ConsistentRead: true,
            ReturnConsumedCapacity: 'TOTAL',
          }),
        ),
      );
      return Item ? ItemHead.parse(Item) : undefined;
    },

    async readHeld(itemId) {
      const held: ChunkRecord[] = [];
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await call('Query', tables.text, () =>
          dynamo.send(
            new QueryCommand({
              TableName: tables.text,
              KeyConditionExpression: 'itemId = :id AND begins_with(#key, :prefix)',
              ExpressionAttributeNames: { '#key': 'key' },
              ExpressionAttributeValues: { ':id': itemId, ':prefix': 'pending#' },
              ConsistentRead: true,
              ExclusiveStartKey: startKey,
              ReturnConsumedCapacity: 'TOTAL',
            }),
          ),
        );
        for (const row of page.Items ?? []) {
          held.push(ChunkRecord.parse(JSON.parse(HeldRow.parse(row).record)));
        }
        startKey = page.LastEvaluatedKey;
      } while (startKey);
      return held;
    },

    async putTextRows(itemId, parts, holds, nowMs) {
      const expiresAt = Math.floor(nowMs / 1000) + HELD_TTL_SECONDS;
      await batchWrite([
        ...parts.map((part) => ({
          PutRequest: { Item: { itemId, key: textKeys.part(part.attempt, part.index), text: part.text } },
        })),
        ...holds.map((held) => ({
          PutRequest: {
            Item: {
              itemId,
              key: textKeys.pending(held.attempt, held.seq),
              record: JSON.stringify(held),
              [TTL_ATTRIBUTE]: expiresAt,
            },
          },
        })),
      ]);
    },

    async commitHead(itemId, expected, state, now) {
      const fields: Record<string, unknown> = {
        status: state.status,
        // The index key moves with the status (a write that keeps the status costs no index write).
        [TENANT_STATUS_ATTRIBUTE]: tenantStatusKey(
          expected === 'absent' ? DEFAULT_TENANT : expected.tenant,
          state.status,
          itemId,
        ),
        attempt: state.attempt,
        nextSeq: state.nextSeq,
        text: state.tail,
        parts: state.parts,
        held: state.held.size,
        usage: state.usage,
        costUsd: state.costUsd,
        firstTokenAt: state.firstTokenAt,
        completedAt: state.completedAt,
        error: state.error,
        // What the stall sweeper reads as the consumer's last progress on the item.
        progressAt: now,
        version: expected === 'absent' ? 1 : expected.version + 1,
      };
      const names: Record<string, string> = {};
      const values: Record<string, unknown> = {};
      const sets: string[] = [];
      for (const [name, value] of Object.entries(fields)) {
        names[`#${name}`] = name;
        values[`:${name}`] = value;
        sets.push(`#${name} = :${name}`);
      }
      let condition: string;
      if (expected === 'absent') {
        // No producer claimed this item (or its head is gone): create a head that a later claim
        // does not overwrite.
        names['#itemId'] = 'itemId';
        names['#modelId'] = 'modelId';
        names['#createdAt'] = 'createdAt';
        values[':modelId'] = UNKNOWN_MODEL_ID;
        values[':createdAt'] = now;
        sets.push(
          '#modelId = if_not_exists(#modelId, :modelId)',
          '#createdAt = if_not_exists(#createdAt, :createdAt)',
        );
        condition = 'attribute_not_exists(#itemId)';
      } else {
        values[':expected'] = expected.version;
        condition = '#version = :expected';
      }
      try {
        await call('UpdateItem', tables.items, () =>
          dynamo.send(
            new UpdateCommand({
              TableName: tables.items,
              Key: { itemId },
              // Text or an ending means the item no longer waits for quota or capacity.
              UpdateExpression: `SET ${sets.join(', ')}${state.status === 'queued' ? '' : ' REMOVE waiting, waitingSince'}`,
              ConditionExpression: condition,
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: values,
              ReturnConsumedCapacity: 'TOTAL',
            }),
          ),
        );
        return 'committed';
      } catch (err) {
        if (classifyAwsError(err) === 'conditional') return 'conflict';
        throw err;
      }
    },

    async deleteHeld(itemId, keys) {
      await batchWrite(
        keys.map((k) => ({ DeleteRequest: { Key: { itemId, key: textKeys.pending(k.attempt, k.seq) } } })),
      );
    },

    async deleteSupersededParts(itemId, attempt) {
      const superseded: string[] = [];
      let startKey: Record<string, unknown> | undefined;
      do {
        const page = await call('Query', tables.text, () =>
          dynamo.send(
            new QueryCommand({
              TableName: tables.text,
              // Part keys sort by attempt: everything below the current attempt's prefix is older.
              KeyConditionExpression: 'itemId = :id AND #key BETWEEN :from AND :to',
              ExpressionAttributeNames: { '#key': 'key' },
              ExpressionAttributeValues: {
                ':id': itemId,
                ':from': textKeys.partsOf(0),
                ':to': textKeys.partsOf(attempt),
              },
              ProjectionExpression: '#key',
              ConsistentRead: true,
              ExclusiveStartKey: startKey,
              ReturnConsumedCapacity: 'TOTAL',
            }),
          ),
        );
        for (const row of page.Items ?? []) superseded.push(z.object({ key: z.string() }).parse(row).key);
        startKey = page.LastEvaluatedKey;
      } while (startKey);
      const old = superseded.filter((key) => key < textKeys.partsOf(attempt));
      await batchWrite(old.map((key) => ({ DeleteRequest: { Key: { itemId, key } } })));
      return old.length;
    },
  };
}
