import type { KinesisStreamRecord } from 'aws-lambda';
import { ChunkRecord } from '../../shared/contracts/chunk-record.js';

/** A Kinesis record decoded as a chunk record, or the reason it is not one. */
export type Decoded =
  | { readonly ok: true; readonly record: ChunkRecord }
  | { readonly ok: false; readonly reason: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes the data of a Lambda Kinesis record (base64 of UTF-8 JSON) and validates it as a chunk record. */
export function decodeChunkRecord(record: KinesisStreamRecord): Decoded {
  let json: string;
  try {
    json = utf8.decode(Buffer.from(record.kinesis.data, 'base64'));
  } catch {
    return { ok: false, reason: 'the record data is not valid UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    return { ok: false, reason: `the record data is not JSON: ${(err as Error).message}` };
  }
  const parsed = ChunkRecord.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues
      .map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`)
      .join('; ');
    return { ok: false, reason: `the record is not a chunk record: ${issues}` };
  }
  return { ok: true, record: parsed.data };
}
