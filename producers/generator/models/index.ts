import { anthropicAdapter } from './anthropic.js';
import { llamaAdapter } from './llama.js';
import { novaAdapter } from './nova.js';
import type { ModelAdapter, ModelFamily } from './types.js';

export { resolveModel } from './model-id.js';
export type { ModelAdapter, ModelEvent, ModelFamily, RequestSettings, ResolvedModel } from './types.js';

const ADAPTERS: Record<ModelFamily, ModelAdapter> = {
  anthropic: anthropicAdapter,
  llama: llamaAdapter,
  nova: novaAdapter,
};

/** The adapter of a model family (see `resolveModel`). */
export function adapterFor(family: ModelFamily): ModelAdapter {
  return ADAPTERS[family];
}
