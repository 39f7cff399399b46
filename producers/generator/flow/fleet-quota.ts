import type { ModelQuotaLimits } from '../../../shared/config.js';
import type { Priority } from '../../../shared/contracts/work-item.js';
import { Aimd, type AimdOptions } from './aimd.js';
import { aimdStateOf, EMPTY_QUOTA_ROW, type QuotaRow, type QuotaStore } from './quota-row.js';

/** Share of the burst a priority may use: when quota is short, higher priorities find room first. */
export const HEADROOM: Readonly<Record<Priority, number>> = { high: 1, normal: 0.7, low: 0.4 };

export interface FleetQuotaOptions {
  readonly store: QuotaStore;
  /** The configured limits of a model (Bedrock's quota for it in this account and region). */
  readonly limitsOf: (model: string) => ModelQuotaLimits;
  /**
   * How far ahead of now a model's clocks may run: the largest burst the fleet sends at once.
   * Kept small so that no rolling minute ever sees more than the quota. Default 3 s.
   */
  readonly burstMs?: number;
  /** Share of the configured quota the fleet aims to use. Default 0.95. */
  readonly utilization?: number;
  /** How the fleet's rate backs off on throttling and recovers. */
  readonly aimd?: Partial<AimdOptions>;
  /** A cached row younger than this is trusted for decisions (the write's condition still guards). Default 1 s. */
  readonly rowMaxAgeMs?: number;
  readonly now: () => number;
}

/** What a grant took, to settle once the real usage is known or to give back if unused. */
export interface QuotaGrant {
  readonly model: string;
  readonly reservedTokens: number;
  readonly reqMs: number;
  readonly tokMs: number;
  /** Tokens per ms at grant time: settlements convert with the same rate. */
  readonly tokPerMs: number;
}

/** One request for quota: its reservation and its item's priority. */
export interface QuotaRequest {
  readonly tokens: number;
  readonly priority: Priority;
}

/** Grants for a prefix of the requests asked for; when some did not fit, when to ask again. */
export interface BatchAnswer {
  readonly grants: readonly QuotaGrant[];
  readonly retryInMs: number;
  readonly reason: 'quota' | 'breaker';
}

export type QuotaAnswer =
  | { readonly granted: true; readonly grant: QuotaGrant }
  | { readonly granted: false; readonly retryInMs: number; readonly reason: 'quota' | 'breaker' };

const DEFAULT_AIMD: AimdOptions = {
  min: 0.02,
  max: 1,
  decreaseFactor: 0.5,
  increasePerSecond: 0.02,
  cooldownMs: 2_000,
};
/** Conditional writes lost to other instances before giving up for now. */
const MAX_ROUNDS = 4;
/** A model whose limit is 0 is looked at again after this. */
const DISABLED_RETRY_MS = 5_000;

/**
 * Each model's Bedrock quota, shared by every producer instance through one row per model: a grant is
 * one conditional write (two when another instance raced it), a settlement one `ADD`. The fleet's
 * rate is `utilization × limit × factor`, where the factor is an AIMD value every instance reads from
 * the row: a throttle from Bedrock halves it (once per cool-down, whoever sees it first), time
 * restores it. Priorities share the burst unevenly (`HEADROOM`), so high items find quota first.
 */
export class FleetQuota {
  private readonly aimd: Aimd;
  private readonly cache = new Map<string, { row: QuotaRow; readAt: number }>();
  private readonly burstMs: number;
  private readonly utilization: number;
  private readonly rowMaxAgeMs: number;

  constructor(private readonly o: FleetQuotaOptions) {
    this.aimd = new Aimd({ ...DEFAULT_AIMD, ...o.aimd });
    this.burstMs = o.burstMs ?? 3_000;
    this.utilization = o.utilization ?? 0.95;
    this.rowMaxAgeMs = o.rowMaxAgeMs ?? 1_000;
  }

  /** The fleet's rate factor for `model` as last read (1 = the configured quota). */
  factorOf(model: string): number {
    const cached = this.cache.get(model);
    return cached ? this.aimd.valueAt(aimdStateOf(cached.row), this.o.now()) : 1;
  }

  /** When the fleet's breaker for `model` is open, until when (epoch ms); 0 otherwise. */
  fleetOpenUntil(model: string): number {
    return this.cache.get(model)?.row.openUntil ?? 0;
  }

  /** Takes one request and `tokens` of `model`'s quota for a `priority` item, or says when to ask again. */
  async tryAcquire(model: string, tokens: number, priority: Priority): Promise<QuotaAnswer> {
    const answer = await this.tryAcquireMany(model, [{ tokens, priority }]);
    const [grant] = answer.grants;
    return grant
      ? { granted: true, grant }
      : { granted: false, retryInMs: answer.retryInMs, reason: answer.reason };
  }

  /**
   * Takes quota for as many of `requests` as fit, in order, with one conditional write: the grants
   * are a prefix of the requests (empty when the first does not fit). Each grant is as if its
   * request had been granted alone, one after the other, so settling or giving one back is the same.
   * When some did not fit, `retryInMs` says when the next one may.
   */
  async tryAcquireMany(model: string, requests: readonly QuotaRequest[]): Promise<BatchAnswer> {
    let row = await this.row(model);
    for (let round = 1; round <= MAX_ROUNDS; round++) {
      const now = this.o.now();
      if (row.openUntil > now) return { grants: [], retryInMs: row.openUntil - now, reason: 'breaker' };
      const plan = this.plan(model, row, now, requests);
      if (plan.grants.length === 0) return { grants: [], retryInMs: plan.retryInMs, reason: 'quota' };
      const busy = row.reqTat >= now && row.tokTat >= now;
      const written = busy
        ? await this.o.store.increment(
            model,
            plan.next.reqTat - plan.start.reqTat,
            plan.next.tokTat - plan.start.tokTat,
            {
              now,
              ...plan.bounds,
            },
          )
        : await this.o.store.replace(model, this.seen(model), plan.next.reqTat, plan.next.tokTat);
      if (written) {
        this.remember(model, written);
        return { grants: plan.grants, retryInMs: plan.retryInMs, reason: 'quota' };
      }
      row = await this.row(model, true);
    }
    return { grants: [], retryInMs: 20 + Math.random() * 80, reason: 'quota' };
  }

  /**
   * Charges the difference between what the request really cost (input + output × burndown, as
   * Bedrock settles it) and what its grant reserved.
   */
  async settle(grant: QuotaGrant, inputTokens: number, outputTokens: number): Promise<void> {
    const burndown = this.o.limitsOf(grant.model).outputBurndown;
    const delta = inputTokens + outputTokens * burndown - grant.reservedTokens;
    if (delta !== 0) await this.o.store.add(grant.model, 0, delta / grant.tokPerMs);
  }

  /** Gives a grant back whole: its request was refused before it ran. */
  giveBack(grant: QuotaGrant): Promise<void> {
    return this.o.store.add(grant.model, -grant.reqMs, -grant.tokMs);
  }

  /** Bedrock throttled a request the fleet admitted: the fleet's rate backs off (AIMD). */
  async throttled(model: string): Promise<void> {
    const row = await this.row(model);
    const next = this.aimd.decrease(aimdStateOf(row), this.o.now());
    if (!next) return;
    const cool = next.decreasedAt - (this.o.aimd?.cooldownMs ?? DEFAULT_AIMD.cooldownMs);
    const written = await this.o.store.decrease(model, next.value, next.decreasedAt, cool);
    if (written) this.remember(model, written);
    else await this.row(model, true);
  }

  /** Opens `model`'s breaker for every instance until `until`. */
  async openForFleet(model: string, until: number): Promise<void> {
    await this.o.store.open(model, until);
    const cached = this.cache.get(model);
    if (cached) this.remember(model, { ...cached.row, openUntil: until });
  }

  /**
   * Which requests fit, in order, as GCRA admits them one after the other: each must find both
   * clocks within its priority's share of the burst. `bounds` is what the stored clocks may be for
   * every one of them still to fit (the write's condition).
   */
  private plan(model: string, row: QuotaRow, now: number, requests: readonly QuotaRequest[]) {
    const limits = this.o.limitsOf(model);
    const factor = this.aimd.valueAt(aimdStateOf(row), now) * this.utilization;
    const start = { reqTat: Math.max(row.reqTat, now), tokTat: Math.max(row.tokTat, now) };
    const grants: QuotaGrant[] = [];
    const bounds = { reqLimit: Number.POSITIVE_INFINITY, tokLimit: Number.POSITIVE_INFINITY };
    if (limits.requestsPerMinute === 0 || limits.tokensPerMinute === 0)
      return { grants, retryInMs: DISABLED_RETRY_MS, start, next: start, bounds };
    const reqPerMs = (limits.requestsPerMinute * factor) / 60_000;
    const tokPerMs = (limits.tokensPerMinute * factor) / 60_000;
    let { reqTat, tokTat } = start;
    let retryInMs = 0;
    for (const { tokens, priority } of requests) {
      const reqMs = 1 / reqPerMs;
      const tokMs = tokens / tokPerMs;
      const burst = HEADROOM[priority] * this.burstMs;
      // A request larger than the burst passes only when its bucket is full, then leaves it in debt.
      const reqLimit = now + Math.max(0, burst - reqMs);
      const tokLimit = now + Math.max(0, burst - tokMs);
      if (reqTat > reqLimit || tokTat > tokLimit) {
        retryInMs = Math.ceil(Math.max(reqTat - reqLimit, tokTat - tokLimit));
        break;
      }
      bounds.reqLimit = Math.min(bounds.reqLimit, reqLimit - (reqTat - start.reqTat));
      bounds.tokLimit = Math.min(bounds.tokLimit, tokLimit - (tokTat - start.tokTat));
      grants.push({ model, reservedTokens: tokens, reqMs, tokMs, tokPerMs });
      reqTat += reqMs;
      tokTat += tokMs;
    }
    return { grants, retryInMs, start, next: { reqTat, tokTat }, bounds };
  }

  private seen(model: string): QuotaRow | undefined {
    const cached = this.cache.get(model);
    return cached && cached.row !== EMPTY_QUOTA_ROW ? cached.row : undefined;
  }

  private async row(model: string, fresh = false): Promise<QuotaRow> {
    const cached = this.cache.get(model);
    if (!fresh && cached && this.o.now() - cached.readAt < this.rowMaxAgeMs) return cached.row;
    const row = (await this.o.store.read(model)) ?? EMPTY_QUOTA_ROW;
    this.remember(model, row);
    return row;
  }

  private remember(model: string, row: QuotaRow): void {
    this.cache.set(model, { row, readAt: this.o.now() });
  }
}

/**
 * A rough token count of a prompt (about 4 bytes of UTF-8 per token), used only to reserve quota
 * before the model reports the real count.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
}
