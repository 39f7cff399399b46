import { z } from 'zod';
import { Tenant } from '../tenancy.js';
import { Traceparent } from './traceparent.js';

/** `itemId`: 1–128 characters of `A-Z a-z 0-9 . _ : -`. Also the partition key on both streams. */
export const ItemId = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'itemId must be 1–128 characters of A-Z a-z 0-9 . _ : -');
export type ItemId = z.infer<typeof ItemId>;

const TextBlock = z.object({ type: z.literal('text'), text: z.string() });

/** One message in the Anthropic Messages shape. */
export const Message = z.object({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string().min(1), z.array(TextBlock).min(1)]),
});
export type Message = z.infer<typeof Message>;

/** Who gets model quota and pipeline capacity first when they are short. */
export const Priority = z.enum(['high', 'normal', 'low']);
export type Priority = z.infer<typeof Priority>;

/** Largest serialized `metadata` echoed onto the stored item (it rides on every item read). */
export const MAX_METADATA_BYTES = 4096;

/**
 * A work item as upstream systems write it to the input stream (JSON, partition key = itemId).
 * Exactly one of `prompt` or `messages` is required.
 */
export const WorkItem = z
  .object({
    itemId: ItemId,
    prompt: z.string().min(1).optional(),
    messages: z.array(Message).min(1).optional(),
    system: z.string().optional(),
    modelId: z.string().min(1).max(2048).optional(),
    maxTokens: z.number().int().min(1).max(200_000).optional(),
    temperature: z.number().min(0).max(1).optional(),
    /** Default `normal`. */
    priority: Priority.optional(),
    metadata: z
      .record(z.string(), z.json())
      .refine((m) => Buffer.byteLength(JSON.stringify(m)) <= MAX_METADATA_BYTES, {
        message: `metadata must serialize to at most ${MAX_METADATA_BYTES} bytes`,
      })
      .optional(),
    /** W3C trace context of the upstream request; copied onto the item's chunk records and log lines. */
    traceparent: Traceparent.optional(),
    /** Whose item this is; `default` when absent. Every read and every viewer is scoped by it. */
    tenant: Tenant.optional(),
  })
  .refine((w) => (w.prompt === undefined) !== (w.messages === undefined), {
    message: 'exactly one of prompt or messages is required',
    path: ['prompt'],
  });
export type WorkItem = z.infer<typeof WorkItem>;

/** The conversation a work item asks for, whichever of `prompt` / `messages` it used. */
export function messagesOf(item: WorkItem): Message[] {
  return item.messages ?? [{ role: 'user', content: item.prompt ?? '' }];
}
