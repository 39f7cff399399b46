import type { PolledRecord } from './records.js';

/**
 * The records read from one shard in order, and how far every one of them is done. Lanes finish
 * records out of order; the checkpoint only moves over a prefix that is entirely done, so a
 * restart never skips a record (it may redeliver some a lane had finished, as Lambda does).
 */
export class ShardProgress {
  private entries: PolledRecord[] = [];
  private head = 0;
  /** Sequence number of the last record of the done prefix. */
  checkpoint: string | undefined;

  constructor(checkpoint: string | undefined) {
    this.checkpoint = checkpoint;
  }

  add(records: readonly PolledRecord[]): void {
    for (const record of records) this.entries.push(record);
  }

  /** Moves the checkpoint over records now done; true when it moved. */
  advance(): boolean {
    const start = this.head;
    while (this.head < this.entries.length && this.entries[this.head]!.done) this.head++;
    if (this.head === start) return false;
    this.checkpoint = this.entries[this.head - 1]!.sequenceNumber;
    // Drop the finished prefix now and then, not on every call.
    if (this.head > 1_024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
    return true;
  }

  /** Records read and not yet done. */
  get pending(): number {
    return this.entries.length - this.head;
  }
}
