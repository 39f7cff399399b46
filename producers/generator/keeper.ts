import type { Logger } from '../../shared/telemetry.js';
import type { ClaimStore } from './claims.js';
import { CancelledError, LeaseLostError } from './errors.js';
import type { Generation, LeaseWrite } from './generation.js';

export interface ClaimKeeperOptions {
  readonly claims: ClaimStore;
  /** How often running generations' cancel flags are read. */
  readonly tickMs: number;
  /** Lease of a running generation (renewed every quarter of it). */
  readonly leaseMs: number;
  /**
   * Lease of a waiting one, renewed after a half to three quarters of it, at random: a waiting item
   * loses nothing to a takeover a little later, and a crowd of them would otherwise cost the table
   * a write every few seconds each, all in the same tick when they arrived together.
   */
  readonly waitLeaseMs: number;
  readonly logger: Logger;
  readonly now: () => number;
  /** Uniform in [0, 1): spreads waiting renewals. Default `Math.random`. */
  readonly random?: () => number;
}

interface Held {
  readonly generation: Generation;
  /** The last lease the keeper wrote (or the claim's, at first). */
  lease: LeaseWrite;
  /** The share of a waiting lease that passes before it is renewed, drawn at each write. */
  waitShare: number;
}

/** Waiting generations' cancel flags are read every this many ticks: they have no model call to stop. */
const WAITING_POLL_EVERY = 10;

/**
 * Keeps an invocation's claims: one timer renews each held generation's lease when due and reads the
 * cancel flags and claimed attempts of all of them in one `BatchGetItem` per 100. A set flag stops
 * the generation (`CancelledError`); a newer claimed attempt, or a renewal refused, means another
 * producer took the item over (`LeaseLostError`).
 */
export class ClaimKeeper {
  private readonly held = new Map<string, Held>();
  private timer: NodeJS.Timeout | undefined;
  private ticks = 0;
  private stopped = false;

  constructor(private readonly o: ClaimKeeperOptions) {}

  /**
   * Keeps the claim of a generation that has just claimed its item: a lease of `leaseMs` from now,
   * or the one the claim wrote as waiting.
   */
  hold(generation: Generation): void {
    const lease = generation.leaseWritten ?? { at: this.o.now(), ms: this.o.leaseMs };
    this.held.set(generation.itemId, { generation, lease, waitShare: this.waitShare() });
    this.timer ??= setTimeout(() => void this.tick(), this.o.tickMs);
  }

  drop(generation: Generation): void {
    if (this.held.get(generation.itemId)?.generation === generation) this.held.delete(generation.itemId);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async tick(): Promise<void> {
    this.ticks++;
    this.renewDue();
    await this.poll().catch((err: unknown) =>
      this.o.logger.warn('cancel poll failed; trying again at the next tick', { error: err }),
    );
    this.timer =
      this.stopped || this.held.size === 0 ? undefined : setTimeout(() => void this.tick(), this.o.tickMs);
  }

  private waitShare(): number {
    return 0.5 + 0.25 * (this.o.random ?? Math.random)();
  }

  /**
   * When a held lease is renewed: a running one after a quarter of it, a waiting one after its drawn
   * share. The later of the keeper's last write and the generation's own (a waiting mark) counts.
   */
  private renewAt({ generation, lease, waitShare }: Held): number {
    const own = generation.leaseWritten;
    const last = own && own.at >= lease.at ? own : lease;
    return last.at + last.ms * (generation.phase === 'waiting' ? waitShare : 1 / 4);
  }

  private renewDue(): void {
    const now = this.o.now();
    for (const entry of this.held.values()) {
      if (this.renewAt(entry) > now) continue;
      const { generation } = entry;
      const leaseMs = generation.phase === 'waiting' ? this.o.waitLeaseMs : this.o.leaseMs;
      entry.lease = { at: now, ms: leaseMs };
      entry.waitShare = this.waitShare();
      const { signal } = generation.controller;
      const attempt = generation.attempt;
      this.o.claims.renew(generation.itemId, attempt, signal, leaseMs).then(
        (kept) => {
          // A refusal of an attempt the generation has since moved on from is not a takeover.
          if (!kept && !signal.aborted && generation.attempt === attempt)
            generation.controller.abort(new LeaseLostError(generation.itemId, attempt));
        },
        (err: unknown) => {
          if (!signal.aborted)
            this.o.logger.warn('lease renewal failed', { itemId: generation.itemId, error: err });
        },
      );
    }
  }

  private async poll(): Promise<void> {
    const due = [...this.held.values()]
      .map((e) => e.generation)
      .filter(
        (g) =>
          !g.controller.signal.aborted && (g.phase === 'running' || this.ticks % WAITING_POLL_EVERY === 0),
      );
    if (due.length === 0) return;
    const flags = await this.o.claims.flags(due.map((g) => g.itemId));
    for (const generation of due) {
      const head = flags.get(generation.itemId);
      if (!head || generation.controller.signal.aborted) continue;
      if (head.cancelRequested) generation.controller.abort(new CancelledError(generation.itemId));
      else if (head.claimedAttempt > generation.attempt)
        generation.controller.abort(new LeaseLostError(generation.itemId, generation.attempt));
    }
  }
}
