import { z } from 'zod';
import type { ModelFamily } from './model-id.js';

/** What the stand-in takes from a request body: everything else in it has no effect on the output. */
export interface ModelRequest {
  /** System and message text in request order (the Llama prompt string as is). */
  readonly promptText: string;
  /** The token limit the body asks for, or the family's default. */
  readonly maxTokens: number;
}

/** A body that does not match its model family's schema; answered as a `ValidationException`. */
export class RequestBodyError extends Error {
  override readonly name = 'RequestBodyError';
}

/** The stand-in's own ceiling on a token limit, far above any real model's, to bound memory. */
export const MAX_TOKEN_LIMIT = 1_000_000;
/** Bedrock's default `max_gen_len` for Meta Llama. */
export const LLAMA_DEFAULT_MAX_GEN_LEN = 512;
/** The stand-in's default `inferenceConfig.maxTokens` for Amazon Nova when the body sets none. */
export const NOVA_DEFAULT_MAX_TOKENS = 5_000;

const tokenLimit = z.number().int().min(1).max(MAX_TOKEN_LIMIT);
const unit = z.number().min(0).max(1);

/** An Anthropic content block: text blocks count; images, tool use and results carry no prompt text. */
const AnthropicBlock = z
  .looseObject({ type: z.string().min(1), text: z.unknown().optional() })
  .superRefine((block, ctx) => {
    if (block.type === 'text' && typeof block.text !== 'string')
      ctx.addIssue({ code: 'custom', path: ['text'], message: 'a text block needs a string "text"' });
  });
type AnthropicBlock = z.infer<typeof AnthropicBlock>;

/**
 * The Anthropic Claude Messages body on Bedrock. Strict like the real service, which rejects
 * any key it does not know ("extraneous key [...] is not permitted").
 */
const AnthropicBody = z.strictObject({
  anthropic_version: z.literal('bedrock-2023-05-31'),
  anthropic_beta: z.array(z.string()).optional(),
  max_tokens: tokenLimit,
  system: z.union([z.string(), z.array(AnthropicBlock)]).optional(),
  messages: z
    .array(
      z.strictObject({
        role: z.enum(['user', 'assistant']),
        content: z.union([z.string(), z.array(AnthropicBlock).min(1)]),
      }),
    )
    .min(1),
  temperature: unit.optional(),
  top_p: unit.optional(),
  top_k: z.number().int().min(0).optional(),
  stop_sequences: z.array(z.string()).optional(),
  tools: z.array(z.unknown()).optional(),
  tool_choice: z.unknown().optional(),
  thinking: z.unknown().optional(),
});

/** The Meta Llama body: a formatted prompt string and sampling settings. */
const LlamaBody = z.looseObject({
  prompt: z.string().min(1),
  max_gen_len: tokenLimit.optional(),
  temperature: unit.optional(),
  top_p: unit.optional(),
});

const NovaTextBlock = z.looseObject({ text: z.string().optional() });

/** The Amazon Nova `messages-v1` body. */
const NovaBody = z.looseObject({
  schemaVersion: z.literal('messages-v1').optional(),
  system: z.array(z.looseObject({ text: z.string() })).optional(),
  messages: z
    .array(z.looseObject({ role: z.enum(['user', 'assistant']), content: z.array(NovaTextBlock).min(1) }))
    .min(1),
  inferenceConfig: z
    .looseObject({
      maxTokens: tokenLimit.optional(),
      // Older Nova examples spell the limit this way; the service accepts both.
      max_new_tokens: tokenLimit.optional(),
      temperature: unit.optional(),
      topP: unit.optional(),
      topK: z.number().int().min(0).optional(),
      stopSequences: z.array(z.string()).optional(),
    })
    .optional(),
});

const anthropicText = (content: string | readonly AnthropicBlock[]): string =>
  typeof content === 'string'
    ? content
    : content
        .flatMap((block) => (block.type === 'text' && typeof block.text === 'string' ? [block.text] : []))
        .join('\n');

const turns = (system: string | undefined, messages: readonly { role: string; text: string }[]): string =>
  [...(system ? [`system: ${system}`] : []), ...messages.map(({ role, text }) => `${role}: ${text}`)].join(
    '\n\n',
  );

/**
 * Validates `body` (already JSON-parsed) against its family's request schema and returns the prompt
 * text and token limit. Throws a `RequestBodyError` naming every offending field.
 */
export function parseModelRequest(family: ModelFamily, body: unknown): ModelRequest {
  switch (family) {
    case 'anthropic': {
      const parsed = check(AnthropicBody, body, family);
      return {
        promptText: turns(
          parsed.system === undefined ? undefined : anthropicText(parsed.system),
          parsed.messages.map((m) => ({ role: m.role, text: anthropicText(m.content) })),
        ),
        maxTokens: parsed.max_tokens,
      };
    }
    case 'llama': {
      const parsed = check(LlamaBody, body, family);
      return { promptText: parsed.prompt, maxTokens: parsed.max_gen_len ?? LLAMA_DEFAULT_MAX_GEN_LEN };
    }
    case 'nova': {
      const parsed = check(NovaBody, body, family);
      const text = (blocks: readonly { text?: string | undefined }[]) =>
        blocks.flatMap((b) => (b.text === undefined ? [] : [b.text])).join('\n');
      const config = parsed.inferenceConfig;
      return {
        promptText: turns(
          parsed.system === undefined ? undefined : text(parsed.system),
          parsed.messages.map((m) => ({ role: m.role, text: text(m.content) })),
        ),
        maxTokens: config?.maxTokens ?? config?.max_new_tokens ?? NOVA_DEFAULT_MAX_TOKENS,
      };
    }
  }
}

function check<T extends z.ZodType>(schema: T, body: unknown, family: ModelFamily): z.infer<T> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const problems = result.error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(body)'}: ${issue.message}`)
    .join('; ');
  throw new RequestBodyError(
    `Malformed input request (${FAMILY_NAMES[family]}): ${problems}. ` +
      'Please reformat your input and try again.',
  );
}

const FAMILY_NAMES: Record<ModelFamily, string> = {
  anthropic: 'Anthropic Claude Messages API',
  llama: 'Meta Llama',
  nova: 'Amazon Nova messages-v1',
};
