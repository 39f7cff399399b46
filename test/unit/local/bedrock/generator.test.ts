import { describe, expect, it } from 'vitest';
import {
  countInputTokens,
  type GenerationInput,
  generate,
  planGeneration,
  TokenSource,
} from '../../../../local/bedrock/generator.js';

const input = (overrides: Partial<GenerationInput> = {}): GenerationInput => ({
  modelId: 'anthropic.claude-3-5-haiku-20241022-v1:0',
  promptText: 'user: Summarise the design of an exactly-once pipeline.',
  maxTokens: 300,
  ...overrides,
});

/** With the `u` flag a paired surrogate is one code point, so this matches only a lone half. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const tokensOf = (source: TokenSource): string[] => {
  const tokens: string[] = [];
  while (source.remaining > 0) tokens.push(source.next());
  return tokens;
};

describe('generate', () => {
  it('is a function of its input: the same input gives the same text', () => {
    // Act
    const first = generate(input());
    const second = generate(input());

    // Assess
    expect(second).toEqual(first);
    expect(first.text.length).toBeGreaterThan(0);
  });

  it('changes when the model, the prompt or the limit changes', () => {
    const base = generate(input()).text;

    expect(generate(input({ modelId: 'anthropic.claude-3-5-sonnet-20241022-v2:0' })).text).not.toBe(base);
    expect(generate(input({ promptText: 'user: Something else entirely.' })).text).not.toBe(base);
    expect(generate(input({ maxTokens: 40 })).text).not.toBe(base);
  });

  it('joins exactly the tokens a TokenSource streams, one per output token', () => {
    const whole = generate(input());
    const source = new TokenSource(input());

    const tokens = tokensOf(source);

    expect(tokens).toHaveLength(whole.outputTokens);
    expect(tokens.join('')).toBe(whole.text);
    expect(() => source.next()).toThrow(RangeError);
  });

  it('produces only whole code points, in every token, with multi-byte characters among them', () => {
    const tokens = tokensOf(new TokenSource(input({ maxTokens: 5_000 })));
    const text = tokens.join('');

    for (const token of tokens) {
      expect(token.length).toBeGreaterThan(0);
      expect(token).not.toMatch(LONE_SURROGATE);
      expect(Buffer.from(token, 'utf8').toString('utf8')).toBe(token);
    }
    expect(text).toMatch(/\p{Extended_Pictographic}/u);
    expect(text).toMatch(/[\u{10000}-\u{10FFFF}]/u);
    expect(text).toMatch(/\p{Script=Han}/u);
    expect(text).toMatch(/[À-ÿ]/u);
    expect(text).toMatch(/ [a-z]+/);
  });

  it('continues the same answer when the limit grows', () => {
    const short = generate(input({ maxTokens: 50 }));
    const long = generate(input({ maxTokens: 5_000 }));
    const shortTokens = tokensOf(new TokenSource(input({ maxTokens: 50 })));
    const longTokens = tokensOf(new TokenSource(input({ maxTokens: 5_000 })));

    // A complete answer ends on a full stop; every token before it is shared.
    const shared = short.finish === 'complete' ? short.outputTokens - 1 : short.outputTokens;
    expect(longTokens.slice(0, shared)).toEqual(shortTokens.slice(0, shared));
    expect(long.outputTokens).toBeGreaterThan(short.outputTokens);
  });

  it('makes a 200,000-token answer of the planned length', () => {
    const big = generate(input({ maxTokens: 200_000 }));

    expect(big.outputTokens).toBe(planGeneration(input({ maxTokens: 200_000 })).outputTokens);
    expect(big.outputTokens).toBeGreaterThanOrEqual(120_000);
  });
});

describe('planGeneration', () => {
  it('sizes the answer from the limit: 60–100% of it, stopping for the limit only when it is reached', () => {
    const finishes = new Set<string>();
    for (const maxTokens of [2, 3, 10, 64, 1_000, 8_192]) {
      for (let i = 0; i < 60; i++) {
        const plan = planGeneration(input({ promptText: `prompt ${i}`, maxTokens }));
        finishes.add(plan.finish);
        expect(plan.outputTokens).toBeLessThanOrEqual(maxTokens);
        expect(plan.outputTokens).toBeGreaterThanOrEqual(Math.max(1, Math.floor(maxTokens * 0.6)));
        expect(plan.finish === 'limit').toBe(plan.outputTokens === maxTokens);
      }
    }
    expect(finishes).toEqual(new Set(['complete', 'limit']));
  });

  it('stops for the limit when the limit is a single token', () => {
    expect(planGeneration(input({ maxTokens: 1 }))).toMatchObject({ outputTokens: 1, finish: 'limit' });
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => planGeneration(input({ maxTokens: 0 }))).toThrow(/integer >= 1, got 0/);
    expect(() => planGeneration(input({ maxTokens: 2.5 }))).toThrow(/got 2.5/);
  });

  it('counts about one input token per four characters of prompt, never 0', () => {
    expect(countInputTokens('')).toBe(1);
    expect(countInputTokens('abcd')).toBe(1);
    expect(countInputTokens('abcde')).toBe(2);
    // Code points, not UTF-16 units: four emoji are four characters.
    expect(countInputTokens('🚀🚀🚀🚀')).toBe(1);
  });
});
