import type { Usage } from '../../../shared/contracts/chunk-record.js';
import type { WorkItem } from '../../../shared/contracts/work-item.js';

/** The model families the producer speaks, each with its own request body and stream shape. */
export type ModelFamily = 'anthropic' | 'llama' | 'nova';

/** A model id as the work item named it, and what it resolves to. */
export interface ResolvedModel {
  /** Exactly as requested (model id, inference profile id or ARN): what Bedrock is called with. */
  readonly requested: string;
  /** The foundation model behind it, e.g. `anthropic.claude-3-5-haiku-20241022-v1:0` (prices, quotas). */
  readonly foundationModelId: string;
  readonly family: ModelFamily;
}

/** What one stream event of a model means, in family-neutral terms. */
export type ModelEvent =
  | { readonly kind: 'text'; readonly text: string }
  /** Token counts the model reports itself (a fallback when Bedrock's metrics are missing). */
  | { readonly kind: 'usage'; readonly inputTokens?: number; readonly outputTokens?: number }
  /** Why the model stopped (`end_turn`, `max_tokens`, `stop`, `length` ...). */
  | { readonly kind: 'stopReason'; readonly reason: string }
  /** The model's final event: the answer is complete. */
  | { readonly kind: 'final' }
  /** `amazon-bedrock-invocationMetrics`, on the last event of a successful stream. */
  | { readonly kind: 'metrics'; readonly usage: Usage };

/** Request settings that do not come from the work item's text. */
export interface RequestSettings {
  readonly maxTokens: number;
}

/** One model family: how to ask it and how to read its response stream. */
export interface ModelAdapter {
  readonly family: ModelFamily;
  /** Names the final event, for errors about a stream that ended without it. */
  readonly finalEvent: string;
  /** The `InvokeModel[WithResponseStream]` body for `item`. */
  requestBody(item: WorkItem, settings: RequestSettings): Record<string, unknown>;
  /** Reads one decoded chunk (the JSON inside `chunk.bytes`). Throws `ModelEventError` on a bad shape. */
  parseEvent(event: unknown): ModelEvent[];
}
