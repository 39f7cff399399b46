import { mkdirSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';

const ShardCheckpoint = z.object({
  /** Last record done: reading resumes after it. */
  sequenceNumber: z.string().optional(),
  /** When a LATEST start first read the shard (ms): a restart before any record resumes there. */
  startedAt: z.number().optional(),
  /** A closed shard read to its end with every record done: its children may start. */
  finished: z.boolean().optional(),
});
export type ShardCheckpoint = z.infer<typeof ShardCheckpoint>;

const CheckpointFileContent = z.object({
  version: z.literal(1),
  streamName: z.string(),
  functionName: z.string(),
  streamArn: z.string().optional(),
  streamCreatedAt: z.number().optional(),
  updatedAt: z.string().optional(),
  shards: z.record(z.string(), ShardCheckpoint),
});
type CheckpointFileContent = z.infer<typeof CheckpointFileContent>;

/**
 * A mapping's per-shard checkpoints, persisted to a JSON file with an atomic write (temp file +
 * rename), so a crash leaves either the old or the new file, never half of one. Saves are
 * coalesced: at most one write in flight, followed by one more if anything changed meanwhile.
 */
export class CheckpointStore {
  private content: CheckpointFileContent;
  private saving: Promise<void> | undefined;
  private dirty = false;

  constructor(
    private readonly file: string | undefined,
    streamName: string,
    functionName: string,
    private readonly onError: (err: unknown) => void,
  ) {
    this.content = { version: 1, streamName, functionName, shards: {} };
    if (!file) return;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    let parsed: CheckpointFileContent;
    try {
      parsed = CheckpointFileContent.parse(JSON.parse(text));
    } catch (err) {
      throw new Error(`checkpoint file ${file} is not a valid checkpoint file: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (parsed.streamName !== streamName || parsed.functionName !== functionName)
      throw new Error(
        `checkpoint file ${file} belongs to the mapping ${parsed.streamName} -> ${parsed.functionName}, not ${streamName} -> ${functionName}`,
      );
    this.content = parsed;
  }

  /**
   * Ties the checkpoints to one incarnation of the stream. Sequence numbers of a deleted and
   * recreated stream mean nothing in the new one, so checkpoints of another incarnation are
   * dropped (and reported) rather than used.
   */
  bindStream(streamArn: string, streamCreatedAt: number | undefined): void {
    const { content } = this;
    const known = content.streamArn !== undefined || content.streamCreatedAt !== undefined;
    const same = content.streamArn === streamArn && content.streamCreatedAt === streamCreatedAt;
    if (known && !same && Object.keys(content.shards).length > 0) {
      this.onError(
        new Error(
          `checkpoints in ${this.file} are for stream ${content.streamArn} created at ${content.streamCreatedAt}; the stream now is ${streamArn} created at ${streamCreatedAt}: starting without them`,
        ),
      );
      content.shards = {};
    }
    content.streamArn = streamArn;
    content.streamCreatedAt = streamCreatedAt;
    this.save();
  }

  get(shardId: string): ShardCheckpoint | undefined {
    return this.content.shards[shardId];
  }

  update(shardId: string, change: ShardCheckpoint): void {
    this.content.shards[shardId] = { ...this.content.shards[shardId], ...change };
    this.save();
  }

  private save(): void {
    if (!this.file) return;
    this.dirty = true;
    if (this.saving) return;
    const file = this.file;
    this.saving = (async () => {
      while (this.dirty) {
        this.dirty = false;
        const text = `${JSON.stringify({ ...this.content, updatedAt: new Date().toISOString() }, null, 2)}\n`;
        const temp = `${file}.${process.pid}.tmp`;
        try {
          mkdirSync(dirname(file), { recursive: true });
          await writeFile(temp, text);
          await rename(temp, file);
        } catch (err) {
          this.onError(
            new Error(`could not save checkpoints to ${file}: ${(err as Error).message}`, { cause: err }),
          );
        }
      }
      this.saving = undefined;
    })();
  }

  /** Resolves once everything changed so far is on disk. */
  async flush(): Promise<void> {
    while (this.saving) await this.saving;
  }
}
