import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONTEXT_DEFAULTS, ContextError, readSettings } from '../../../cdk/context.js';

describe('readSettings', () => {
  it('applies the documented defaults to an empty context', () => {
    // Act
    const settings = readSettings({});
    // Assess
    expect(settings.stackName).toBe('KinesisModelStreams');
    expect(settings.modelId).toBe(CONTEXT_DEFAULTS.modelId);
    expect(settings.inputShardCount).toBe(0);
    expect(settings.chunkMapping).toEqual({
      batchSize: 500,
      maxBatchingWindowSeconds: 0,
      parallelizationFactor: 4,
      retryAttempts: -1,
      maxRecordAgeSeconds: 21_600,
    });
    expect(settings.producerEnvironment).toEqual({});
    expect(settings.generator.reservedConcurrency).toBeUndefined();
    expect(settings.alarms.topicArn).toBeUndefined();
  });

  it('refuses a record age that leaves too little stream retention to replay dead letters', () => {
    expect(() => readSettings({ streamRetentionHours: 24, chunkMaxRecordAgeSeconds: 13 * 3600 })).toThrow(
      /chunkMaxRecordAgeSeconds"=46800 leaves less than 12 h of the stream's 24 h retention .* at most 43200/,
    );
    expect(
      readSettings({ streamRetentionHours: 48, chunkMaxRecordAgeSeconds: 36 * 3600 }).chunkMapping
        .maxRecordAgeSeconds,
    ).toBe(129_600);
  });

  it('accepts every value of cdk.json as it is', () => {
    const cdkJson = JSON.parse(readFileSync(new URL('../../../cdk.json', import.meta.url), 'utf8')) as {
      context: Record<string, unknown>;
    };
    expect(() => readSettings(cdkJson.context)).not.toThrow();
  });

  it('parses the strings `-c key=value` gives', () => {
    // Act
    const settings = readSettings({
      chunkShardCount: '4',
      additionalModelIds: 'us.anthropic.claude-3-5-haiku-20241022-v1:0, amazon.nova-lite-v1:0',
      corsAllowOrigins: '["https://dash.example.com"]',
      apiGatewayCloudWatchRole: 'false',
      logLevel: 'debug',
      logRetentionDays: '90',
      modelPrices: '{"amazon.nova-lite-v1:0":{"inputPer1k":0.1,"outputPer1k":0.2}}',
    });
    // Assess
    expect(settings.chunkShardCount).toBe(4);
    expect(settings.additionalModelIds).toEqual([
      'us.anthropic.claude-3-5-haiku-20241022-v1:0',
      'amazon.nova-lite-v1:0',
    ]);
    expect(settings.corsAllowOrigins).toEqual(['https://dash.example.com']);
    expect(settings.apiGatewayCloudWatchRole).toBe(false);
    expect(settings.logLevel).toBe('DEBUG');
    expect(settings.logRetentionDays).toBe(90);
    expect(settings.modelPrices).toEqual({ 'amazon.nova-lite-v1:0': { inputPer1k: 0.1, outputPer1k: 0.2 } });
  });

  it.each([
    ['inputShardCount', -1, /"inputShardCount"=-1 .*integer from 0 to 10000 \(0 = on-demand\)/],
    ['chunkParallelizationFactor', 11, /"chunkParallelizationFactor"=11 .*from 1 to 10/],
    ['inputBatchingWindowSeconds', '0.5', /"inputBatchingWindowSeconds"="0.5" .*integer from 0 to 300/],
    ['chunkMaxRecordAgeSeconds', 30, /"chunkMaxRecordAgeSeconds"=30 .*from 60 to 604800/],
    ['apiTimeoutSeconds', 30, /"apiTimeoutSeconds"=30 .*from 1 to 29/],
    ['logRetentionDays', 10, /"logRetentionDays"=10 .*one of 1, 3, 5, 7, 14, 30/],
    ['removalPolicy', 'keep', /"removalPolicy"="keep" .*one of retain, destroy/],
    ['apiGatewayCloudWatchRole', 'yes', /"apiGatewayCloudWatchRole"="yes" .*true or false/],
    ['modelId', '', /"modelId"="" .*non-empty string/],
    ['stackName', '1stack', /"stackName"="1stack" .*a letter then/],
    ['alarmTopicArn', 'my-topic', /"alarmTopicArn"="my-topic" .*SNS topic ARN/],
    ['modelPrices', { 'x.y': { inputPer1k: -1, outputPer1k: 0 } }, /"modelPrices.x.y"=.*inputPer1k/],
    ['corsAllowOrigins', [1], /"corsAllowOrigins"=\[1\] .*list of non-empty strings/],
  ])('refuses %s=%j, naming the value given and the values allowed', (key, value, message) => {
    // Act
    const attempt = () => readSettings({ [key]: value });
    // Assess
    expect(attempt).toThrow(ContextError);
    expect(attempt).toThrow(message);
  });

  it('checks handler limits with the handlers’ own configuration schema', () => {
    expect(readSettings({ flushIntervalMs: 20, fanoutConcurrency: '64' })).toMatchObject({
      producerEnvironment: { FLUSH_INTERVAL_MS: '20' },
      deliveryEnvironment: { FANOUT_CONCURRENCY: '64' },
    });
    expect(() => readSettings({ flushIntervalMs: 0 })).toThrow(
      /"flushIntervalMs"=0 is not valid: FLUSH_INTERVAL_MS="0"/,
    );
    expect(() => readSettings({ connectionTtlSeconds: 'soon' })).toThrow(/"connectionTtlSeconds"="soon"/);
  });

  it('refuses a generator timeout that a silent model read would outlast', () => {
    expect(() => readSettings({ generatorTimeoutSeconds: 60 })).toThrow(
      /"generatorTimeoutSeconds"=60 must exceed the model read timeout \(bedrockReadTimeoutMs=60000\): allowed 61 to 900/,
    );
    expect(
      readSettings({ generatorTimeoutSeconds: 60, bedrockReadTimeoutMs: 30_000 }).generator.timeoutSeconds,
    ).toBe(60);
  });

  it('refuses a misspelt key instead of ignoring it', () => {
    expect(() => readSettings({ chunkShards: 2 })).toThrow(
      /unknown context key "chunkShards"; known keys: .*chunkShardCount/,
    );
    // Keys of the CDK itself are not ours to judge.
    expect(() =>
      readSettings({ 'aws:cdk:bundling-stacks': [], '@aws-cdk/core:newStyleStackSynthesis': true }),
    ).not.toThrow();
  });
  describe('flow control', () => {
    const HAIKU = 'anthropic.claude-3-5-haiku-20241022-v1:0';

    it('reads quotas and fallbacks, as JSON objects or the strings `-c` gives', () => {
      // Act
      const settings = readSettings({
        modelQuotas: JSON.stringify({ [HAIKU]: { requestsPerMinute: 120, tokensPerMinute: 40_000 } }),
        modelFallbacks: { [HAIKU]: ['amazon.nova-lite-v1:0'] },
        maxQuotaWaitSeconds: 900,
        consumerLagTargetMs: '1500',
        fallbackAfterMs: 5000,
      });
      // Assess
      expect(settings.modelQuotas).toEqual({
        [HAIKU]: { requestsPerMinute: 120, tokensPerMinute: 40_000, outputBurndown: 1 },
      });
      expect(settings.modelFallbacks).toEqual({ [HAIKU]: ['amazon.nova-lite-v1:0'] });
      expect(settings.producerEnvironment).toEqual({
        MAX_QUOTA_WAIT_SECONDS: '900',
        CONSUMER_LAG_TARGET_MS: '1500',
        FALLBACK_AFTER_MS: '5000',
      });
      // Absent, they leave the handlers' defaults alone.
      expect(readSettings({})).toMatchObject({ modelQuotas: undefined, modelFallbacks: undefined });
    });

    it.each([
      ['not an object', '[1, 2]', /"modelQuotas"="\[1, 2\]" is not valid: expected an object of model id/],
      [
        'a negative limit',
        { [HAIKU]: { requestsPerMinute: -1, tokensPerMinute: 40_000 } },
        /"modelQuotas\.anthropic\.claude-3-5-haiku-20241022-v1:0"=\{"requestsPerMinute":-1,.*is not valid/,
      ],
      [
        'a missing limit',
        { [HAIKU]: { requestsPerMinute: 120 } },
        /"modelQuotas\.anthropic.*"=\{"requestsPerMinute":120\} is not valid: expected .*tokensPerMinute/,
      ],
      [
        'a misspelt field',
        { [HAIKU]: { requestsPerMinute: 120, tokensPerMinute: 1, burndown: 3 } },
        /"modelQuotas\.anthropic.*"burndown":3\} is not valid/,
      ],
      [
        'a malformed model id',
        { 'not a model': { requestsPerMinute: 1, tokensPerMinute: 1 } },
        /"modelQuotas": model id "not a model" is not valid/,
      ],
      [
        'a model the generator never invokes',
        { 'amazon.nova-lite-v1:0': { requestsPerMinute: 1, tokensPerMinute: 1 } },
        /"modelQuotas" names model "amazon\.nova-lite-v1:0", which the generator never invokes: expected one of anthropic/,
      ],
    ])('refuses modelQuotas with %s', (_name, modelQuotas, message) => {
      expect(() => readSettings({ modelQuotas })).toThrow(ContextError);
      expect(() => readSettings({ modelQuotas })).toThrow(message);
    });

    it.each([
      [
        'an empty list',
        { [HAIKU]: [] },
        /"modelFallbacks\.anthropic.*"=\[\] is not valid: expected .*1 to 5/,
      ],
      [
        'the model itself',
        { [HAIKU]: [HAIKU] },
        /"modelFallbacks\.anthropic.*is not valid: expected .*other model ids/,
      ],
      [
        'a malformed fallback id',
        { [HAIKU]: ['nova'] },
        /"modelFallbacks\.anthropic.*": model id "nova" is not valid/,
      ],
      [
        'a model not configured',
        { 'amazon.nova-lite-v1:0': [HAIKU] },
        /"modelFallbacks" names model "amazon\.nova-lite-v1:0", which is not configured/,
      ],
    ])('refuses modelFallbacks with %s', (_name, modelFallbacks, message) => {
      expect(() => readSettings({ modelFallbacks })).toThrow(ContextError);
      expect(() => readSettings({ modelFallbacks })).toThrow(message);
    });

    it('checks the flow-control limits with the handlers’ schema', () => {
      expect(() => readSettings({ maxQuotaWaitSeconds: 0 })).toThrow(
        /"maxQuotaWaitSeconds"=0 is not valid: MAX_QUOTA_WAIT_SECONDS="0"/,
      );
      expect(() => readSettings({ consumerLagTargetMs: 'fast' })).toThrow(/"consumerLagTargetMs"="fast"/);
    });

    it('bounds the generator by shards × parallelization factor, and refuses a reservation below it', () => {
      expect(() =>
        readSettings({ inputShardCount: 4, inputParallelizationFactor: 5, generatorReservedConcurrency: 19 }),
      ).toThrow(
        /"generatorReservedConcurrency"=19 is below .* \(inputShardCount 4 × inputParallelizationFactor 5 = 20\): allowed 20 or more/,
      );
      const provisioned = readSettings({
        inputShardCount: 4,
        inputParallelizationFactor: 5,
        generatorReservedConcurrency: 20,
      });
      expect(provisioned.generator.reservedConcurrency).toBe(20);
      // On demand the shard count grows by itself: the reservation is the only cap, any value goes.
      expect(readSettings({ generatorReservedConcurrency: 2 }).generator.reservedConcurrency).toBe(2);
    });

    it('a quota may name a fallback model, which the generator invokes too', () => {
      const settings = readSettings({
        modelFallbacks: { [HAIKU]: ['amazon.nova-lite-v1:0'] },
        modelQuotas: { 'amazon.nova-lite-v1:0': { requestsPerMinute: 10, tokensPerMinute: 10_000 } },
      });
      expect(Object.keys(settings.modelQuotas!)).toEqual(['amazon.nova-lite-v1:0']);
    });
  });
});
