import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { KinesisStreamEvent } from 'aws-lambda';

/** A Kinesis client for kinesalite over loopback (HTTP/1.1). */
export function kinesisClient(endpoint: string, maxAttempts?: number): KinesisClient {
  return new KinesisClient({
    region: 'us-east-1',
    endpoint,
    requestHandler: new NodeHttpHandler(),
    maxAttempts,
  });
}

export interface PutRecord {
  readonly partitionKey: string;
  readonly data: string;
}

/** Puts records in order (one PutRecords per 500) and returns their sequence numbers. */
export async function putRecords(
  kinesis: KinesisClient,
  streamName: string,
  records: readonly PutRecord[],
): Promise<string[]> {
  const sequenceNumbers: string[] = [];
  for (let i = 0; i < records.length; i += 500) {
    const chunk = records.slice(i, i + 500);
    const result = await kinesis.send(
      new PutRecordsCommand({
        StreamName: streamName,
        Records: chunk.map((r) => ({ PartitionKey: r.partitionKey, Data: Buffer.from(r.data) })),
      }),
    );
    if (result.FailedRecordCount) throw new Error(`${result.FailedRecordCount} records failed to put`);
    for (const r of result.Records ?? []) sequenceNumbers.push(r.SequenceNumber!);
  }
  return sequenceNumbers;
}

/** Waits until `condition` holds, polling every `intervalMs`; fails with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  condition: () => boolean,
  timeoutMs = 10_000,
  intervalMs = 5,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The decoded data of an event's records, in order. */
export function dataOf(event: KinesisStreamEvent): string[] {
  return event.Records.map((r) => Buffer.from(r.kinesis.data, 'base64').toString('utf8'));
}
