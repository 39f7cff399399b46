import { GetRecordsCommand } from '@aws-sdk/client-kinesis';
import type { MetadataBearer } from '@smithy/types';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClaimStore } from '../../producers/generator/claims.js';
import { createAwsClients } from '../../shared/aws-clients.js';
import { loadConfig } from '../../shared/config.js';
import { sqsDeadLetterSink } from '../../shared/dead-letters.js';
import { ENV } from '../../shared/env.js';
import { readItemHead } from '../../shared/items.js';
import { sleep } from '../../shared/retry.js';
import { createLogger } from '../../shared/telemetry.js';
import { type RunningEmulator, startDynamo, startKinesis } from '../../local/emulators.js';

/** Counts every request a client really sends, and fails each one with a throttle. */
function throttleEverySend(client: { middlewareStack: { add: (m: never, o: never) => void } }) {
  const sent = { count: 0 };
  const middleware = () => async () => {
    sent.count++;
    throw Object.assign(new Error('injected throttle'), {
      name: 'ThrottlingException',
      $metadata: { httpStatusCode: 400 } satisfies MetadataBearer['$metadata'],
    });
  };
  // After the SDK's retry step: runs once per send the retry strategy makes.
  client.middlewareStack.add(
    middleware as never,
    { step: 'deserialize', name: 'throttleEverySend' } as never,
  );
  return sent;
}

describe('one retry layer per call', () => {
  let dynamodb: RunningEmulator;
  let kinesis: RunningEmulator;
  beforeAll(async () => {
    [dynamodb, kinesis] = await Promise.all([startDynamo(), startKinesis()]);
  });
  afterAll(async () => {
    await Promise.all([dynamodb?.stop(), kinesis?.stop()]);
  });

  const clients = () =>
    createAwsClients(
      loadConfig({
        [ENV.dynamodbEndpoint]: dynamodb.endpoint,
        [ENV.kinesisEndpoint]: kinesis.endpoint,
        [ENV.sqsEndpoint]: kinesis.endpoint,
      }),
    );

  it('sends a conditional DynamoDB write as many times as its own retries allow, no more', async () => {
    const { dynamo } = clients();
    const sent = throttleEverySend(dynamo);
    const claims = new ClaimStore({
      dynamo,
      table: 'items',
      leaseMs: 1_000,
      now: Date.now,
      sleep: (ms) => sleep(Math.min(ms, 5)),
    });
    await expect(claims.renew('item-1', 1)).rejects.toThrow(/after 4 attempts/);
    expect(sent.count).toBe(4);
  });

  it('sends a DynamoDB read as many times as its own retries allow, no more', async () => {
    const { dynamo } = clients();
    const sent = throttleEverySend(dynamo);
    await expect(readItemHead(dynamo, { items: 'items', text: 'text' }, 'item-1')).rejects.toThrow(
      /after 4 attempts/,
    );
    expect(sent.count).toBe(4);
  });

  it('sends a dead letter to SQS as many times as its own retries allow, no more', async () => {
    const { sqs } = clients();
    const sent = throttleEverySend(sqs);
    const sink = sqsDeadLetterSink(sqs, 'http://127.0.0.1:1/000000000000/dead-letters', createLogger('test'));
    await expect(
      sink.send({ v: 1, source: 'producer', reason: 'test', receivedAt: new Date().toISOString() } as never),
    ).rejects.toThrow();
    expect(sent.count).toBe(4);
  });

  it('sends a Kinesis call once per try of its caller', async () => {
    const { kinesis } = clients();
    const sent = throttleEverySend(kinesis);
    await expect(kinesis.send(new GetRecordsCommand({ ShardIterator: 'x' }))).rejects.toThrow(
      /injected throttle/,
    );
    expect(sent.count).toBe(1);
  });
});
