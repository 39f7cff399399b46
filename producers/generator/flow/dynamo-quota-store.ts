import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { classifyAwsError } from '../../../shared/errors.js';
import { type RetryOptions, withRetry } from '../../../shared/retry.js';
import { EMPTY_QUOTA_ROW, type IncrementCondition, type QuotaRow, type QuotaStore } from './quota-row.js';

/**
 * Clocks are stored as whole microseconds: DynamoDB adds decimals exactly, so a stored sum of
 * fractional milliseconds may not read back as the same JavaScript number, and a condition comparing
 * it with what was read would never hold. Integers below 2^53 round-trip exactly.
 */
const toUs = (ms: number) => Math.round(ms * 1000);
const fromUs = (us: number) => us / 1000;

const Row = z.object({
  reqTat: z.number().default(0).transform(fromUs),
  tokTat: z.number().default(0).transform(fromUs),
  factor: z.number().default(1),
  decreasedAt: z.number().default(Number.NEGATIVE_INFINITY),
  openUntil: z.number().default(0),
});

/** The coordination table's key of a model's quota row. */
export const quotaKey = (model: string) => `quota#${model}`;

const retry = (what: string): RetryOptions => ({ what, maxAttempts: 4, baseDelayMs: 25, maxDelayMs: 500 });

/**
 * Quota rows in the coordination table. Every method is one single-row `UpdateItem` (or `GetItem`)
 * with the SDK's own retries off: throttling and transient errors are retried here, with jitter.
 */
export class DynamoQuotaStore implements QuotaStore {
  constructor(
    private readonly dynamo: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async read(model: string): Promise<QuotaRow | undefined> {
    const { Item } = await withRetry(
      () =>
        this.dynamo.send(
          new GetCommand({ TableName: this.table, Key: { pk: quotaKey(model) }, ConsistentRead: true }),
        ),
      retry(`GetItem ${this.table}/${quotaKey(model)}`),
    );
    return Item ? Row.parse(Item) : undefined;
  }

  increment(
    model: string,
    reqMs: number,
    tokMs: number,
    when: IncrementCondition,
  ): Promise<QuotaRow | undefined> {
    return this.update(model, {
      UpdateExpression: 'SET reqTat = reqTat + :r, tokTat = tokTat + :t',
      ConditionExpression: 'reqTat BETWEEN :now AND :rl AND tokTat BETWEEN :now AND :tl',
      ExpressionAttributeValues: {
        ':r': toUs(reqMs),
        ':t': toUs(tokMs),
        ':now': toUs(when.now),
        ':rl': toUs(when.reqLimit),
        ':tl': toUs(when.tokLimit),
      },
    });
  }

  replace(
    model: string,
    seen: QuotaRow | undefined,
    reqTat: number,
    tokTat: number,
  ): Promise<QuotaRow | undefined> {
    return this.update(model, {
      UpdateExpression: 'SET reqTat = :r, tokTat = :t',
      ConditionExpression: seen ? 'reqTat = :sr AND tokTat = :st' : 'attribute_not_exists(pk)',
      ExpressionAttributeValues: {
        ':r': toUs(reqTat),
        ':t': toUs(tokTat),
        ...(seen ? { ':sr': toUs(seen.reqTat), ':st': toUs(seen.tokTat) } : {}),
      },
    });
  }

  async add(model: string, reqMs: number, tokMs: number): Promise<void> {
    await this.update(model, {
      UpdateExpression: 'ADD reqTat :r, tokTat :t',
      ExpressionAttributeValues: { ':r': toUs(reqMs), ':t': toUs(tokMs) },
    });
  }

  decrease(model: string, factor: number, at: number, notAfter: number): Promise<QuotaRow | undefined> {
    return this.update(model, {
      UpdateExpression: 'SET factor = :f, decreasedAt = :at',
      ConditionExpression: 'attribute_not_exists(decreasedAt) OR decreasedAt < :na',
      ExpressionAttributeValues: { ':f': factor, ':at': at, ':na': notAfter },
    });
  }

  async open(model: string, until: number): Promise<void> {
    await this.update(model, {
      UpdateExpression: 'SET openUntil = :u',
      ConditionExpression: 'attribute_not_exists(openUntil) OR openUntil < :u',
      ExpressionAttributeValues: { ':u': until },
    });
  }

  /** One `UpdateItem` returning the new row; undefined when its condition failed. */
  private async update(
    model: string,
    input: {
      UpdateExpression: string;
      ConditionExpression?: string;
      ExpressionAttributeValues: Record<string, number>;
    },
  ): Promise<QuotaRow | undefined> {
    try {
      const { Attributes } = await withRetry(
        () =>
          this.dynamo.send(
            new UpdateCommand({
              TableName: this.table,
              Key: { pk: quotaKey(model) },
              ReturnValues: 'ALL_NEW',
              ...input,
            }),
          ),
        retry(`UpdateItem ${this.table}/${quotaKey(model)}`),
      );
      return Attributes ? Row.parse(Attributes) : EMPTY_QUOTA_ROW;
    } catch (err) {
      if (classifyAwsError(err) === 'conditional') return undefined;
      throw err;
    }
  }
}
