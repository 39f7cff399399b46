import { TokenSource } from '../../local/bedrock/generator.js';
import { parseModelRequest } from '../../local/bedrock/request-bodies.js';
import { adapterFor, resolveModel } from '../../producers/generator/models/index.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';

/** An item's answer as the model stand-in produces it, token by token. */
export interface Answer {
  readonly text: string;
  /** Token i ends at UTF-16 offset `ends[i]`. */
  readonly ends: readonly number[];
}

/**
 * The stand-in's answer to `item`, computed here with the stand-in's own generator from the very
 * body the producers send, so a viewer's text length converts into tokens without asking the model.
 * (Checked against `InvokeModel` at the start of every scenario.)
 */
export function answerOf(item: WorkItem, defaults: { modelId: string; maxTokens: number }): Answer {
  const model = resolveModel(item.modelId ?? defaults.modelId);
  const body = adapterFor(model.family).requestBody(item, {
    maxTokens: item.maxTokens ?? defaults.maxTokens,
  });
  const request = parseModelRequest(model.family, body);
  const source = new TokenSource({
    modelId: model.foundationModelId,
    promptText: request.promptText,
    maxTokens: request.maxTokens,
  });
  const parts: string[] = [];
  const ends: number[] = [];
  let length = 0;
  while (source.remaining > 0) {
    const token = source.next();
    parts.push(token);
    length += token.length;
    ends.push(length);
  }
  return { text: parts.join(''), ends };
}

/** Whole tokens contained in the first `length` code units (binary search over `ends`). */
export function tokensWithin(ends: readonly number[], length: number): number {
  let lo = 0;
  let hi = ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ends[mid] as number) <= length) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
