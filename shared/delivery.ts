import type { ErrorInfo, Usage } from './contracts/chunk-record.js';
import type { ItemStatus } from './contracts/stored-item.js';

/**
 * What one consumer batch changed for one item: the seam between reassembly (which applies chunk
 * records to DynamoDB) and live delivery (which pushes them to viewers).
 */
export interface ItemUpdate {
  readonly itemId: string;
  /** The item's tenant: only viewers of this tenant (or of every tenant) receive the update. */
  readonly tenant: string;
  readonly attempt: number;
  /** This batch started `attempt`: viewers drop the text they hold for the item. */
  readonly reset: boolean;
  /** The applied records, inclusive; `text` is what their deltas added (may be empty). */
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly text: string;
  /** Status after the batch; `completed` carries usage, `failed` carries the error. */
  readonly status: ItemStatus;
  readonly usage?: Usage;
  readonly costUsd?: number;
  readonly error?: ErrorInfo;
  /** The work item's `traceparent`, when its chunk records carried one (for log lines). */
  readonly traceparent?: string;
}

/** Delivers applied updates to whoever watches them. Never throws for a viewer's failure. */
export interface UpdatePublisher {
  publish(updates: readonly ItemUpdate[]): Promise<void>;
}
