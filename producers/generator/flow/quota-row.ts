import type { AimdState } from './aimd.js';

/**
 * A model's shared quota state, one row per model in the coordination table (`quota#<modelId>`).
 *
 * Both limits are kept as a GCRA ("virtual scheduling") clock: `reqTat` / `tokTat` is the theoretical
 * arrival time (epoch ms) at which the bucket would be full again. Taking `c` units moves it forward
 * by `c / rate`; it may run at most `burstMs` ahead of now. One number per limit, so a grant is one
 * conditional write, and a settlement (giving back unused tokens, or charging the output burndown) is
 * one unconditional `ADD`.
 */
export interface QuotaRow {
  readonly reqTat: number;
  readonly tokTat: number;
  /** The fleet's AIMD factor on the configured rate, after the last throttling-driven decrease. */
  readonly factor: number;
  readonly decreasedAt: number;
  /** A breaker opened for the whole fleet until then (epoch ms); 0 when none. */
  readonly openUntil: number;
}

export const EMPTY_QUOTA_ROW: QuotaRow = {
  reqTat: 0,
  tokTat: 0,
  factor: 1,
  decreasedAt: Number.NEGATIVE_INFINITY,
  openUntil: 0,
};

/** The AIMD state stored in a row. */
export const aimdStateOf = (row: QuotaRow): AimdState => ({
  value: row.factor,
  decreasedAt: row.decreasedAt,
});

/** The conditions of a grant that only moves both clocks forward (the bucket is busy). */
export interface IncrementCondition {
  readonly now: number;
  /** The grant is allowed only while each clock is within [now, limit]. */
  readonly reqLimit: number;
  readonly tokLimit: number;
}

/**
 * Where the rows live. Every operation is one atomic, single-row write, as a DynamoDB conditional
 * `UpdateItem` is; `undefined` means its condition did not hold.
 */
export interface QuotaStore {
  read(model: string): Promise<QuotaRow | undefined>;
  /** Adds `reqMs` / `tokMs` to the clocks if both lie within the condition's bounds. */
  increment(
    model: string,
    reqMs: number,
    tokMs: number,
    when: IncrementCondition,
  ): Promise<QuotaRow | undefined>;
  /** Sets both clocks if the row is still as `seen` (or still absent). */
  replace(
    model: string,
    seen: QuotaRow | undefined,
    reqTat: number,
    tokTat: number,
  ): Promise<QuotaRow | undefined>;
  /** Moves the clocks by these amounts, unconditionally (settlements and returned grants). */
  add(model: string, reqMs: number, tokMs: number): Promise<void>;
  /** Records an AIMD decrease unless another one happened after `notAfter`. */
  decrease(model: string, factor: number, at: number, notAfter: number): Promise<QuotaRow | undefined>;
  /** Marks the model's breaker open for the fleet until `until`. */
  open(model: string, until: number): Promise<void>;
}
