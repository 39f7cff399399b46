import { z } from 'zod';
import { type Message, messagesOf } from '../../../shared/contracts/work-item.js';
import { ModelEventError } from '../errors.js';
import { invocationMetricsOf } from './invocation-metrics.js';
import type { ModelAdapter, ModelEvent } from './types.js';

const Chunk = z.looseObject({
  generation: z.string().nullable().optional(),
  prompt_token_count: z.number().int().nonnegative().nullable().optional(),
  generation_token_count: z.number().int().nonnegative().nullable().optional(),
  stop_reason: z.string().nullable().optional(),
});

const textOf = (content: Message['content']) =>
  typeof content === 'string' ? content : content.map((block) => block.text).join('\n');

/**
 * The Llama 3 chat template: each turn between header tokens, closed by `<|eot_id|>`, ending with an
 * open assistant header so the model answers as the assistant.
 */
export function llamaPrompt(system: string | undefined, messages: readonly Message[]): string {
  const turn = (role: string, text: string) =>
    `<|start_header_id|>${role}<|end_header_id|>\n\n${text}<|eot_id|>`;
  return (
    '<|begin_of_text|>' +
    (system === undefined ? '' : turn('system', system)) +
    messages.map((m) => turn(m.role, textOf(m.content))).join('') +
    '<|start_header_id|>assistant<|end_header_id|>\n\n'
  );
}

/**
 * Meta Llama 3 on Bedrock. The request is one prompt string in the chat template; every stream chunk
 * is `{generation, prompt_token_count, generation_token_count, stop_reason}`, and the final chunk is
 * the one whose `stop_reason` is set (it carries Bedrock's invocation metrics).
 */
export const llamaAdapter: ModelAdapter = {
  family: 'llama',
  finalEvent: 'a chunk with stop_reason',
  requestBody(item, settings) {
    return {
      prompt: llamaPrompt(item.system, messagesOf(item)),
      max_gen_len: settings.maxTokens,
      ...(item.temperature === undefined ? {} : { temperature: item.temperature }),
    };
  },
  parseEvent(event) {
    const parsed = Chunk.safeParse(event);
    if (!parsed.success)
      throw new ModelEventError(`malformed Meta Llama stream chunk: ${z.prettifyError(parsed.error)}`);
    const chunk = parsed.data;
    const out: ModelEvent[] = [];
    if (chunk.generation) out.push({ kind: 'text', text: chunk.generation });
    const inputTokens = chunk.prompt_token_count ?? undefined;
    const outputTokens = chunk.generation_token_count ?? undefined;
    if (inputTokens !== undefined || outputTokens !== undefined)
      out.push({ kind: 'usage', inputTokens, outputTokens });
    if (chunk.stop_reason) out.push({ kind: 'stopReason', reason: chunk.stop_reason }, { kind: 'final' });
    return [...out, ...invocationMetricsOf(event)];
  },
};
