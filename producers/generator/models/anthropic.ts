import { z } from 'zod';
import { messagesOf } from '../../../shared/contracts/work-item.js';
import { ModelEventError } from '../errors.js';
import { invocationMetricsOf } from './invocation-metrics.js';
import type { ModelAdapter, ModelEvent } from './types.js';

const Event = z.looseObject({ type: z.string() });
const MessageStart = z.object({
  message: z.looseObject({
    usage: z.looseObject({ input_tokens: z.number().int().nonnegative().optional() }).optional(),
  }),
});
const ContentBlockDelta = z.object({
  delta: z.looseObject({ type: z.string(), text: z.string().optional() }),
});
const MessageDelta = z.object({
  delta: z.looseObject({ stop_reason: z.string().nullable().optional() }),
  usage: z.looseObject({ output_tokens: z.number().int().nonnegative().optional() }).optional(),
});
const ErrorEvent = z.object({ error: z.looseObject({ type: z.string(), message: z.string() }) });

function read<T extends z.ZodType>(schema: T, event: unknown, type: string): z.infer<T> {
  const parsed = schema.safeParse(event);
  if (!parsed.success)
    throw new ModelEventError(`malformed Anthropic ${type} event: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/**
 * Anthropic Claude, Messages API on Bedrock. Stream: `message_start` (input tokens),
 * `content_block_delta` (`text_delta`), `message_delta` (stop reason, output tokens), and the final
 * `message_stop`, which carries Bedrock's invocation metrics.
 */
export const anthropicAdapter: ModelAdapter = {
  family: 'anthropic',
  finalEvent: 'message_stop',
  requestBody(item, settings) {
    return {
      anthropic_version: 'bedrock-2023-05-31',
      max_tokens: settings.maxTokens,
      messages: messagesOf(item),
      ...(item.system === undefined ? {} : { system: item.system }),
      ...(item.temperature === undefined ? {} : { temperature: item.temperature }),
    };
  },
  parseEvent(event) {
    const { type } = read(Event, event, 'stream');
    const out: ModelEvent[] = [];
    switch (type) {
      case 'message_start': {
        const input = read(MessageStart, event, type).message.usage?.input_tokens;
        if (input !== undefined) out.push({ kind: 'usage', inputTokens: input });
        break;
      }
      case 'content_block_delta': {
        const { delta } = read(ContentBlockDelta, event, type);
        // Other delta types (tool input JSON, thinking) are not answer text.
        if (delta.type === 'text_delta' && delta.text) out.push({ kind: 'text', text: delta.text });
        break;
      }
      case 'message_delta': {
        const parsed = read(MessageDelta, event, type);
        const reason = parsed.delta.stop_reason;
        if (reason) out.push({ kind: 'stopReason', reason });
        const output = parsed.usage?.output_tokens;
        if (output !== undefined) out.push({ kind: 'usage', outputTokens: output });
        break;
      }
      case 'message_stop':
        out.push({ kind: 'final' });
        break;
      case 'error': {
        const { error } = read(ErrorEvent, event, type);
        throw new ModelEventError(`Anthropic stream error ${error.type}: ${error.message}`);
      }
      default:
        // message_start's content blocks, pings and future event types carry no answer text.
        break;
    }
    return [...out, ...invocationMetricsOf(event)];
  },
};
