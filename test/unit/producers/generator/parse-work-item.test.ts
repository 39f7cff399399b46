import type { KinesisStreamRecord } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { parseWorkItem } from '../../../../producers/generator/generator.js';
import { errorInfoOf } from '../../../../producers/generator/attempt.js';
import { TruncatedStreamError } from '../../../../producers/generator/errors.js';
import { RetriesExhaustedError } from '../../../../shared/errors.js';
import { WorkItemShard } from '../../../factories/work-item-events.js';

const DEFAULT_MODEL = 'anthropic.claude-3-5-haiku-20241022-v1:0';
const raw = (data: string): KinesisStreamRecord =>
  new WorkItemShard().record({ raw: data, partitionKey: 'pk' });

describe('parseWorkItem', () => {
  it('accepts a valid work item and resolves its model, defaulting from configuration', () => {
    const parsed = parseWorkItem(raw(JSON.stringify({ itemId: 'a', prompt: 'hi' })), DEFAULT_MODEL);
    expect(parsed).toMatchObject({
      ok: true,
      item: { itemId: 'a', prompt: 'hi' },
      model: { family: 'anthropic' },
    });
    const nova = parseWorkItem(
      raw(JSON.stringify({ itemId: 'b', prompt: 'hi', modelId: 'us.amazon.nova-lite-v1:0' })),
      DEFAULT_MODEL,
    );
    expect(nova).toMatchObject({
      ok: true,
      model: { family: 'nova', requested: 'us.amazon.nova-lite-v1:0' },
    });
  });

  it('gives a specific reason for data that is not JSON', () => {
    expect(parseWorkItem(raw('{"itemId": '), DEFAULT_MODEL)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^work item is not valid JSON: SyntaxError/),
    });
  });

  it('names the failing field and rule for a schema failure', () => {
    const parsed = parseWorkItem(
      raw(JSON.stringify({ itemId: 'a', prompt: 'x', maxTokens: 0 })),
      DEFAULT_MODEL,
    );
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.reason).toMatch(/^work item does not match the schema/);
      expect(parsed.reason).toMatch(/maxTokens/);
    }
  });

  it('rejects a model whose family the producer cannot speak', () => {
    const parsed = parseWorkItem(
      raw(JSON.stringify({ itemId: 'a', prompt: 'x', modelId: 'mistral.mistral-7b' })),
      DEFAULT_MODEL,
    );
    expect(parsed).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/modelId "mistral.mistral-7b" is not supported/),
    });
  });
});

describe('errorInfoOf', () => {
  it('keeps the code and retryability of the system’s own errors', () => {
    expect(errorInfoOf(new TruncatedStreamError('anthropic', 'message_stop'))).toEqual({
      code: 'stream_truncated',
      message: 'the anthropic response stream ended before its final event (message_stop)',
      retryable: true,
    });
  });

  it('derives a stable code from an AWS error name and its retryability from its kind', () => {
    const streamError = Object.assign(new Error('The model stream broke'), {
      name: 'ModelStreamErrorException',
    });
    expect(errorInfoOf(streamError)).toEqual({
      code: 'model_stream_error',
      message: 'The model stream broke',
      retryable: true,
    });
    const validation = Object.assign(new Error('Malformed input'), { name: 'ValidationException' });
    expect(errorInfoOf(validation)).toMatchObject({ code: 'validation', retryable: false });
  });

  it('reports exhausted retries by the kind of their last failure', () => {
    const throttled = Object.assign(new Error('Too many requests'), { name: 'ThrottlingException' });
    const info = errorInfoOf(new RetriesExhaustedError('InvokeModelWithResponseStream m', 4, throttled));
    expect(info).toMatchObject({ code: 'throttling', retryable: true });
    expect(info.message).toMatch(/failed after 4 attempts: ThrottlingException: Too many requests/);
  });
});
