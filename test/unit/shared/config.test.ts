import { describe, expect, it } from 'vitest';
import { estimateCostUsd, loadConfig } from '../../../shared/config.js';
import { ConfigError } from '../../../shared/errors.js';

describe('loadConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = loadConfig({});
    expect(config.inputStream).toBe('work-items');
    expect(config.producer.flushIntervalMs).toBe(50);
    expect(config.endpoints.kinesis).toBeUndefined();
  });

  it('names the bad variable, its value and what was expected', () => {
    // Act
    const attempt = () => loadConfig({ FLUSH_INTERVAL_MS: 'soon', KINESIS_ENDPOINT: 'not a url' });
    // Assess
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/FLUSH_INTERVAL_MS="soon"/);
    expect(attempt).toThrow(/KINESIS_ENDPOINT="not a url"/);
  });

  it('merges a MODEL_PRICES table over the defaults and rejects malformed JSON', () => {
    const config = loadConfig({ MODEL_PRICES: '{"my.model":{"inputPer1k":1,"outputPer1k":2}}' });
    expect(estimateCostUsd(config.modelPrices, 'my.model', { inputTokens: 1000, outputTokens: 500 })).toBe(2);
    expect(() => loadConfig({ MODEL_PRICES: '{nope' })).toThrow(/MODEL_PRICES.*not valid JSON/);
  });

  it('prices a cross-region inference profile as its base model', () => {
    const { modelPrices } = loadConfig({});
    const base = estimateCostUsd(modelPrices, 'anthropic.claude-3-5-haiku-20241022-v1:0', {
      inputTokens: 10,
      outputTokens: 10,
    });
    expect(base).toBeGreaterThan(0);
    expect(
      estimateCostUsd(modelPrices, 'us.anthropic.claude-3-5-haiku-20241022-v1:0', {
        inputTokens: 10,
        outputTokens: 10,
      }),
    ).toBe(base);
  });
});
