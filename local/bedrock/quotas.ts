import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import { ValidationError } from '../../shared/errors.js';
import { describeIssues, jsonSettingFromEnv } from './settings.js';

/** Bedrock's quotas are per minute; the stand-in counts them over the last 60 s, rolling. */
export const QUOTA_WINDOW_MS = 60_000;

const count = z.number().int().min(0);

/** One model's account quota. A limit left out is unlimited. */
const ModelQuotaSchema = z.strictObject({
  /** Requests admitted in any 60 s; 0 throttles every request. */
  requestsPerMinute: count.optional(),
  /** Tokens charged in any 60 s (reserved at the start, settled at the end); 0 throttles every request. */
  tokensPerMinute: count.optional(),
  /** How many quota tokens each output token costs when a request settles; default 1. */
  outputBurndown: z.number().int().min(1).optional(),
});

const QuotasSchema = z.record(z.string().min(1), ModelQuotaSchema);

/** One model's account quota: `requestsPerMinute`, `tokensPerMinute`, `outputBurndown` (default 1). */
export type ModelQuota = z.infer<typeof ModelQuotaSchema>;

/** Account quotas by model id, exactly as clients send the id (a profile id and its ARN are separate keys). */
export type Quotas = z.infer<typeof QuotasSchema>;

/** What a model's stream requests did since the quotas were last set. */
export interface ModelUsage {
  /** Stream requests that met the quota, admitted or throttled. */
  requests: number;
  /** Requests the quota refused (HTTP 429). */
  throttled: number;
  /** Input tokens of the admitted requests. */
  inputTokens: number;
  /** Output tokens streamed by admitted requests that have ended (as streamed, before `outputBurndown`). */
  outputTokens: number;
}

/** What counts against a model's quota right now: the last 60 s. */
export interface QuotaWindow {
  /** Requests admitted in the last 60 s. */
  requests: number;
  /** Quota tokens charged to them: the reservation while a stream is open, the settled cost after. */
  tokens: number;
}

/** `GET /_control/quotas`: the limits, and per model the counters since the last `PUT` and the window. */
export interface QuotasReport {
  limits: Quotas;
  usage: Record<string, ModelUsage>;
  window: Record<string, QuotaWindow>;
}

/** A stream request as the quota sees it. */
export interface QuotaRequest {
  /** The model id as the request named it (after URL decoding). */
  readonly modelId: string;
  readonly inputTokens: number;
  /** The request's token limit, or its family's default. */
  readonly maxTokens: number;
}

/** The quota's answer: admitted (settle once the stream has ended) or throttled (why). */
export type Admission =
  | { readonly admitted: true; readonly settle: (outputTokens: number) => void }
  | { readonly admitted: false; readonly message: string };

/** Validates quotas from JSON (options, env, the control endpoint); throws a `ValidationError` naming the field. */
export function parseQuotas(value: unknown): Quotas {
  const result = QuotasSchema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(`invalid Bedrock stand-in quotas: ${describeIssues(result.error, '(quotas)')}`);
}

/** The environment variable holding quotas as JSON. */
export const QUOTAS_ENV = 'BEDROCK_QUOTAS';

/**
 * Reads quotas from `BEDROCK_QUOTAS` (JSON, e.g. `{"anthropic.claude-3-5-haiku-20241022-v1:0":
 * {"requestsPerMinute":120,"tokensPerMinute":40000}}`); undefined when unset or empty. Throws a
 * `ConfigError` naming the variable and the bad field.
 */
export function quotasFromEnv(env: NodeJS.ProcessEnv): Quotas | undefined {
  return jsonSettingFromEnv(env, QUOTAS_ENV, 'quotas', parseQuotas);
}

/** One request's charge while it is in the window. */
interface Charge {
  readonly at: number;
  tokens: number;
  inWindow: boolean;
}

/** One model's counters and the charges of its last 60 s, summed as they come and go. */
class ModelLedger {
  readonly usage: ModelUsage = { requests: 0, throttled: 0, inputTokens: 0, outputTokens: 0 };
  requests = 0;
  tokens = 0;
  private charges: Charge[] = [];
  private head = 0;

  /** Drops the charges that started 60 s or more before `now`. */
  prune(now: number): void {
    while (this.head < this.charges.length) {
      const oldest = this.charges[this.head] as Charge;
      if (now - oldest.at < QUOTA_WINDOW_MS) break;
      this.requests--;
      this.tokens -= oldest.tokens;
      oldest.inWindow = false;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.charges.length) {
      this.charges = this.charges.slice(this.head);
      this.head = 0;
    }
  }

  charge(at: number, tokens: number): Charge {
    const charge = { at, tokens, inWindow: true };
    this.charges.push(charge);
    this.requests++;
    this.tokens += tokens;
    return charge;
  }

  /** Changes a charge's cost; once it has left the window it no longer counts, whatever it costs. */
  amend(charge: Charge, tokens: number): void {
    if (charge.inWindow) this.tokens += tokens - charge.tokens;
    charge.tokens = tokens;
  }
}

/**
 * Bedrock's per-account, per-model quotas, as one object every client of the stand-in draws on.
 * A stream request reserves input tokens + its token limit when it starts and settles to input +
 * output × `outputBurndown` when it ends, however it ends. Both limits are counted over a rolling
 * 60 s window: a request is admitted only if the requests and tokens charged to requests that
 * started in the last 60 s, plus this one, stay within the limits. No I/O; the clock is injected.
 */
export class AccountQuotas {
  private limits: Quotas = {};
  private ledgers = new Map<string, ModelLedger>();

  constructor(
    quotas: Quotas | undefined,
    /** Milliseconds, never going back. */
    private readonly now: () => number = () => performance.now(),
  ) {
    if (quotas) this.set(quotas);
  }

  /** Replaces every quota and starts every counter afresh; throws a `ValidationError`, keeping the old ones. */
  set(quotas: Quotas): void {
    this.limits = parseQuotas(quotas);
    // Streams admitted before keep their tickets, but settle into ledgers nobody reads any more.
    this.ledgers = new Map();
  }

  /** Admits a stream request or says why not; an admitted one must be settled once it has ended. */
  admit(request: QuotaRequest): Admission {
    const now = this.now();
    const quota = this.limits[request.modelId] ?? {};
    const ledger = this.ledger(request.modelId);
    ledger.prune(now);
    ledger.usage.requests++;
    const reservation = request.inputTokens + request.maxTokens;
    const refusal = refusalOf(request.modelId, quota, ledger, reservation);
    if (refusal) {
      ledger.usage.throttled++;
      return { admitted: false, message: refusal };
    }
    ledger.usage.inputTokens += request.inputTokens;
    const charge = ledger.charge(now, reservation);
    const burndown = quota.outputBurndown ?? 1;
    let settled = false;
    const settle = (outputTokens: number) => {
      if (settled) return;
      settled = true;
      ledger.usage.outputTokens += outputTokens;
      ledger.amend(charge, request.inputTokens + outputTokens * burndown);
    };
    return { admitted: true, settle };
  }

  /** The limits, and per model (limited or seen since the last `set`) its counters and its window. */
  report(): QuotasReport {
    const now = this.now();
    const usage: Record<string, ModelUsage> = {};
    const window: Record<string, QuotaWindow> = {};
    for (const modelId of new Set([...Object.keys(this.limits), ...this.ledgers.keys()])) {
      const ledger = this.ledger(modelId);
      ledger.prune(now);
      usage[modelId] = { ...ledger.usage };
      window[modelId] = { requests: ledger.requests, tokens: ledger.tokens };
    }
    return { limits: this.limits, usage, window };
  }

  private ledger(modelId: string): ModelLedger {
    let ledger = this.ledgers.get(modelId);
    if (!ledger) {
      ledger = new ModelLedger();
      this.ledgers.set(modelId, ledger);
    }
    return ledger;
  }
}

/** Why a request over a limit is refused, in Bedrock's words plus the figures; undefined when it fits. */
function refusalOf(
  modelId: string,
  quota: ModelQuota,
  window: { readonly requests: number; readonly tokens: number },
  reservation: number,
): string | undefined {
  const { requestsPerMinute: rpm, tokensPerMinute: tpm } = quota;
  const where = `local Bedrock stand-in quota for ${modelId}`;
  if (rpm !== undefined && window.requests + 1 > rpm)
    return (
      'Too many requests, please wait before trying again. ' +
      `(${where}: requestsPerMinute ${rpm}, ${window.requests} admitted in the last 60 s)`
    );
  if (tpm !== undefined && window.tokens + reservation > tpm)
    return (
      'Too many tokens, please wait before trying again. ' +
      `(${where}: tokensPerMinute ${tpm}, ${window.tokens} charged in the last 60 s, this request ` +
      `reserves ${reservation} = input + token limit${reservation > tpm ? ', more than the whole quota' : ''})`
    );
  return undefined;
}
