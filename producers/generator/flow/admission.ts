import type { Waiting } from '../../../shared/contracts/stored-item.js';
import type { Priority } from '../../../shared/contracts/work-item.js';
import { QuotaWaitExceededError, ReleasedError } from '../errors.js';
import type { CircuitBreaker } from './breaker.js';
import type { CapacityGate } from './capacity.js';
import type { FleetQuota, QuotaGrant } from './fleet-quota.js';

/** An item that wants to start a model request. */
export interface AdmissionTicket {
  readonly itemId: string;
  readonly priority: Priority;
  /** The model asked for, then its fallbacks in order. */
  readonly models: readonly string[];
  /** Quota tokens the request reserves (input estimate + token limit). */
  readonly tokens: number;
  /** Epoch ms since when the item waits (kept across redeliveries): ageing and the maximum wait. */
  readonly waitingSince: number;
  /** Aborting gives up the wait (the invocation is ending): `admit` rejects with the reason. */
  readonly signal: AbortSignal;
  /** Called when the item starts waiting, or waits for another reason than before. */
  readonly onWaiting: (reason: Waiting) => void;
}

/** The model the item may call now, with the quota it took. Hand the slot back with `done()`. */
export interface Admitted {
  readonly model: string;
  readonly grant: QuotaGrant;
  readonly waitedMs: number;
  /** Set when this request is the half-open breaker's probe: report its verdict or release it. */
  readonly probe?: number;
}

export interface AdmissionOptions {
  readonly quota: FleetQuota;
  readonly capacity: CapacityGate;
  readonly breakerOf: (model: string) => CircuitBreaker;
  /** Fallback models are tried once an item has waited this long for its own. */
  readonly fallbackAfterMs: number;
  /** An item waiting longer fails with `quota_wait_exceeded`. */
  readonly maxWaitMs: number;
  /** Each this much waiting raises an item one priority level (so low items never starve). */
  readonly ageStepMs: number;
  readonly now: () => number;
  /** A failure to read or write the shared quota (the item keeps waiting; it is tried again). */
  readonly onError: (err: unknown) => void;
}

const RANK: Readonly<Record<Priority, number>> = { high: 0, normal: 1, low: 2 };
const BY_RANK: readonly Priority[] = ['high', 'normal', 'low'];
/** Longest the pump sleeps before looking again (a new item or a freed slot wakes it sooner). */
const MAX_NAP_MS = 1_000;
/** Most items admitted with one quota write. */
const MAX_BULK = 50;
/**
 * A refusal that ends sooner than this does not change what an item already shows it waits for:
 * quota that frees up in a few milliseconds while the window is full is no wait for quota, and
 * flipping a crowd of items between the two reasons would cost a write each, all at once.
 */
const MIN_SHOWN_REFUSAL_MS = 1_000;

/** Models refused in the current round, with the time until each may have room. */
type Blocked = Map<string, number>;

interface Entry {
  readonly ticket: AdmissionTicket;
  readonly resolve: (admitted: Admitted) => void;
  readonly reject: (reason: unknown) => void;
  waiting: Waiting | undefined;
}

/**
 * The producer instance's admission: items wait here, in priority order with ageing, until there is
 * pipeline capacity (the `CapacityGate`), the model's breaker is not open, and the fleet's quota
 * grants their request. One pump serves them all, so the quota store sees one request per model at a
 * time, not one per waiting item. Waiting never uses up an attempt; it ends by admission, by the
 * ticket's abort, or after `maxWaitMs`.
 */
export class Admission {
  private readonly queue: Entry[] = [];
  private pumping = false;
  /** Something changed while a round ran: look again without napping. */
  private dirty = false;
  private wake: (() => void) | undefined;
  private closedForHost = false;

  constructor(private readonly o: AdmissionOptions) {}

  /** True once `close` was called: nothing is admitted any more. */
  get isClosed(): boolean {
    return this.closedForHost;
  }

  /**
   * The host is stopping: every item waiting now, and any that asks from now on, is rejected with a
   * `ReleasedError` (its generation frees the claim and reports the record for a redelivery).
   */
  close(): void {
    this.closedForHost = true;
    for (const entry of [...this.queue]) {
      this.remove(entry);
      entry.reject(new ReleasedError(entry.ticket.itemId));
    }
  }

  /** Items waiting now. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * What an item asking now would wait for, if it would wait, with `ahead` items about to ask
   * before it (claims in flight): what the last item in the queue shows, or capacity when nothing
   * waits and the window has no room for it; undefined when it would likely be admitted at once
   * (or the last item shows nothing yet).
   */
  expectedWait(ahead = 0): Waiting | undefined {
    const last = this.queue.at(-1);
    if (last) return last.waiting;
    return this.o.capacity.room() > ahead ? undefined : 'capacity';
  }

  /** Waits for a model request slot for `ticket`. */
  admit(ticket: AdmissionTicket): Promise<Admitted> {
    if (this.closedForHost) return Promise.reject(new ReleasedError(ticket.itemId));
    const onAbort = () => this.poke();
    ticket.signal.addEventListener('abort', onAbort, { once: true });
    return new Promise<Admitted>((resolve, reject) => {
      this.queue.push({ ticket, resolve, reject, waiting: undefined });
      this.poke();
    }).finally(() => ticket.signal.removeEventListener('abort', onAbort));
  }

  /** A generation ended: its capacity slot is free. */
  done(): void {
    this.o.capacity.done();
    this.poke();
  }

  /** The effective priority of a ticket after ageing. */
  effectivePriority(ticket: AdmissionTicket, now = this.o.now()): Priority {
    const aged = RANK[ticket.priority] - Math.floor((now - ticket.waitingSince) / this.o.ageStepMs);
    return BY_RANK[Math.max(0, aged)] ?? 'low';
  }

  private poke(): void {
    if (this.wake) this.wake();
    else if (this.pumping) this.dirty = true;
    else void this.pump();
  }

  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (this.queue.length > 0) {
        const napMs = await this.round();
        if (napMs > 0 && this.queue.length > 0) await this.nap(napMs);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** One pass over the queue in priority order. Returns how long to nap (0: go again at once). */
  private async round(): Promise<number> {
    this.dirty = false;
    await this.o.capacity.observe().catch(this.o.onError);
    // Sorted after the await, so items that arrived meanwhile take their place.
    const now = this.o.now();
    this.queue.sort((a, b) => this.order(a, b, now));
    for (const entry of [...this.queue]) this.expired(entry, now);
    const blocked: Blocked = new Map();
    let napMs = MAX_NAP_MS;
    try {
      const bulk = await this.admitInBulk(now, blocked);
      if (bulk.admitted > 0) return 0;
      napMs = Math.min(napMs, bulk.retryInMs);
    } catch (err) {
      this.o.onError(err);
    }
    for (const entry of [...this.queue]) {
      if (!this.o.capacity.hasRoom()) {
        this.markWaiting(entry, 'capacity');
        continue;
      }
      let result: 'admitted' | number;
      try {
        result = await this.tryModels(entry, blocked);
      } catch (err) {
        this.o.onError(err);
        result = MAX_NAP_MS;
      }
      if (result === 'admitted') return 0;
      this.markWaiting(entry, 'quota', result);
      napMs = Math.min(napMs, result);
    }
    return Math.max(1, napMs);
  }

  /**
   * Admits the first items in priority order on their own model, as many as capacity has room for,
   * with one quota write per model for all of them: under load admission then costs one store round
   * trip per batch, not per item. Models that ran out of quota are added to `blocked`; fallbacks
   * and half-open breakers are left to the item-by-item pass.
   */
  private async admitInBulk(now: number, blocked: Blocked): Promise<{ admitted: number; retryInMs: number }> {
    const groups = new Map<string, Entry[]>();
    let room = Math.min(this.o.capacity.room(), MAX_BULK);
    for (const entry of this.queue) {
      if (room <= 0) break;
      const model = entry.ticket.models[0];
      if (model === undefined || !this.closed(model)) continue;
      groups.set(model, [...(groups.get(model) ?? []), entry]);
      room--;
    }
    let admitted = 0;
    let retryInMs = MAX_NAP_MS;
    for (const [model, entries] of groups) {
      const requests = entries.map(({ ticket }) => ({
        tokens: ticket.tokens,
        priority: this.effectivePriority(ticket, now),
      }));
      const answer = await this.o.quota.tryAcquireMany(model, requests);
      for (const [i, grant] of answer.grants.entries()) this.grant(entries[i] as Entry, model, grant);
      admitted += answer.grants.length;
      if (answer.grants.length === entries.length) continue;
      blocked.set(model, answer.retryInMs);
      if (answer.reason === 'breaker') this.o.breakerOf(model).openUntil(now + answer.retryInMs);
      retryInMs = Math.min(retryInMs, answer.retryInMs);
    }
    return { admitted, retryInMs };
  }

  /** True when `model`'s breaker (as this instance and the fleet know it) lets every request through. */
  private closed(model: string): boolean {
    const breaker = this.o.breakerOf(model);
    breaker.openUntil(this.o.quota.fleetOpenUntil(model));
    return breaker.current() === 'closed';
  }

  private grant(entry: Entry, model: string, grant: QuotaGrant, probe?: number): void {
    if (!this.queue.includes(entry)) {
      // Released by `close` while its quota was asked for: the quota and the probe go back.
      this.o.quota.giveBack(grant).catch(this.o.onError);
      if (probe !== undefined) this.o.breakerOf(model).release(probe);
      return;
    }
    this.remove(entry);
    this.o.capacity.take();
    entry.resolve({ model, grant, waitedMs: this.o.now() - entry.ticket.waitingSince, probe });
  }

  /** Tries the ticket's models in order; 'admitted', or ms until one of them may have room. */
  private async tryModels(entry: Entry, blocked: Blocked): Promise<'admitted' | number> {
    const { ticket } = entry;
    const now = this.o.now();
    const waited = now - ticket.waitingSince;
    const models = waited >= this.o.fallbackAfterMs ? ticket.models : ticket.models.slice(0, 1);
    let retryInMs = MAX_NAP_MS;
    for (const model of models) {
      const refusedFor = blocked.get(model);
      if (refusedFor !== undefined) {
        retryInMs = Math.min(retryInMs, refusedFor);
        continue;
      }
      const breaker = this.o.breakerOf(model);
      breaker.openUntil(this.o.quota.fleetOpenUntil(model));
      if (breaker.current() === 'open') {
        blocked.set(model, breaker.reopensAt - now);
        retryInMs = Math.min(retryInMs, breaker.reopensAt - now);
        continue;
      }
      const answer = await this.o.quota.tryAcquire(model, ticket.tokens, this.effectivePriority(ticket, now));
      if (!answer.granted) {
        if (answer.reason === 'breaker') breaker.openUntil(now + answer.retryInMs);
        blocked.set(model, answer.retryInMs);
        retryInMs = Math.min(retryInMs, answer.retryInMs);
        continue;
      }
      const pass = breaker.tryPass();
      if (!pass.pass) {
        // Another item holds the half-open breaker's one probe.
        await this.o.quota.giveBack(answer.grant);
        blocked.set(model, MAX_NAP_MS);
        continue;
      }
      this.grant(entry, model, answer.grant, pass.probe);
      return 'admitted';
    }
    return retryInMs;
  }

  private order(a: Entry, b: Entry, now: number): number {
    const rank = RANK[this.effectivePriority(a.ticket, now)] - RANK[this.effectivePriority(b.ticket, now)];
    return rank !== 0 ? rank : a.ticket.waitingSince - b.ticket.waitingSince;
  }

  /** Drops an aborted or over-waited entry, rejecting it. */
  private expired(entry: Entry, now: number): boolean {
    const { ticket } = entry;
    if (ticket.signal.aborted) {
      this.remove(entry);
      entry.reject(ticket.signal.reason);
      return true;
    }
    if (now - ticket.waitingSince > this.o.maxWaitMs) {
      this.remove(entry);
      entry.reject(
        new QuotaWaitExceededError(ticket.itemId, now - ticket.waitingSince, entry.waiting ?? 'quota'),
      );
      return true;
    }
    return false;
  }

  /**
   * Shows what an item waits for: at once the first time, and then on a change of reason, unless
   * the refusal behind it ends within `MIN_SHOWN_REFUSAL_MS`.
   */
  private markWaiting(entry: Entry, reason: Waiting, refusedForMs?: number): void {
    if (entry.waiting === reason) return;
    if (entry.waiting !== undefined && refusedForMs !== undefined && refusedForMs < MIN_SHOWN_REFUSAL_MS)
      return;
    entry.waiting = reason;
    entry.ticket.onWaiting(reason);
  }

  private remove(entry: Entry): void {
    const at = this.queue.indexOf(entry);
    if (at >= 0) this.queue.splice(at, 1);
  }

  private nap(ms: number): Promise<void> {
    if (this.dirty) {
      this.dirty = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    }).finally(() => {
      this.wake = undefined;
    });
  }
}
