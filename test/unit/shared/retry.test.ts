import { describe, expect, it } from 'vitest';
import { classifyAwsError, RetriesExhaustedError } from '../../../shared/errors.js';
import { backoffDelayMs, withRetry } from '../../../shared/retry.js';

const awsError = (name: string, status?: number) =>
  Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });

describe('classifyAwsError', () => {
  it.each([
    ['ProvisionedThroughputExceededException', 400, 'throttling'],
    ['ThrottlingException', 429, 'throttling'],
    ['ConditionalCheckFailedException', 400, 'conditional'],
    ['GoneException', 410, 'gone'],
    ['ValidationException', 400, 'validation'],
    ['ServiceUnavailableException', 503, 'transient'],
    ['ModelStreamErrorException', 424, 'transient'],
  ])('%s is %s', (name, status, kind) => {
    expect(classifyAwsError(awsError(name, status))).toBe(kind);
  });
});

describe('withRetry', () => {
  it('retries throttling until it succeeds', async () => {
    let calls = 0;
    const result = await withRetry(
      async () => {
        calls++;
        if (calls < 3) throw awsError('ThrottlingException', 429);
        return 'ok';
      },
      { what: 'test', baseDelayMs: 1, maxDelayMs: 2 },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
  });

  it('gives up after maxAttempts with the last error as cause', async () => {
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw awsError('ThrottlingException', 429);
      },
      { what: 'put', maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 1 },
    );
    await expect(run).rejects.toBeInstanceOf(RetriesExhaustedError);
    expect(calls).toBe(4);
  });

  it('does not retry a validation error', async () => {
    let calls = 0;
    const run = withRetry(
      async () => {
        calls++;
        throw awsError('ValidationException', 400);
      },
      { what: 'put', baseDelayMs: 1 },
    );
    await expect(run).rejects.toThrow('ValidationException');
    expect(calls).toBe(1);
  });

  it('draws full-jitter delays within the exponential cap', () => {
    const options = { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelayMs(1, options, () => 0.999)).toBeLessThan(100);
    expect(backoffDelayMs(4, options, () => 0.999)).toBeLessThan(800);
    expect(backoffDelayMs(9, options, () => 0.999)).toBeLessThan(1000);
    expect(backoffDelayMs(3, options, () => 0)).toBe(0);
  });
});
