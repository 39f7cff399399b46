import { z } from 'zod';
import { ConfigError, ValidationError } from '../../shared/errors.js';
import { describeIssues } from './settings.js';

/** How fast the stand-in streams. Applies to streams that start after it is set. */
export interface Timing {
  /** Delay from the request to the first token. */
  readonly timeToFirstTokenMs: number;
  /** Pace of the tokens after the first; 0 streams them as fast as the client reads. */
  readonly tokensPerSecond: number;
  /**
   * Each stream wakes once per tick and writes every event due by then in one socket write, so
   * 1,000 paced streams cost 1,000 timer callbacks per tick, not one per token.
   */
  readonly tickMs: number;
}

/** A model answering at a realistic pace: a few hundred ms to the first token, then ~80 tokens/s. */
export const DEFAULT_TIMING: Timing = { timeToFirstTokenMs: 300, tokensPerSecond: 80, tickMs: 25 };

export type TimingUpdate = Partial<Timing>;

const TimingSchema = z.strictObject({
  timeToFirstTokenMs: z.number().min(0).max(600_000).optional(),
  // `null` (JSON has no Infinity) and Infinity both mean "as fast as possible", stored as 0.
  tokensPerSecond: z
    .preprocess(
      (v) => (v === null || v === Number.POSITIVE_INFINITY ? 0 : v),
      z.number().min(0, 'must be >= 0 (0, null or Infinity: as fast as possible)'),
    )
    .optional(),
  tickMs: z.number().int().min(5).max(1_000).optional(),
});

/** Validates a timing change (options, the control endpoint); throws a `ValidationError`. */
export function parseTiming(value: unknown): TimingUpdate {
  const result = TimingSchema.safeParse(value);
  if (result.success) {
    // Keys absent from the input stay absent, so an update never resets what it does not name.
    return Object.fromEntries(Object.entries(result.data).filter(([, v]) => v !== undefined));
  }
  throw new ValidationError(`invalid Bedrock stand-in timing: ${describeIssues(result.error, '(timing)')}`);
}

export const TIME_TO_FIRST_TOKEN_ENV = 'BEDROCK_TIME_TO_FIRST_TOKEN_MS';
export const TOKENS_PER_SECOND_ENV = 'BEDROCK_TOKENS_PER_SECOND';

/** Reads `BEDROCK_TIME_TO_FIRST_TOKEN_MS` and `BEDROCK_TOKENS_PER_SECOND`; throws a `ConfigError` naming a bad one. */
export function timingFromEnv(env: NodeJS.ProcessEnv): TimingUpdate {
  const update: Record<string, number> = {};
  for (const [name, key] of [
    [TIME_TO_FIRST_TOKEN_ENV, 'timeToFirstTokenMs'],
    [TOKENS_PER_SECOND_ENV, 'tokensPerSecond'],
  ] as const) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    const value = Number(raw);
    try {
      Object.assign(update, parseTiming({ [key]: Number.isNaN(value) ? raw : value }));
    } catch (err) {
      throw new ConfigError(
        `${name} must be a number >= 0, got ${JSON.stringify(raw)} (${err instanceof Error ? err.message : String(err)})`,
      );
    }
  }
  return update;
}
