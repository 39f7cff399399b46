import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  PurgeQueueCommand,
  PurgeQueueInProgress,
  QueueDoesNotExist,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  TooManyEntriesInBatchRequest,
} from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import type { MappingFailureLetter } from '../../../shared/contracts/dead-letter.js';
import { sqsDeadLetterSink } from '../../../shared/dead-letters.js';
import type { Logger } from '../../../shared/telemetry.js';
import { type DeadLetterStore, startDeadLetterStore } from '../../../local/dead-letters/index.js';

const sqsClient = (endpoint: string) => new SQSClient({ region: 'us-east-1', endpoint });

async function rejection(promise: Promise<unknown>): Promise<Error & { name: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the call to fail');
}

describe('dead-letter store (SQS JSON protocol)', () => {
  const started: DeadLetterStore[] = [];
  const dirs: string[] = [];
  const start = async (options: Parameters<typeof startDeadLetterStore>[0] = {}) => {
    const store = await startDeadLetterStore({ onWarning: () => {}, ...options });
    started.push(store);
    return store;
  };
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dead-letters-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(async () => {
    for (const store of started.splice(0)) await store.stop();
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  it('creates queues idempotently and resolves their URLs; an unknown queue is QueueDoesNotExist', async () => {
    const store = await start();
    const sqs = sqsClient(store.endpoint);
    const created = await sqs.send(
      new CreateQueueCommand({ QueueName: 'letters', Attributes: { VisibilityTimeout: '5' } }),
    );
    const again = await sqs.send(
      new CreateQueueCommand({ QueueName: 'letters', Attributes: { VisibilityTimeout: '5' } }),
    );
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'letters' }));
    expect(created.QueueUrl).toBe(store.queueUrl('letters'));
    expect(again.QueueUrl).toBe(created.QueueUrl);
    expect(QueueUrl).toBe(created.QueueUrl);
    expect(await rejection(sqs.send(new GetQueueUrlCommand({ QueueName: 'missing' })))).toBeInstanceOf(
      QueueDoesNotExist,
    );
    const conflict = await rejection(
      sqs.send(new CreateQueueCommand({ QueueName: 'letters', Attributes: { VisibilityTimeout: '9' } })),
    );
    expect(conflict.name).toBe('QueueNameExists');
    const badName = await rejection(sqs.send(new CreateQueueCommand({ QueueName: 'bad name!' })));
    expect(badName.message).toMatch(/Invalid queue name "bad name!"/);
  });

  it('sends, hides received messages for the visibility timeout, counts and deletes them', async () => {
    // Prepare
    const store = await start();
    const sqs = sqsClient(store.endpoint);
    const QueueUrl = store.queueUrl();
    // Act
    const sent = await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'héllo 🌍' }));
    const first = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 60,
        MessageSystemAttributeNames: ['All'],
      }),
    );
    const hidden = await sqs.send(new ReceiveMessageCommand({ QueueUrl }));
    const counts = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    // Assess
    expect(first.Messages).toHaveLength(1);
    const [message] = first.Messages!;
    expect(message?.MessageId).toBe(sent.MessageId);
    expect(message?.Body).toBe('héllo 🌍');
    expect(message?.Attributes?.ApproximateReceiveCount).toBe('1');
    expect(hidden.Messages ?? []).toHaveLength(0);
    expect(counts.Attributes).toEqual({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '1',
    });
    await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message!.ReceiptHandle! }));
    expect(await store.list()).toEqual([]);
  });

  it('redelivers a message whose visibility timeout ran out, with a higher receive count', async () => {
    const store = await start();
    const sqs = sqsClient(store.endpoint);
    const QueueUrl = store.queueUrl();
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'again' }));
    await sqs.send(new ReceiveMessageCommand({ QueueUrl, VisibilityTimeout: 1 }));
    // A long poll wakes when the message becomes visible again.
    const second = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl,
        WaitTimeSeconds: 10,
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
    );
    expect(second.Messages?.[0]?.Body).toBe('again');
    expect(second.Messages?.[0]?.Attributes).toEqual({ ApproximateReceiveCount: '2' });
  });

  it('answers a long poll as soon as a message arrives', async () => {
    const store = await start();
    const sqs = sqsClient(store.endpoint);
    const QueueUrl = store.queueUrl();
    const poll = sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 20 }));
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'late' }));
    expect((await poll).Messages?.map((m) => m.Body)).toEqual(['late']);
  });

  it('sends batches, failing only the bad entries, and enforces batch rules', async () => {
    const store = await start();
    const sqs = sqsClient(store.endpoint);
    const QueueUrl = store.queueUrl();
    const result = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl,
        Entries: [
          { Id: 'a', MessageBody: 'one' },
          { Id: 'b', MessageBody: 'bad \u0000 char' },
          {
            Id: 'c',
            MessageBody: 'three',
            MessageAttributes: { kind: { DataType: 'String', StringValue: 'x' } },
          },
        ],
      }),
    );
    expect(result.Successful?.map((s) => s.Id)).toEqual(['a', 'c']);
    expect(result.Failed).toEqual([
      expect.objectContaining({ Id: 'b', Code: 'InvalidMessageContents', SenderFault: true }),
    ]);
    const received = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }),
    );
    expect(received.Messages?.map((m) => m.Body)).toEqual(['one', 'three']);
    expect(received.Messages?.[1]?.MessageAttributes).toEqual({
      kind: { DataType: 'String', StringValue: 'x' },
    });
    const tooMany = await rejection(
      sqs.send(
        new SendMessageBatchCommand({
          QueueUrl,
          Entries: Array.from({ length: 11 }, (_, i) => ({ Id: `m${i}`, MessageBody: 'x' })),
        }),
      ),
    );
    expect(tooMany).toBeInstanceOf(TooManyEntriesInBatchRequest);
  });

  it('answers the MD5 of message attributes that SQS answers for them', async () => {
    const store = await start();
    const sent = await sqsClient(store.endpoint).send(
      new SendMessageCommand({
        QueueUrl: store.queueUrl(),
        MessageBody: 'derp',
        MessageAttributes: { timestamp: { DataType: 'Number', StringValue: '1493147359900' } },
      }),
    );
    // Digests AWS returns for this body and attribute (as pinned by other SQS emulators' suites).
    expect(sent.MD5OfMessageBody).toBe('58fd9edd83341c29f1aebba81c31e257');
    expect(sent.MD5OfMessageAttributes).toBe('235c5c510d26fb653d073faed50ae77c');
  });

  it('answers bad input and unknown operations in SQS error shape', async () => {
    const store = await start();
    const sqs = sqsClient(store.endpoint);
    const QueueUrl = store.queueUrl();
    const tooMany = await rejection(
      sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 11 })),
    );
    expect(tooMany.name).toBe('InvalidParameterValue');
    expect(tooMany.message).toMatch(
      /Value 11 for parameter MaxNumberOfMessages is invalid.*between 1 and 10/,
    );
    expect(
      await rejection(sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: 'not-a-handle' }))),
    ).toBeInstanceOf(ReceiptHandleIsInvalid);
    expect(
      await rejection(
        sqs.send(new SendMessageCommand({ QueueUrl: store.queueUrl('nope'), MessageBody: 'x' })),
      ),
    ).toBeInstanceOf(QueueDoesNotExist);
    const badAttribute = await rejection(
      sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['Bogus' as never] })),
    );
    expect(badAttribute.name).toBe('InvalidAttributeName');
    // Raw requests: what a client other than the SDK would see.
    const raw = await fetch(store.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.Frobnicate' },
      body: '{}',
    });
    expect(raw.status).toBe(400);
    expect(raw.headers.get('x-amzn-query-error')).toBe('InvalidAction;Sender');
    expect(await raw.json()).toEqual({
      __type: 'com.amazonaws.sqs#InvalidAction',
      message: 'The action Frobnicate is not valid for this endpoint.',
    });
    const garbled = await fetch(store.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessage' },
      body: '{not json',
    });
    expect(((await garbled.json()) as { __type: string }).__type).toBe(
      'com.amazonaws.sqs#SerializationException',
    );
  });

  it('purges a queue, and refuses a second purge within the cooldown', async () => {
    const store = await start();
    const sqs = sqsClient(store.endpoint);
    const QueueUrl = store.queueUrl();
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x' }));
    await sqs.send(new PurgeQueueCommand({ QueueUrl }));
    expect(await store.list()).toEqual([]);
    expect(await rejection(sqs.send(new PurgeQueueCommand({ QueueUrl })))).toBeInstanceOf(
      PurgeQueueInProgress,
    );
  });

  it('keeps messages in a readable JSONL file per queue across a restart', async () => {
    // Prepare
    const dir = await tempDir();
    const first = await start({ dir });
    const sqs = sqsClient(first.endpoint);
    const QueueUrl = first.queueUrl();
    for (const body of ['one', 'two', 'three'])
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl }));
    await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages[0]!.ReceiptHandle! }));
    await first.stop();
    started.splice(started.indexOf(first), 1);
    // Act
    const lines = (await readFile(join(dir, 'dead-letters.jsonl'), 'utf8')).trim().split('\n');
    const second = await start({ dir });
    // Assess
    expect(lines.map((l) => (JSON.parse(l) as { body: string }).body)).toEqual(['two', 'three']);
    expect((await second.list()).map((m) => m.body)).toEqual(['two', 'three']);
    const again = await sqsClient(second.endpoint).send(
      new ReceiveMessageCommand({ QueueUrl: second.queueUrl(), MaxNumberOfMessages: 10 }),
    );
    expect(again.Messages?.map((m) => m.Body)).toEqual(['two', 'three']);
  });

  it('skips a torn last line left by a crash mid-write', async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, 'dead-letters.jsonl'),
      `${JSON.stringify({ messageId: 'm1', sentTimestamp: 1, body: 'kept', md5OfBody: 'x' })}\n{"messageId":"m2","bo`,
    );
    const warnings: string[] = [];
    const store = await start({ dir, onWarning: (w) => warnings.push(w) });
    expect((await store.list()).map((m) => m.body)).toEqual(['kept']);
    expect(warnings.join()).toMatch(/skipped 1 unreadable line/);
  });

  it('receives what the handlers send through the shared dead-letter sink, decoded as a letter', async () => {
    const store = await start();
    const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;
    const letter: MappingFailureLetter = {
      requestContext: {
        requestId: 'r1',
        functionArn: 'arn:aws:lambda:us-east-1:000000000000:function:consumer',
        condition: 'RetryAttemptsExhausted',
        approximateInvokeCount: 3,
      },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      version: '1.0',
      timestamp: new Date(0).toISOString(),
      KinesisBatchInfo: {
        shardId: 'shardId-000000000000',
        startSequenceNumber: '1',
        endSequenceNumber: '2',
        approximateArrivalOfFirstRecord: new Date(0).toISOString(),
        approximateArrivalOfLastRecord: new Date(0).toISOString(),
        batchSize: 2,
        streamArn: 'arn:aws:kinesis:us-east-1:000000000000:stream/s',
      },
    };
    await sqsDeadLetterSink(sqsClient(store.endpoint), store.queueUrl(), silent).send(letter);
    const [stored] = await store.list();
    expect(stored?.letter).toEqual(letter);
  });

  it('rejects bad options with the value given', async () => {
    await expect(startDeadLetterStore({ maxWaitTimeSeconds: 30 })).rejects.toThrow(
      /maxWaitTimeSeconds must be in \[0, 20\], got 30/,
    );
    await expect(startDeadLetterStore({ queues: ['no spaces'] })).rejects.toThrow(/queue name "no spaces"/);
  });
});
