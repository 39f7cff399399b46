import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { classifyAwsError, describe } from '../shared/errors.js';
import { TTL_ATTRIBUTE } from '../shared/tables.js';

/** Which tables to sweep, how often, by which clock. */
export interface TtlSweeperOptions {
  readonly dynamo: DynamoDBDocumentClient;
  readonly tables: readonly string[];
  /** How long after its expiry a row is deleted at the earliest. Default 0. */
  readonly graceMs?: number;
  /** Time between sweeps. Default 30 s. */
  readonly intervalMs?: number;
  /** Clock in epoch ms (tests move it). */
  readonly now?: () => number;
  /** Where a failed sweep is reported. Default: stderr. */
  readonly onError?: (err: unknown) => void;
}

/** A running sweeper. */
export interface TtlSweeper {
  /** Deletes every row of every table whose `expiresAt` has passed; returns how many. */
  sweepOnce(): Promise<number>;
  /** Stops the timer and waits for a sweep in progress. */
  stop(): Promise<void>;
}

/**
 * DynamoDB's Time to Live for dynalite, which has none: every `intervalMs`, deletes the rows whose
 * `expiresAt` (epoch seconds) is in the past, each with a condition that it still is (a row
 * rewritten with a later expiry in the meantime survives). Like DynamoDB it deletes some time
 * after expiry, not at it; readers that care filter on `expiresAt` themselves. A Scan is right
 * here: this stands in for DynamoDB's background process and is never on the data path.
 */
export function startTtlSweeper(options: TtlSweeperOptions): TtlSweeper {
  const { dynamo, tables } = options;
  const now = options.now ?? Date.now;
  const onError =
    options.onError ?? ((err: unknown) => process.stderr.write(`ttl sweeper: ${describe(err)}\n`));
  const keyNames = new Map<string, string[]>();

  const keysOf = async (table: string): Promise<string[]> => {
    let names = keyNames.get(table);
    if (!names) {
      const { Table } = await dynamo.send(new DescribeTableCommand({ TableName: table }));
      names = (Table?.KeySchema ?? []).flatMap((k) => (k.AttributeName ? [k.AttributeName] : []));
      if (names.length === 0) throw new Error(`table ${table} has no key schema`);
      keyNames.set(table, names);
    }
    return names;
  };

  const sweepTable = async (table: string, nowSeconds: number): Promise<number> => {
    const names = await keysOf(table);
    let deleted = 0;
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await dynamo.send(
        new ScanCommand({
          TableName: table,
          FilterExpression: '#ttl < :now',
          ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE },
          ExpressionAttributeValues: { ':now': nowSeconds },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) {
        const key = Object.fromEntries(names.map((name) => [name, item[name]]));
        try {
          await dynamo.send(
            new DeleteCommand({
              TableName: table,
              Key: key,
              ConditionExpression: '#ttl < :now',
              ExpressionAttributeNames: { '#ttl': TTL_ATTRIBUTE },
              ExpressionAttributeValues: { ':now': nowSeconds },
            }),
          );
          deleted++;
        } catch (err) {
          if (classifyAwsError(err) !== 'conditional') throw err;
        }
      }
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return deleted;
  };

  let running: Promise<number> | undefined;
  const sweepOnce = (): Promise<number> => {
    if (!running) {
      const nowSeconds = Math.floor((now() - (options.graceMs ?? 0)) / 1000);
      running = (async () => {
        let deleted = 0;
        for (const table of tables) deleted += await sweepTable(table, nowSeconds);
        return deleted;
      })().finally(() => {
        running = undefined;
      });
    }
    return running;
  };

  const timer = setInterval(() => {
    sweepOnce().catch(onError);
  }, options.intervalMs ?? 30_000);
  timer.unref();

  return {
    sweepOnce,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
