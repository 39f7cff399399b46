import { describe, expect, it } from 'vitest';
import { ModelIdError, resolveModelId } from '../../../../local/bedrock/model-id.js';

const encoded = (id: string) => encodeURIComponent(id);

describe('resolveModelId', () => {
  it.each([
    ['anthropic.claude-3-5-haiku-20241022-v1:0', 'anthropic.claude-3-5-haiku-20241022-v1:0', 'anthropic'],
    ['us.anthropic.claude-3-5-haiku-20241022-v1:0', 'anthropic.claude-3-5-haiku-20241022-v1:0', 'anthropic'],
    ['eu.meta.llama3-2-3b-instruct-v1:0', 'meta.llama3-2-3b-instruct-v1:0', 'llama'],
    ['apac.amazon.nova-lite-v1:0', 'amazon.nova-lite-v1:0', 'nova'],
    ['meta.llama3-1-8b-instruct-v1:0', 'meta.llama3-1-8b-instruct-v1:0', 'llama'],
    ['arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-micro-v1:0', 'amazon.nova-micro-v1:0', 'nova'],
    [
      'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20241022-v2:0',
      'anthropic.claude-3-5-sonnet-20241022-v2:0',
      'anthropic',
    ],
  ])('%s names %s (%s)', (id, foundationModelId, family) => {
    expect(resolveModelId(encoded(id))).toEqual({ requested: id, foundationModelId, family });
  });

  it('refuses a family the stand-in does not serve, naming the id and the families it does', () => {
    expect(() => resolveModelId(encoded('cohere.command-r-v1:0'))).toThrow(ModelIdError);
    expect(() => resolveModelId(encoded('cohere.command-r-v1:0'))).toThrow(
      /"cohere\.command-r-v1:0".*anthropic\.\*, meta\.llama\*, amazon\.nova\*/,
    );
  });

  it('refuses an application inference profile, whose id does not name its model', () => {
    expect(() =>
      resolveModelId(encoded('arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123')),
    ).toThrow(ModelIdError);
  });

  it('refuses broken percent-encoding', () => {
    expect(() => resolveModelId('anthropic.%E0%A4%A')).toThrow(/not valid percent-encoding/);
  });
});
