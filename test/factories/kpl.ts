/**
 * Records in the Kinesis Producer Library's aggregation format, packed by `aws-kinesis-agg` (the
 * same library the producer unpacks them with), as a KPL-based upstream writer would put them.
 */
import agg from 'aws-kinesis-agg';

/** One user record to pack: its partition key and data (a work item as JSON, or any text). */
export interface UserRecordInput {
  readonly partitionKey: string;
  readonly data: string;
}

/** The user record of a work item, keyed by its id as upstream writers key them. */
export const userRecordOf = (item: { itemId: string }): UserRecordInput => ({
  partitionKey: item.itemId,
  data: JSON.stringify(item),
});

/**
 * Packs user records into aggregated Kinesis records (one, unless they exceed a record's size), each
 * with the partition key the library chose for it (its first user record's).
 */
export function aggregate(
  records: readonly UserRecordInput[],
): Promise<Array<{ partitionKey: string; data: Buffer }>> {
  const out: Array<{ partitionKey: string; data: Buffer }> = [];
  return new Promise((resolve, reject) => {
    agg.aggregate(
      records.map((r) => ({ partitionKey: r.partitionKey, data: Buffer.from(r.data, 'utf8') })),
      (encoded, done) => {
        out.push({ partitionKey: encoded.partitionKey, data: encoded.data });
        done();
      },
      () => resolve(out),
      (err) => reject(err),
    );
  });
}
