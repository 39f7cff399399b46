import { randomBytes } from 'node:crypto';
import type { FinishReason, Generation, GenerationPlan } from './generator.js';
import type { ModelFamily, ResolvedModel } from './model-id.js';

/**
 * The JSON each model family answers with, in the shapes Bedrock returns them (checked against
 * captured responses): the InvokeModel body, and the events a response stream's chunks carry.
 */

/** Bedrock's own figures, attached to the last event of every successful stream. */
export interface InvocationMetrics {
  readonly inputTokenCount: number;
  readonly outputTokenCount: number;
  /** Milliseconds from the request to the last event. */
  readonly invocationLatency: number;
  /** Milliseconds from the request to the first token. */
  readonly firstByteLatency: number;
}

/** A model event: the JSON object base64-encoded into one chunk's `bytes`. */
export type ModelEvent = Record<string, unknown>;

/** One family's response shapes. */
export interface FamilyShapes {
  /** The InvokeModel response body. */
  invokeResponse(generation: Generation, model: ResolvedModel): ModelEvent;
  /** Events before the first token. */
  streamStart(plan: GenerationPlan, model: ResolvedModel): ModelEvent[];
  /** Events carrying token number `index` (0-based) of the answer. */
  streamToken(text: string, index: number, plan: GenerationPlan): ModelEvent[];
  /** Events after the last token; the last one carries `amazon-bedrock-invocationMetrics`. */
  streamEnd(plan: GenerationPlan, metrics: InvocationMetrics): ModelEvent[];
}

const METRICS = 'amazon-bedrock-invocationMetrics';

const STOP_REASONS: Record<ModelFamily, Record<FinishReason, string>> = {
  anthropic: { complete: 'end_turn', limit: 'max_tokens' },
  llama: { complete: 'stop', limit: 'length' },
  nova: { complete: 'end_turn', limit: 'max_tokens' },
};

/** `anthropic.claude-3-5-haiku-20241022-v1:0` → `claude-3-5-haiku-20241022`, as Claude names itself. */
function claudeModelName(foundationModelId: string): string {
  return foundationModelId.replace(/^anthropic\./, '').replace(/-v\d+(:\d+)?$/, '');
}

function messageId(): string {
  return `msg_bdrk_01${randomBytes(18).toString('base64url').replace(/[-_]/g, 'x')}`;
}

const anthropic: FamilyShapes = {
  invokeResponse: (g, model) => ({
    id: messageId(),
    type: 'message',
    role: 'assistant',
    model: claudeModelName(model.foundationModelId),
    content: [{ type: 'text', text: g.text }],
    stop_reason: STOP_REASONS.anthropic[g.finish],
    stop_sequence: null,
    usage: { input_tokens: g.inputTokens, output_tokens: g.outputTokens },
  }),
  streamStart: (plan, model) => [
    {
      type: 'message_start',
      message: {
        id: messageId(),
        type: 'message',
        role: 'assistant',
        model: claudeModelName(model.foundationModelId),
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: plan.inputTokens, output_tokens: 1 },
      },
    },
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
  ],
  streamToken: (text) => [{ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text } }],
  streamEnd: (plan, metrics) => [
    { type: 'content_block_stop', index: 0 },
    {
      type: 'message_delta',
      delta: { stop_reason: STOP_REASONS.anthropic[plan.finish], stop_sequence: null },
      usage: { output_tokens: plan.outputTokens },
    },
    { type: 'message_stop', [METRICS]: metrics },
  ],
};

const llama: FamilyShapes = {
  invokeResponse: (g) => ({
    generation: g.text,
    prompt_token_count: g.inputTokens,
    generation_token_count: g.outputTokens,
    stop_reason: STOP_REASONS.llama[g.finish],
  }),
  streamStart: () => [],
  // The prompt's size rides on the first chunk only; the output count is cumulative.
  streamToken: (text, index, plan) => [
    {
      generation: text,
      prompt_token_count: index === 0 ? plan.inputTokens : null,
      generation_token_count: index + 1,
      stop_reason: null,
    },
  ],
  streamEnd: (plan, metrics) => [
    {
      generation: '',
      prompt_token_count: null,
      generation_token_count: plan.outputTokens,
      stop_reason: STOP_REASONS.llama[plan.finish],
      [METRICS]: metrics,
    },
  ],
};

const nova: FamilyShapes = {
  invokeResponse: (g) => ({
    output: { message: { content: [{ text: g.text }], role: 'assistant' } },
    stopReason: STOP_REASONS.nova[g.finish],
    usage: {
      inputTokens: g.inputTokens,
      outputTokens: g.outputTokens,
      totalTokens: g.inputTokens + g.outputTokens,
      cacheReadInputTokenCount: 0,
      cacheWriteInputTokenCount: 0,
    },
  }),
  streamStart: () => [{ messageStart: { role: 'assistant' } }],
  // Nova's invoke stream closes a content block after every delta and opens the next at index + 1.
  streamToken: (text, index) => [
    { contentBlockDelta: { delta: { text }, contentBlockIndex: index } },
    { contentBlockStop: { contentBlockIndex: index } },
  ],
  streamEnd: (plan, metrics) => [
    { messageStop: { stopReason: STOP_REASONS.nova[plan.finish] } },
    {
      metadata: {
        usage: {
          inputTokens: plan.inputTokens,
          outputTokens: plan.outputTokens,
          cacheReadInputTokenCount: 0,
          cacheWriteInputTokenCount: 0,
        },
        metrics: {},
        trace: {},
      },
      [METRICS]: { ...metrics, cacheReadInputTokenCount: 0, cacheWriteInputTokenCount: 0 },
    },
  ],
};

const SHAPES: Record<ModelFamily, FamilyShapes> = { anthropic, llama, nova };

/** The response shapes of `family`. */
export function shapesOf(family: ModelFamily): FamilyShapes {
  return SHAPES[family];
}
