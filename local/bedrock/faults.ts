import { z } from 'zod';
import { ValidationError } from '../../shared/errors.js';
import { STREAM_EXCEPTIONS, type StreamException } from './event-stream.js';
import { describeIssues, jsonSettingFromEnv } from './settings.js';

/**
 * Which requests a fault hits. A request is eligible when its prompt text contains `match` (every
 * request when unset); of the eligible ones, `everyNth` picks the Nth, 2Nth, ... (every one when
 * unset), and each of those is hit with `probability` (1 when unset). At least one of the three
 * must be set, so `{}` never silently means "always".
 */
export interface FaultRule {
  /** In [0, 1]. */
  readonly probability?: number;
  /** An integer >= 1. */
  readonly everyNth?: number;
  /** A substring of the prompt text (system and message text, or the Llama prompt). */
  readonly match?: string;
}

/** A fault inside a response stream, after some tokens. */
export interface StreamFaultRule extends FaultRule {
  /**
   * Tokens streamed before the fault; default half of the answer. At or beyond the answer's
   * length, every token is streamed and the fault replaces the final events.
   */
  readonly afterTokens?: number;
}

/**
 * Faults of InvokeModelWithResponseStream. InvokeModel is never faulted: it is how tests and
 * checkers learn the expected text. Rules are tried in the order below; a request hit by one is
 * not counted by the later ones.
 */
export interface Faults {
  /** HTTP 429 `ThrottlingException` before the stream starts: the SDK's `send()` rejects. */
  readonly throttle?: FaultRule;
  /** HTTP 503 `ServiceUnavailableException` before the stream starts: the SDK's `send()` rejects. */
  readonly unavailable?: FaultRule;
  /** An exception frame after some tokens: the SDK's `for await` throws the typed error. */
  readonly midStream?: StreamFaultRule & {
    /** Default `modelStreamErrorException`. */
    readonly exception?: StreamException;
  };
  /** The stream just ends after some tokens, without its final events and without an error. */
  readonly truncate?: StreamFaultRule;
}

/** What happens to one stream request. */
export type FaultDecision =
  | { readonly kind: 'none' }
  | { readonly kind: 'throttle' }
  | { readonly kind: 'unavailable' }
  | { readonly kind: 'midStream'; readonly afterTokens: number; readonly exception: StreamException }
  | { readonly kind: 'truncate'; readonly afterTokens: number };

const ruleShape = {
  probability: z.number().min(0).max(1).optional(),
  everyNth: z.number().int().min(1).optional(),
  match: z.string().min(1).optional(),
};
const selects = (rule: FaultRule) =>
  rule.probability !== undefined || rule.everyNth !== undefined || rule.match !== undefined;
const selectsMessage = 'set at least one of probability, everyNth or match';

const FaultsSchema = z.strictObject({
  throttle: z.strictObject(ruleShape).refine(selects, selectsMessage).optional(),
  unavailable: z.strictObject(ruleShape).refine(selects, selectsMessage).optional(),
  midStream: z
    .strictObject({
      ...ruleShape,
      afterTokens: z.number().int().min(0).optional(),
      exception: z.enum(STREAM_EXCEPTIONS).optional(),
    })
    .refine(selects, selectsMessage)
    .optional(),
  truncate: z
    .strictObject({ ...ruleShape, afterTokens: z.number().int().min(0).optional() })
    .refine(selects, selectsMessage)
    .optional(),
});

/** Validates fault settings from JSON (the env var, the control endpoint); throws a `ValidationError`. */
export function parseFaults(value: unknown): Faults {
  const result = FaultsSchema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationError(`invalid Bedrock stand-in faults: ${describeIssues(result.error, '(faults)')}`);
}

/** The environment variable holding fault settings as JSON. */
export const FAULTS_ENV = 'BEDROCK_FAULTS';

/**
 * Reads fault settings from `BEDROCK_FAULTS` (JSON, e.g. `{"throttle":{"probability":0.1}}`);
 * undefined when unset or empty. Throws a `ConfigError` naming the variable and the bad field.
 */
export function faultsFromEnv(env: NodeJS.ProcessEnv): Faults | undefined {
  return jsonSettingFromEnv(env, FAULTS_ENV, 'fault settings', parseFaults);
}

type RuleName = keyof Faults;

/** Decides, request by request, which fault (if any) a stream gets. Counters restart on `set`. */
export class FaultInjector {
  private faults: Faults;
  private counts: Record<RuleName, number> = { throttle: 0, unavailable: 0, midStream: 0, truncate: 0 };

  constructor(
    faults: Faults | undefined,
    private readonly random: () => number = Math.random,
  ) {
    this.faults = faults ? parseFaults(faults) : {};
  }

  /** Replaces every fault setting; throws a `ValidationError` on a bad one, keeping the old ones. */
  set(faults: Faults): void {
    this.faults = parseFaults(faults);
    this.counts = { throttle: 0, unavailable: 0, midStream: 0, truncate: 0 };
  }

  get(): Faults {
    return this.faults;
  }

  /** The fault for a stream request with this prompt and an answer of `outputTokens` tokens. */
  decide(promptText: string, outputTokens: number): FaultDecision {
    const { throttle, unavailable, midStream, truncate } = this.faults;
    if (throttle && this.hits('throttle', throttle, promptText)) return { kind: 'throttle' };
    if (unavailable && this.hits('unavailable', unavailable, promptText)) return { kind: 'unavailable' };
    const after = (rule: StreamFaultRule) =>
      Math.min(rule.afterTokens ?? Math.floor(outputTokens / 2), outputTokens);
    if (midStream && this.hits('midStream', midStream, promptText))
      return {
        kind: 'midStream',
        afterTokens: after(midStream),
        exception: midStream.exception ?? 'modelStreamErrorException',
      };
    if (truncate && this.hits('truncate', truncate, promptText))
      return { kind: 'truncate', afterTokens: after(truncate) };
    return { kind: 'none' };
  }

  private hits(name: RuleName, rule: FaultRule, promptText: string): boolean {
    if (rule.match !== undefined && !promptText.includes(rule.match)) return false;
    this.counts[name]++;
    if (rule.everyNth !== undefined && this.counts[name] % rule.everyNth !== 0) return false;
    return rule.probability === undefined || this.random() < rule.probability;
  }
}
