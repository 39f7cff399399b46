import { describe, expect, it } from 'vitest';
import { ConfigError, ValidationError } from '../../../../shared/errors.js';
import { FaultInjector, faultsFromEnv, parseFaults } from '../../../../local/bedrock/faults.js';
import { timingFromEnv } from '../../../../local/bedrock/timing.js';

const kinds = (injector: FaultInjector, prompts: string[], outputTokens = 10) =>
  prompts.map((p) => injector.decide(p, outputTokens).kind);

describe('FaultInjector', () => {
  it('hits every Nth request of a rule', () => {
    const injector = new FaultInjector({ throttle: { everyNth: 3 } });

    expect(kinds(injector, ['a', 'b', 'c', 'd', 'e', 'f'])).toEqual([
      'none',
      'none',
      'throttle',
      'none',
      'none',
      'throttle',
    ]);
  });

  it('hits only prompts containing `match`, and counts only those for everyNth', () => {
    const injector = new FaultInjector({ truncate: { match: 'item-7', everyNth: 2, afterTokens: 3 } });

    expect(kinds(injector, ['item-1', 'x item-7 x', 'item-2', 'item-7', 'item-7'])).toEqual([
      'none',
      'none',
      'none',
      'truncate',
      'none',
    ]);
  });

  it('draws probability from the given randomness', () => {
    const draws = [0.1, 0.9, 0.29, 0.31];
    const injector = new FaultInjector({ throttle: { probability: 0.3 } }, () => draws.shift() ?? 1);

    expect(kinds(injector, ['a', 'b', 'c', 'd'])).toEqual(['throttle', 'none', 'throttle', 'none']);
  });

  it('tries throttle, then midStream, then truncate; a request hit by one is not counted by the next', () => {
    const injector = new FaultInjector({
      throttle: { match: 'hot' },
      midStream: { everyNth: 2, exception: 'serviceUnavailableException', afterTokens: 4 },
      truncate: { probability: 1 },
    });

    expect(injector.decide('hot', 10)).toEqual({ kind: 'throttle' });
    expect(injector.decide('cold', 10)).toEqual({ kind: 'truncate', afterTokens: 5 });
    expect(injector.decide('cold', 10)).toEqual({
      kind: 'midStream',
      afterTokens: 4,
      exception: 'serviceUnavailableException',
    });
  });

  it('defaults afterTokens to half the answer and caps it at the answer, and the exception type', () => {
    const injector = new FaultInjector({ midStream: { probability: 1 } });

    expect(injector.decide('p', 9)).toEqual({
      kind: 'midStream',
      afterTokens: 4,
      exception: 'modelStreamErrorException',
    });
    injector.set({ midStream: { probability: 1, afterTokens: 50 } });
    expect(injector.decide('p', 9)).toMatchObject({ afterTokens: 9 });
  });

  it('restarts the everyNth count when the faults are replaced', () => {
    const injector = new FaultInjector({ throttle: { everyNth: 2 } });
    injector.decide('a', 1);
    injector.set({ throttle: { everyNth: 2 } });

    expect(kinds(injector, ['b', 'c'])).toEqual(['none', 'throttle']);
  });

  it('keeps the old faults when a replacement is invalid', () => {
    const injector = new FaultInjector({ throttle: { everyNth: 1 } });

    expect(() => injector.set({ throttle: { everyNth: 0 } })).toThrow(ValidationError);
    expect(injector.get()).toEqual({ throttle: { everyNth: 1 } });
  });
});

describe('parseFaults', () => {
  it.each([
    [{ throttle: { probability: 2 } }, /throttle\.probability: /],
    [{ throttle: {} }, /throttle: set at least one of probability, everyNth or match/],
    [{ midStream: { everyNth: 1, exception: 'boom' } }, /midStream\.exception: /],
    [{ truncate: { everyNth: 1, afterTokens: -1 } }, /truncate\.afterTokens: /],
    [{ slow: { probability: 1 } }, /Unrecognized key: "slow"/],
    [{ throttle: { probability: 1, afterTokens: 3 } }, /throttle: Unrecognized key: "afterTokens"/],
  ])('refuses %j naming the field', (faults, message) => {
    expect(() => parseFaults(faults)).toThrow(message);
  });
});

describe('configuration from the environment', () => {
  it('reads BEDROCK_FAULTS as JSON', () => {
    expect(faultsFromEnv({ BEDROCK_FAULTS: '{"midStream":{"match":"poison","afterTokens":2}}' })).toEqual({
      midStream: { match: 'poison', afterTokens: 2 },
    });
    expect(faultsFromEnv({})).toBeUndefined();
    expect(faultsFromEnv({ BEDROCK_FAULTS: ' ' })).toBeUndefined();
  });

  it('names the variable and the problem when BEDROCK_FAULTS is bad', () => {
    expect(() => faultsFromEnv({ BEDROCK_FAULTS: '{throttle:1}' })).toThrow(ConfigError);
    expect(() => faultsFromEnv({ BEDROCK_FAULTS: '{throttle:1}' })).toThrow(/BEDROCK_FAULTS must be JSON/);
    expect(() => faultsFromEnv({ BEDROCK_FAULTS: '{"throttle":{"everyNth":0}}' })).toThrow(
      /BEDROCK_FAULTS: .*throttle\.everyNth/,
    );
  });

  it('reads timing variables, Infinity meaning unpaced, and names a bad one', () => {
    expect(
      timingFromEnv({ BEDROCK_TIME_TO_FIRST_TOKEN_MS: '150', BEDROCK_TOKENS_PER_SECOND: 'Infinity' }),
    ).toEqual({ timeToFirstTokenMs: 150, tokensPerSecond: 0 });
    expect(() => timingFromEnv({ BEDROCK_TOKENS_PER_SECOND: 'fast' })).toThrow(
      /BEDROCK_TOKENS_PER_SECOND must be a number >= 0, got "fast"/,
    );
  });
});
