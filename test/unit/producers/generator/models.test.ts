import { describe, expect, it } from 'vitest';
import { WorkItem } from '../../../../shared/contracts/work-item.js';
import { ModelEventError, UnsupportedModelError } from '../../../../producers/generator/errors.js';
import { adapterFor, type ModelEvent, resolveModel } from '../../../../producers/generator/models/index.js';
import { llamaPrompt } from '../../../../producers/generator/models/llama.js';

const METRICS = {
  'amazon-bedrock-invocationMetrics': {
    inputTokenCount: 12,
    outputTokenCount: 3,
    invocationLatency: 420,
    firstByteLatency: 95,
  },
};
const METRICS_EVENT: ModelEvent = {
  kind: 'metrics',
  usage: { inputTokens: 12, outputTokens: 3, invocationLatencyMs: 420, firstByteLatencyMs: 95 },
};

const item = (fields: Record<string, unknown>) => WorkItem.parse({ itemId: 'it-1', ...fields });

describe('resolveModel', () => {
  it.each([
    ['anthropic.claude-3-5-haiku-20241022-v1:0', 'anthropic', 'anthropic.claude-3-5-haiku-20241022-v1:0'],
    ['us.anthropic.claude-3-5-haiku-20241022-v1:0', 'anthropic', 'anthropic.claude-3-5-haiku-20241022-v1:0'],
    ['eu.meta.llama3-1-8b-instruct-v1:0', 'llama', 'meta.llama3-1-8b-instruct-v1:0'],
    ['apac.amazon.nova-lite-v1:0', 'nova', 'amazon.nova-lite-v1:0'],
    ['arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0', 'nova', 'amazon.nova-micro-v1:0'],
    [
      'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-1-70b-instruct-v1:0',
      'llama',
      'meta.llama3-1-70b-instruct-v1:0',
    ],
  ])('resolves %s to the %s family and its foundation model', (modelId, family, foundationModelId) => {
    expect(resolveModel(modelId)).toEqual({ requested: modelId, family, foundationModelId });
  });

  it('rejects a family it cannot speak, naming the id and what is supported', () => {
    expect(() => resolveModel('cohere.command-r-v1:0')).toThrow(UnsupportedModelError);
    expect(() => resolveModel('cohere.command-r-v1:0')).toThrow(
      /modelId "cohere.command-r-v1:0" is not supported: supported are anthropic.claude\*/,
    );
  });

  it('rejects an application inference profile ARN, whose id does not tell the model', () => {
    expect(() =>
      resolveModel('arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123'),
    ).toThrow(/application-inference-profile ARN does not name its model/);
  });
});

describe('Anthropic Claude adapter', () => {
  const adapter = adapterFor('anthropic');

  it('builds a Messages body with the version, token limit, system and temperature', () => {
    const body = adapter.requestBody(item({ prompt: 'Hi', system: 'Be brief', temperature: 0.2 }), {
      maxTokens: 300,
    });
    expect(body).toEqual({
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: 300,
      messages: [{ role: 'user', content: 'Hi' }],
      system: 'Be brief',
      temperature: 0.2,
    });
  });

  it('passes messages through and leaves out unset options (Bedrock rejects unknown keys)', () => {
    const messages = [
      { role: 'user', content: [{ type: 'text', text: 'a' }] },
      { role: 'assistant', content: 'b' },
      { role: 'user', content: 'c' },
    ];
    const body = adapter.requestBody(item({ messages }), { maxTokens: 10 });
    expect(body).toEqual({ anthropic_version: 'bedrock-2023-05-31', max_tokens: 10, messages });
  });

  it('reads text, usage, stop reason, the final event and the invocation metrics from a stream', () => {
    const events = [
      { type: 'message_start', message: { id: 'msg_1', usage: { input_tokens: 12, output_tokens: 1 } } },
      { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello' } },
      { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: ' world' } },
      { type: 'content_block_stop', index: 0 },
      {
        type: 'message_delta',
        delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { output_tokens: 3 },
      },
      { type: 'message_stop', ...METRICS },
    ];
    expect(events.flatMap((e) => adapter.parseEvent(e))).toEqual([
      { kind: 'usage', inputTokens: 12 },
      { kind: 'text', text: 'Hello' },
      { kind: 'text', text: ' world' },
      { kind: 'stopReason', reason: 'end_turn' },
      { kind: 'usage', outputTokens: 3 },
      { kind: 'final' },
      METRICS_EVENT,
    ]);
  });

  it('turns an in-stream error event into a ModelEventError and a malformed event into one too', () => {
    expect(() =>
      adapter.parseEvent({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }),
    ).toThrow(/Anthropic stream error overloaded_error: Overloaded/);
    expect(() => adapter.parseEvent({ type: 'content_block_delta', delta: 'nope' })).toThrow(ModelEventError);
    expect(() => adapter.parseEvent('not an object')).toThrow(ModelEventError);
  });
});

describe('Meta Llama adapter', () => {
  const adapter = adapterFor('llama');

  it('formats the conversation in the Llama 3 chat template', () => {
    const prompt = llamaPrompt('Be brief', [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello' },
      { role: 'user', content: [{ type: 'text', text: 'More' }] },
    ]);
    expect(prompt).toBe(
      '<|begin_of_text|>' +
        '<|start_header_id|>system<|end_header_id|>\n\nBe brief<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>' +
        '<|start_header_id|>user<|end_header_id|>\n\nMore<|eot_id|>' +
        '<|start_header_id|>assistant<|end_header_id|>\n\n',
    );
  });

  it('builds a body with the prompt and max_gen_len', () => {
    expect(adapter.requestBody(item({ prompt: 'Hi', temperature: 0.5 }), { maxTokens: 64 })).toEqual({
      prompt: llamaPrompt(undefined, [{ role: 'user', content: 'Hi' }]),
      max_gen_len: 64,
      temperature: 0.5,
    });
  });

  it('reads generation chunks; the chunk with a stop reason is final and carries the metrics', () => {
    const events = [
      { generation: 'Hel', prompt_token_count: 12, generation_token_count: 1, stop_reason: null },
      { generation: 'lo', prompt_token_count: null, generation_token_count: 2, stop_reason: null },
      {
        generation: '',
        prompt_token_count: null,
        generation_token_count: 3,
        stop_reason: 'stop',
        ...METRICS,
      },
    ];
    expect(events.flatMap((e) => adapter.parseEvent(e))).toEqual([
      { kind: 'text', text: 'Hel' },
      { kind: 'usage', inputTokens: 12, outputTokens: 1 },
      { kind: 'text', text: 'lo' },
      { kind: 'usage', inputTokens: undefined, outputTokens: 2 },
      { kind: 'usage', inputTokens: undefined, outputTokens: 3 },
      { kind: 'stopReason', reason: 'stop' },
      { kind: 'final' },
      METRICS_EVENT,
    ]);
  });

  it('rejects a chunk of the wrong shape', () => {
    expect(() => adapter.parseEvent({ generation: 42 })).toThrow(/malformed Meta Llama stream chunk/);
  });
});

describe('Amazon Nova adapter', () => {
  const adapter = adapterFor('nova');

  it('builds a messages-v1 body with text blocks, system and inferenceConfig', () => {
    const body = adapter.requestBody(item({ prompt: 'Hi', system: 'Be brief', temperature: 0.1 }), {
      maxTokens: 99,
    });
    expect(body).toEqual({
      schemaVersion: 'messages-v1',
      messages: [{ role: 'user', content: [{ text: 'Hi' }] }],
      system: [{ text: 'Be brief' }],
      inferenceConfig: { maxTokens: 99, temperature: 0.1 },
    });
  });

  it('reads deltas, messageStop as the final event, and usage with metrics from metadata', () => {
    const events = [
      { messageStart: { role: 'assistant' } },
      { contentBlockDelta: { delta: { text: 'Hello' }, contentBlockIndex: 0 } },
      { contentBlockStop: { contentBlockIndex: 0 } },
      { contentBlockDelta: { delta: { text: ' world' }, contentBlockIndex: 1 } },
      { messageStop: { stopReason: 'end_turn' } },
      { metadata: { usage: { inputTokens: 12, outputTokens: 3 }, metrics: {}, trace: {} }, ...METRICS },
    ];
    expect(events.flatMap((e) => adapter.parseEvent(e))).toEqual([
      { kind: 'text', text: 'Hello' },
      { kind: 'text', text: ' world' },
      { kind: 'stopReason', reason: 'end_turn' },
      { kind: 'final' },
      { kind: 'usage', inputTokens: 12, outputTokens: 3 },
      METRICS_EVENT,
    ]);
  });

  it('rejects an event of the wrong shape', () => {
    expect(() => adapter.parseEvent({ contentBlockDelta: { delta: { text: 7 } } })).toThrow(
      /malformed Amazon Nova stream event/,
    );
  });
});
