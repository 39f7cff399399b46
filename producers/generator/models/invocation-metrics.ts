import { z } from 'zod';
import type { ModelEvent } from './types.js';

const METRICS_KEY = 'amazon-bedrock-invocationMetrics';

const InvocationMetrics = z.object({
  inputTokenCount: z.number().int().nonnegative(),
  outputTokenCount: z.number().int().nonnegative(),
  invocationLatency: z.number().nonnegative().optional(),
  firstByteLatency: z.number().nonnegative().optional(),
});

/**
 * Bedrock's own figures, which it attaches to the last event of a successful stream of any family.
 * An event without them yields nothing; malformed figures are ignored rather than failing a
 * complete answer (the model's own counts remain as a fallback).
 */
export function invocationMetricsOf(event: unknown): ModelEvent[] {
  if (typeof event !== 'object' || event === null || !(METRICS_KEY in event)) return [];
  const parsed = InvocationMetrics.safeParse((event as Record<string, unknown>)[METRICS_KEY]);
  if (!parsed.success) return [];
  const m = parsed.data;
  return [
    {
      kind: 'metrics',
      usage: {
        inputTokens: m.inputTokenCount,
        outputTokens: m.outputTokenCount,
        ...(m.firstByteLatency === undefined ? {} : { firstByteLatencyMs: m.firstByteLatency }),
        ...(m.invocationLatency === undefined ? {} : { invocationLatencyMs: m.invocationLatency }),
      },
    },
  ];
}
