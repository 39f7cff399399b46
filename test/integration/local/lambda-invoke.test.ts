/**
 * The local Lambda Invoke stand-in with the real `LambdaClient`, and dead-letter replay's `feed`
 * reading functions' answers through it as an event source mapping would.
 */
import { InvokeCommand, type LambdaClient, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import type { KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feed } from '../../../cli/dead-letters/invoke.js';
import { lambdaClientOf } from '../../../cli/dead-letters/invoke.js';
import { type RunningLambdaInvoke, startLambdaInvoke } from '../../../local/lambda-invoke.js';
import { lambdaKinesisRecord } from '../../../shared/lambda-records.js';

const source = {
  shardId: 'shardId-000000000000',
  streamArn: 'arn:aws:kinesis:us-east-1:000000000000:stream/s',
  region: 'us-east-1',
  invokeIdentityArn: '',
};
const records: KinesisStreamRecord[] = ['101', '102', '103', '104'].map((sequenceNumber) =>
  lambdaKinesisRecord(
    { partitionKey: 'k', sequenceNumber, data: 'e30=', approximateArrivalTimestamp: 1 },
    source,
  ),
);
const quick = { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 5 };

describe('local Lambda Invoke stand-in and replay feeding', () => {
  let invoke: RunningLambdaInvoke;
  let lambda: LambdaClient;
  /** Sequence numbers each invocation of `flaky` received. */
  const seen: string[][] = [];
  let flakyFailures = 0;

  beforeAll(async () => {
    invoke = await startLambdaInvoke({
      functions: {
        echo: async (event) => ({ got: event }),
        broken: async () => {
          throw new TypeError('cannot read the batch');
        },
        // Fails the record 103 twice (ReportBatchItemFailures), then takes everything.
        flaky: async (event) => {
          const sequenceNumbers = (event as KinesisStreamEvent).Records.map((r) => r.kinesis.sequenceNumber);
          seen.push(sequenceNumbers);
          if (flakyFailures++ < 2) return { batchItemFailures: [{ itemIdentifier: '103' }] };
          return { batchItemFailures: [] };
        },
        strange: async () => ({ batchItemFailures: [{ itemIdentifier: 'not-in-the-batch' }] }),
      },
    });
    lambda = lambdaClientOf({
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      kinesis: { inputStream: 'in' },
      http: { url: 'http://127.0.0.1:1' },
      websocket: { url: 'ws://127.0.0.1:1' },
      token: 't',
      lambda: { endpoint: invoke.endpoint, functions: { producer: 'echo', consumer: 'echo' } },
    });
  });
  afterAll(async () => {
    lambda?.destroy();
    await invoke?.stop();
  });

  it('runs a function by name or ARN and returns its result', async () => {
    for (const name of ['echo', 'arn:aws:lambda:us-east-1:000000000000:function:echo']) {
      const out = await lambda.send(
        new InvokeCommand({ FunctionName: name, Payload: Buffer.from('{"a":1}') }),
      );
      expect(out.FunctionError).toBeUndefined();
      expect(JSON.parse(Buffer.from(out.Payload ?? []).toString())).toEqual({ got: { a: 1 } });
    }
  });

  it('answers a thrown error as Lambda does, and an unknown function with ResourceNotFoundException', async () => {
    const out = await lambda.send(new InvokeCommand({ FunctionName: 'broken', Payload: Buffer.from('{}') }));
    expect(out.FunctionError).toBe('Unhandled');
    expect(JSON.parse(Buffer.from(out.Payload ?? []).toString())).toEqual({
      errorType: 'TypeError',
      errorMessage: 'cannot read the batch',
    });
    await expect(lambda.send(new InvokeCommand({ FunctionName: 'nowhere' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });

  it('feeds again from the lowest failed record until the function takes every record', async () => {
    const fed = await feed(lambda, 'flaky', records, quick);
    expect(fed).toEqual({ ok: true, invocations: 3 });
    expect(seen).toEqual([
      ['101', '102', '103', '104'],
      ['103', '104'],
      ['103', '104'],
    ]);
  });

  it('gives up after its attempts, saying why, on function errors and unknown failures', async () => {
    const broken = await feed(lambda, 'broken', records, quick);
    expect(broken).toEqual({
      ok: false,
      reason: 'broken failed (Unhandled): TypeError: cannot read the batch (after 3 attempts)',
    });
    const strange = await feed(lambda, 'strange', records, quick);
    expect(strange.ok).toBe(false);
    expect(!strange.ok && strange.reason).toContain(
      'reported failed records that are not in the batch: not-in-the-batch',
    );
    const missing = await feed(lambda, 'nowhere', records, quick);
    expect(!missing.ok && missing.reason).toContain('ResourceNotFoundException');
  });
});
