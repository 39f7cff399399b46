import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { standInOptionsFromEnv } from '../../../../local/bedrock/index.js';
import {
  AccountQuotas,
  type Admission,
  parseQuotas,
  QUOTA_WINDOW_MS,
  type Quotas,
  quotasFromEnv,
} from '../../../../local/bedrock/quotas.js';
import { ConfigError, ValidationError } from '../../../../shared/errors.js';

const MODEL = 'anthropic.claude-3-5-haiku-20241022-v1:0';

/** Quotas on a clock the test moves by hand. */
function fakeClockQuotas(quotas: Quotas) {
  const clock = { now: 0 };
  const accountQuotas = new AccountQuotas(quotas, () => clock.now);
  const admit = (inputTokens: number, maxTokens: number, modelId = MODEL) =>
    accountQuotas.admit({ modelId, inputTokens, maxTokens });
  const window = (modelId = MODEL) => accountQuotas.report().window[modelId];
  const usage = (modelId = MODEL) => accountQuotas.report().usage[modelId];
  return { clock, quotas: accountQuotas, admit, window, usage };
}

function admitted(admission: Admission): (outputTokens: number) => void {
  if (!admission.admitted) throw new Error(`expected admission, got: ${admission.message}`);
  return admission.settle;
}

describe('AccountQuotas', () => {
  it('reserves input tokens + the token limit when a request starts', () => {
    // Prepare
    const q = fakeClockQuotas({ [MODEL]: { tokensPerMinute: 1_000 } });

    // Act
    admitted(q.admit(100, 400));
    admitted(q.admit(100, 400));
    const third = q.admit(1, 1);

    // Assess
    expect(q.window()).toEqual({ requests: 2, tokens: 1_000 });
    expect(third).toMatchObject({ admitted: false, message: expect.stringMatching(/^Too many tokens/) });
    expect(q.usage()).toEqual({ requests: 3, throttled: 1, inputTokens: 200, outputTokens: 0 });
  });

  it('settles to input + output × outputBurndown when the request ends, freeing or taking quota', () => {
    const q = fakeClockQuotas({ [MODEL]: { tokensPerMinute: 1_000, outputBurndown: 5 } });
    const short = admitted(q.admit(100, 400));
    const long = admitted(q.admit(100, 400));
    expect(q.admit(100, 400).admitted).toBe(false);

    short(20); // 100 + 20 × 5 = 200 instead of the 500 reserved
    expect(q.window()).toEqual({ requests: 2, tokens: 700 });
    long(300); // 100 + 300 × 5 = 1,600: more than it reserved
    short(400); // settles once only

    expect(q.window()).toEqual({ requests: 2, tokens: 1_800 });
    expect(q.usage()).toMatchObject({ inputTokens: 200, outputTokens: 320 });
    expect(q.admit(1, 1).admitted).toBe(false);
  });

  it('lets a request in again once earlier ones started 60 s ago (rolling window)', () => {
    const q = fakeClockQuotas({ [MODEL]: { tokensPerMinute: 1_000 } });
    admitted(q.admit(100, 400)); // t = 0
    q.clock.now = 30_000;
    admitted(q.admit(100, 400)); // t = 30 s

    q.clock.now = QUOTA_WINDOW_MS - 1;
    expect(q.admit(100, 400).admitted).toBe(false);
    q.clock.now = QUOTA_WINDOW_MS;
    expect(q.window()).toEqual({ requests: 1, tokens: 500 });
    admitted(q.admit(100, 400));
    expect(q.admit(100, 400).admitted).toBe(false);
    q.clock.now = 30_000 + QUOTA_WINDOW_MS;
    admitted(q.admit(100, 400));
  });

  it('limits requests per minute, counting only admitted requests', () => {
    const q = fakeClockQuotas({ [MODEL]: { requestsPerMinute: 3 } });
    for (let i = 0; i < 3; i++) admitted(q.admit(10, 10_000));

    const fourth = q.admit(10, 10);
    q.clock.now = 59_000;
    expect(q.admit(10, 10).admitted).toBe(false);
    q.clock.now = QUOTA_WINDOW_MS;

    expect(fourth).toMatchObject({ admitted: false, message: expect.stringMatching(/^Too many requests/) });
    expect(fourth.admitted || fourth.message).toMatch(/requestsPerMinute 3, 3 admitted/);
    for (let i = 0; i < 3; i++) admitted(q.admit(10, 10));
    expect(q.usage()).toEqual({ requests: 8, throttled: 2, inputTokens: 60, outputTokens: 0 });
  });

  it('throttles every request to a model whose limit is 0', () => {
    const q = fakeClockQuotas({
      [MODEL]: { requestsPerMinute: 0 },
      'meta.llama3-8b-instruct-v1:0': { tokensPerMinute: 0 },
      'amazon.nova-micro-v1:0': { outputBurndown: 2 },
    });

    expect(q.admit(1, 1).admitted).toBe(false);
    expect(q.admit(1, 1, 'meta.llama3-8b-instruct-v1:0').admitted).toBe(false);
    q.clock.now = 10 * QUOTA_WINDOW_MS;
    expect(q.admit(1, 1).admitted).toBe(false);
    admitted(q.admit(1_000_000, 1_000_000, 'amazon.nova-micro-v1:0'));
  });

  it('refuses for good a request that alone reserves more than the quota, and says so', () => {
    const q = fakeClockQuotas({ [MODEL]: { tokensPerMinute: 1_000 } });

    const refusal = q.admit(200, 900);

    expect(refusal.admitted || refusal.message).toMatch(/reserves 1100 .*more than the whole quota/);
  });

  it('settles an early-ended request with the output it actually produced', () => {
    const q = fakeClockQuotas({ [MODEL]: { tokensPerMinute: 10_000, outputBurndown: 5 } });
    const aborted = admitted(q.admit(50, 2_000));

    aborted(7);

    expect(q.window()).toEqual({ requests: 1, tokens: 50 + 7 * 5 });
    expect(q.usage()).toMatchObject({ inputTokens: 50, outputTokens: 7 });
  });

  it('does not charge a settlement that comes after the request left the window', () => {
    const q = fakeClockQuotas({ [MODEL]: { tokensPerMinute: 1_000, outputBurndown: 5 } });
    const slow = admitted(q.admit(100, 100));
    q.clock.now = 61_000;
    const next = admitted(q.admit(100, 100));

    slow(100);

    expect(q.window()).toEqual({ requests: 1, tokens: 200 });
    next(10);
    expect(q.window()).toEqual({ requests: 1, tokens: 150 });
    expect(q.usage()).toMatchObject({ outputTokens: 110 });
  });

  it('keys quotas by the exact model id: an inference profile has its own', () => {
    const q = fakeClockQuotas({ [`us.${MODEL}`]: { requestsPerMinute: 0 } });

    admitted(q.admit(1, 1));

    expect(q.admit(1, 1, `us.${MODEL}`).admitted).toBe(false);
  });

  it('reports every limited model and every model asked for since the quotas were set', () => {
    const q = fakeClockQuotas({ [MODEL]: { requestsPerMinute: 5 } });
    admitted(q.admit(3, 4, 'amazon.nova-micro-v1:0'))(2);

    expect(q.quotas.report()).toEqual({
      limits: { [MODEL]: { requestsPerMinute: 5 } },
      usage: {
        [MODEL]: { requests: 0, throttled: 0, inputTokens: 0, outputTokens: 0 },
        'amazon.nova-micro-v1:0': { requests: 1, throttled: 0, inputTokens: 3, outputTokens: 2 },
      },
      window: {
        [MODEL]: { requests: 0, tokens: 0 },
        'amazon.nova-micro-v1:0': { requests: 1, tokens: 5 },
      },
    });
  });

  it('starts afresh when the quotas are replaced; streams admitted before settle into nothing', () => {
    const q = fakeClockQuotas({ [MODEL]: { requestsPerMinute: 1 } });
    const before = admitted(q.admit(10, 10));
    expect(q.admit(10, 10).admitted).toBe(false);

    q.quotas.set({ [MODEL]: { requestsPerMinute: 1 } });
    before(10);

    expect(q.usage()).toEqual({ requests: 0, throttled: 0, inputTokens: 0, outputTokens: 0 });
    admitted(q.admit(10, 10));
    q.quotas.set({});
    expect(q.quotas.report()).toEqual({ limits: {}, usage: {}, window: {} });
  });

  it('never admits more than the limits in any 60 s, and sums its window like a recount', () => {
    const step = fc.record({
      advanceMs: fc.integer({ min: 0, max: 20_000 }),
      inputTokens: fc.integer({ min: 1, max: 300 }),
      maxTokens: fc.integer({ min: 1, max: 500 }),
      settle: fc.option(fc.nat(), { nil: undefined }),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        const q = fakeClockQuotas({ [MODEL]: { requestsPerMinute: 6, tokensPerMinute: 2_000 } });
        const charges: { at: number; tokens: number }[] = [];
        const open: {
          settle: (n: number) => void;
          charge: { tokens: number };
          input: number;
          max: number;
        }[] = [];
        for (const s of steps) {
          q.clock.now += s.advanceMs;
          if (s.settle !== undefined && open.length > 0) {
            const [ended] = open.splice(s.settle % open.length, 1);
            const output = s.settle % (ended!.max + 1);
            ended!.settle(output);
            ended!.charge.tokens = ended!.input + output;
          }
          const admission = q.admit(s.inputTokens, s.maxTokens);
          if (admission.admitted) {
            const charge = { at: q.clock.now, tokens: s.inputTokens + s.maxTokens };
            charges.push(charge);
            open.push({ settle: admission.settle, charge, input: s.inputTokens, max: s.maxTokens });
          }
          const inWindow = charges.filter((c) => q.clock.now - c.at < QUOTA_WINDOW_MS);
          const recount = { requests: inWindow.length, tokens: inWindow.reduce((n, c) => n + c.tokens, 0) };
          expect(q.window()).toEqual(recount);
          expect(recount.requests).toBeLessThanOrEqual(6);
          expect(recount.tokens).toBeLessThanOrEqual(2_000);
        }
      }),
    );
  });
});

describe('quota settings', () => {
  it('refuses a bad setting naming the field', () => {
    expect(() => parseQuotas({ [MODEL]: { tokensPerMinute: -1 } })).toThrow(ValidationError);
    expect(() => parseQuotas({ [MODEL]: { tokensPerMinute: -1 } })).toThrow(
      /anthropic\.claude-3-5-haiku-20241022-v1:0\.tokensPerMinute/,
    );
    expect(() => parseQuotas({ [MODEL]: { requestsPerMinute: 1.5 } })).toThrow(/requestsPerMinute/);
    expect(() => parseQuotas({ [MODEL]: { outputBurndown: 0 } })).toThrow(/outputBurndown/);
    expect(() => parseQuotas({ [MODEL]: { tokensPerMin: 10 } })).toThrow(/tokensPerMin/);
    expect(() => parseQuotas([])).toThrow(/\(quotas\)/);
    expect(parseQuotas({ [MODEL]: {} })).toEqual({ [MODEL]: {} });
  });

  it('reads BEDROCK_QUOTAS, failing start-up on a bad value, and passes it to the stand-in options', () => {
    const json = `{"${MODEL}":{"requestsPerMinute":120,"tokensPerMinute":40000,"outputBurndown":5}}`;

    expect(quotasFromEnv({ BEDROCK_QUOTAS: json })).toEqual({
      [MODEL]: { requestsPerMinute: 120, tokensPerMinute: 40_000, outputBurndown: 5 },
    });
    expect(standInOptionsFromEnv({ BEDROCK_QUOTAS: json }).quotas).toEqual(
      quotasFromEnv({ BEDROCK_QUOTAS: json }),
    );
    expect(quotasFromEnv({ BEDROCK_QUOTAS: ' ' })).toBeUndefined();
    expect(() => quotasFromEnv({ BEDROCK_QUOTAS: '{x' })).toThrow(ConfigError);
    expect(() => quotasFromEnv({ BEDROCK_QUOTAS: `{"${MODEL}":{"tokensPerMinute":"many"}}` })).toThrow(
      /BEDROCK_QUOTAS: .*tokensPerMinute/,
    );
  });
});
