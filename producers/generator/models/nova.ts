import { z } from 'zod';
import { type Message, messagesOf } from '../../../shared/contracts/work-item.js';
import { ModelEventError } from '../errors.js';
import { invocationMetricsOf } from './invocation-metrics.js';
import type { ModelAdapter, ModelEvent } from './types.js';

const Event = z.looseObject({
  messageStart: z.looseObject({}).optional(),
  contentBlockDelta: z.looseObject({ delta: z.looseObject({ text: z.string().optional() }) }).optional(),
  contentBlockStop: z.looseObject({}).optional(),
  messageStop: z.looseObject({ stopReason: z.string().optional() }).optional(),
  metadata: z
    .looseObject({
      usage: z
        .looseObject({
          inputTokens: z.number().int().nonnegative().optional(),
          outputTokens: z.number().int().nonnegative().optional(),
        })
        .optional(),
    })
    .optional(),
});

const blocksOf = (content: Message['content']) =>
  typeof content === 'string' ? [{ text: content }] : content.map((block) => ({ text: block.text }));

/**
 * Amazon Nova, `messages-v1` on Bedrock. Stream: `messageStart`, `contentBlockDelta` (text),
 * `contentBlockStop`, the final `messageStop` (stop reason), then `metadata` (usage and Bedrock's
 * invocation metrics).
 */
export const novaAdapter: ModelAdapter = {
  family: 'nova',
  finalEvent: 'messageStop',
  requestBody(item, settings) {
    return {
      schemaVersion: 'messages-v1',
      messages: messagesOf(item).map((m) => ({ role: m.role, content: blocksOf(m.content) })),
      ...(item.system === undefined ? {} : { system: [{ text: item.system }] }),
      inferenceConfig: {
        maxTokens: settings.maxTokens,
        ...(item.temperature === undefined ? {} : { temperature: item.temperature }),
      },
    };
  },
  parseEvent(event) {
    const parsed = Event.safeParse(event);
    if (!parsed.success)
      throw new ModelEventError(`malformed Amazon Nova stream event: ${z.prettifyError(parsed.error)}`);
    const e = parsed.data;
    const out: ModelEvent[] = [];
    const text = e.contentBlockDelta?.delta.text;
    if (text) out.push({ kind: 'text', text });
    if (e.messageStop) {
      if (e.messageStop.stopReason) out.push({ kind: 'stopReason', reason: e.messageStop.stopReason });
      out.push({ kind: 'final' });
    }
    const usage = e.metadata?.usage;
    if (usage) out.push({ kind: 'usage', inputTokens: usage.inputTokens, outputTokens: usage.outputTokens });
    return [...out, ...invocationMetricsOf(event)];
  },
};
