import { describe, expect, it } from 'vitest';
import {
  LLAMA_DEFAULT_MAX_GEN_LEN,
  NOVA_DEFAULT_MAX_TOKENS,
  parseModelRequest,
  RequestBodyError,
} from '../../../../local/bedrock/request-bodies.js';

const claude = (overrides: Record<string, unknown> = {}) => ({
  anthropic_version: 'bedrock-2023-05-31',
  max_tokens: 256,
  system: 'Be brief.',
  messages: [{ role: 'user', content: 'Explain shards.' }],
  ...overrides,
});

describe('parseModelRequest: Anthropic Claude Messages', () => {
  it('takes the system and message text and max_tokens', () => {
    expect(parseModelRequest('anthropic', claude())).toEqual({
      promptText: 'system: Be brief.\n\nuser: Explain shards.',
      maxTokens: 256,
    });
  });

  it('reads text blocks like plain strings, so equivalent requests get the same prompt', () => {
    const asBlocks = claude({
      system: [{ type: 'text', text: 'Be brief.' }],
      messages: [{ role: 'user', content: [{ type: 'text', text: 'Explain shards.' }] }],
    });

    expect(parseModelRequest('anthropic', asBlocks)).toEqual(parseModelRequest('anthropic', claude()));
  });

  it('ignores sampling settings and non-text blocks', () => {
    const withExtras = claude({
      temperature: 0.2,
      top_p: 0.9,
      top_k: 50,
      stop_sequences: ['\n\nHuman:'],
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } },
            { type: 'text', text: 'Explain shards.' },
          ],
        },
      ],
    });

    expect(parseModelRequest('anthropic', withExtras)).toEqual(parseModelRequest('anthropic', claude()));
  });

  it('refuses keys the service does not know, and a missing max_tokens, naming each', () => {
    const bad = claude({ maxTokens: 10, max_tokens: undefined });

    expect(() => parseModelRequest('anthropic', bad)).toThrow(RequestBodyError);
    expect(() => parseModelRequest('anthropic', bad)).toThrow(
      /max_tokens: .*; \(body\): Unrecognized key: "maxTokens"/,
    );
  });

  it('refuses a wrong anthropic_version and a text block without text', () => {
    const bad = claude({
      anthropic_version: '2023-06-01',
      messages: [{ role: 'user', content: [{ type: 'text' }] }],
    });

    expect(() => parseModelRequest('anthropic', bad)).toThrow(/anthropic_version: .*bedrock-2023-05-31/);
    expect(() => parseModelRequest('anthropic', bad)).toThrow(/messages\.0\.content\.0\.text: a text block/);
  });
});

describe('parseModelRequest: Meta Llama', () => {
  it('takes the prompt string as is and max_gen_len', () => {
    const prompt = '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\nHi<|eot_id|>';
    expect(parseModelRequest('llama', { prompt, max_gen_len: 99, temperature: 0.5 })).toEqual({
      promptText: prompt,
      maxTokens: 99,
    });
  });

  it('defaults max_gen_len as Bedrock does', () => {
    expect(parseModelRequest('llama', { prompt: 'Hi' }).maxTokens).toBe(LLAMA_DEFAULT_MAX_GEN_LEN);
  });

  it('refuses a missing prompt and a fractional limit', () => {
    expect(() => parseModelRequest('llama', { max_gen_len: 1.5 })).toThrow(/prompt: .*; max_gen_len: /);
  });
});

describe('parseModelRequest: Amazon Nova', () => {
  const nova = (inferenceConfig: Record<string, unknown> = { maxTokens: 77, temperature: 0.7 }) => ({
    schemaVersion: 'messages-v1',
    system: [{ text: 'Be brief.' }],
    messages: [{ role: 'user', content: [{ text: 'Explain shards.' }] }],
    inferenceConfig,
  });

  it('takes the system and message text and inferenceConfig.maxTokens', () => {
    expect(parseModelRequest('nova', nova())).toEqual({
      promptText: 'system: Be brief.\n\nuser: Explain shards.',
      maxTokens: 77,
    });
  });

  it('accepts the max_new_tokens spelling and defaults the limit', () => {
    expect(parseModelRequest('nova', nova({ max_new_tokens: 12 })).maxTokens).toBe(12);
    expect(parseModelRequest('nova', nova({})).maxTokens).toBe(NOVA_DEFAULT_MAX_TOKENS);
  });

  it('refuses another schema version and string content, naming the fields', () => {
    const bad = { ...nova(), schemaVersion: 'v2', messages: [{ role: 'user', content: 'Explain shards.' }] };

    expect(() => parseModelRequest('nova', bad)).toThrow(/schemaVersion: .*; messages\.0\.content: /);
  });
});
