import { describe, expect, it } from 'vitest';
import { entryOf, formatEntry } from '../../../cli/dead-letters/entries.js';

const message = (body: string) => ({
  id: 'm-1',
  receiptHandle: 'r',
  body,
  sentAt: '2026-12-01T10:00:00.000Z',
});

/** The message Lambda's Kinesis event source mapping sends to an SQS on-failure destination. */
const awsOnFailure = {
  requestContext: {
    requestId: 'c9b8fa9f-5a7f-4aa0-af9c-0c604cde93a5',
    functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:Streams-ReassemblerHandler-Ab12',
    condition: 'RetryAttemptsExhausted',
    approximateInvokeCount: 4,
  },
  responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
  version: '1.0',
  timestamp: '2026-12-01T10:00:06.021Z',
  KinesisBatchInfo: {
    shardId: 'shardId-000000000001',
    startSequenceNumber: '49601189658422359378836298521827638475320189012309704722',
    endSequenceNumber: '49601189658422359378836298522902373528957594348623495186',
    approximateArrivalOfFirstRecord: '2026-12-01T10:00:04.835Z',
    approximateArrivalOfLastRecord: '2026-12-01T10:00:05.580Z',
    batchSize: 500,
    streamArn: 'arn:aws:kinesis:eu-west-1:123456789012:stream/Streams-ChunkStream-Xy',
  },
};

describe('dead-letter entries', () => {
  it('reads the on-failure message AWS sends (metadata only) with its shard and sequence range', () => {
    const entry = entryOf(message(JSON.stringify(awsOnFailure)));
    expect(entry.kind).toBe('on-failure');
    expect(formatEntry(entry)).toBe(
      'm-1  on-failure  Streams-ReassemblerHandler-Ab12  Streams-ChunkStream-Xy/shardId-000000000001  ' +
        '49601189658422359378836298521827638475320189012309704722..49601189658422359378836298522902373528957594348623495186  ' +
        '500 record(s)  2026-12-01T10:00:06.021Z\n' +
        '    reason: RetryAttemptsExhausted after 4 invocation(s) (Unhandled); records arrived 2026-12-01T10:00:04.835Z .. 2026-12-01T10:00:05.580Z\n',
    );
  });

  it('reads an on-failure entry with a condition the contract does not name yet, to replay it all the same', () => {
    const later = {
      ...awsOnFailure,
      requestContext: { ...awsOnFailure.requestContext, condition: 'SomethingNew' },
    };
    expect(entryOf(message(JSON.stringify(later))).kind).toBe('on-failure');
  });

  it('keeps a message that is neither kind, saying why, instead of dropping it', () => {
    const notJson = entryOf(message('{oops'));
    expect(notJson).toMatchObject({ kind: 'unparseable', reason: expect.stringMatching(/^not JSON/) });
    const unknown = entryOf(message('{"kind":"mystery"}'));
    expect(unknown).toMatchObject({ kind: 'unparseable', reason: 'an unknown letter kind "mystery"' });
    const broken = entryOf(message('{"kind":"invalid-record","source":"producer"}'));
    expect(broken).toMatchObject({
      kind: 'unparseable',
      reason: expect.stringContaining('a malformed invalid-record letter: reason:'),
    });
    expect(formatEntry(broken)).toContain('    body: {"kind":"invalid-record","source":"producer"}\n');
  });
});
