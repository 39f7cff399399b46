import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KinesisClient, PutRecordCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { startDynamo, startKinesis } from '../local/emulators.js';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../local/stack.js';
import { ensureStream, ensureTable } from '../local/resources.js';

export interface CapacitySpec {
  /** How long each probe runs. */
  readonly probeMs: number;
  /** Size of each record's data: about a coalesced chunk record. */
  readonly recordBytes: number;
  /** Shards of the probe stream (as the chunk stream). */
  readonly shards: number;
}

/** One probe: what was done, in how long. */
export interface Probe {
  readonly operations: number;
  readonly calls: number;
  readonly seconds: number;
  readonly perSecond: number;
}

/** Raw capacity of the emulators on this machine, without the pipeline. */
export interface CapacityResult {
  readonly spec: CapacitySpec;
  /** PutRecords, 500 records per call, 4 calls in flight: records. */
  readonly putRecords: Probe & { readonly bytesPerSecond: number };
  /** PutRecord, one record per call, 16 calls in flight: records (the naive producer's pattern). */
  readonly putRecord: Probe;
  /** DynamoDB UpdateItem with list_append, 8 in flight: writes (the naive consumer's pattern). */
  readonly updateItem: Probe;
}

/**
 * Measures what kinesalite and dynalite accept per second here, with the same SDK clients and in one
 * process, as the stack runs them: the ceiling any flow on them can reach.
 */
export async function measureCapacity(
  spec: CapacitySpec,
  progress: (line: string) => void,
): Promise<CapacityResult> {
  const [kinesalite, dynalite] = await Promise.all([startKinesis(), startDynamo()]);
  const credentials = { ...LOCAL_CREDENTIALS };
  const kinesis = new KinesisClient({
    region: LOCAL_REGION,
    endpoint: kinesalite.endpoint,
    credentials,
    requestHandler: new NodeHttpHandler({ httpAgent: { maxSockets: 64 } }),
  });
  const raw = new DynamoDBClient({ region: LOCAL_REGION, endpoint: dynalite.endpoint, credentials });
  const dynamo = DynamoDBDocumentClient.from(raw);
  try {
    await ensureStream(kinesis, 'capacity', spec.shards);
    await ensureStream(kinesis, 'capacity-single', spec.shards);
    await ensureTable(raw, 'capacity', { partitionKey: 'itemId' });
    const data = Buffer.alloc(spec.recordBytes, 'x');

    progress(`Kinesis PutRecords (500 per call) for ${spec.probeMs / 1000} s`);
    let n = 0;
    const putRecords = await probe(spec.probeMs, 4, async () => {
      const { FailedRecordCount } = await kinesis.send(
        new PutRecordsCommand({
          StreamName: 'capacity',
          Records: Array.from({ length: 500 }, () => ({ PartitionKey: `item-${n++ % 997}`, Data: data })),
        }),
      );
      return 500 - (FailedRecordCount ?? 0);
    });

    progress(`Kinesis PutRecord (one per call) for ${spec.probeMs / 1000} s`);
    const putRecord = await probe(spec.probeMs, 16, async () => {
      await kinesis.send(
        new PutRecordCommand({
          StreamName: 'capacity-single',
          PartitionKey: `item-${n++ % 997}`,
          Data: data,
        }),
      );
      return 1;
    });

    progress(`DynamoDB UpdateItem list_append for ${spec.probeMs / 1000} s`);
    const text = 'x'.repeat(8);
    const updateItem = await probe(spec.probeMs, 8, async () => {
      await dynamo.send(
        new UpdateCommand({
          TableName: 'capacity',
          Key: { itemId: `item-${n++ % 200}` },
          UpdateExpression: 'SET chunks = list_append(if_not_exists(chunks, :empty), :chunk)',
          ExpressionAttributeValues: { ':empty': [], ':chunk': [text] },
        }),
      );
      return 1;
    });
    return {
      spec,
      putRecords: { ...putRecords, bytesPerSecond: putRecords.perSecond * spec.recordBytes },
      putRecord,
      updateItem,
    };
  } finally {
    kinesis.destroy();
    raw.destroy();
    await Promise.all([kinesalite.stop(), dynalite.stop()]);
  }
}

/**
 * Runs `call` with `inFlight` calls at a time for `ms`; each call returns the operations it did.
 * A few untimed calls first load the SDK's lazy parts and open the sockets.
 */
async function probe(ms: number, inFlight: number, call: () => Promise<number>): Promise<Probe> {
  await Promise.all(Array.from({ length: inFlight }, () => call()));
  const started = performance.now();
  const deadline = started + ms;
  let operations = 0;
  let calls = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < deadline) {
        const done = await call();
        operations += done;
        calls++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { operations, calls, seconds, perSecond: operations / seconds };
}
