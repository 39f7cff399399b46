import type { z } from 'zod';
import { ItemId } from '../../shared/contracts/work-item.js';
import {
  CancelMessage,
  type ClientMessage,
  MAX_CLIENT_MESSAGE_BYTES,
  SubscribeMessage,
  UnsubscribeMessage,
} from '../../shared/contracts/websocket.js';

/** A client message, or why it was rejected (sent back as an `error` message). */
export type ParsedClientMessage =
  | { readonly ok: true; readonly message: ClientMessage }
  | { readonly ok: false; readonly error: string; readonly itemId?: string };

/** The actions clients send (each also an API Gateway route key). */
export const CLIENT_ACTIONS = ['subscribe', 'unsubscribe', 'cancel'] as const;

const [subscribeItem, subscribeAll] = SubscribeMessage.options;
const [unsubscribeItem, unsubscribeAll] = UnsubscribeMessage.options;

/** The schema a message with this action must match; `all` picks the every-item form. */
function schemaFor(
  action: (typeof CLIENT_ACTIONS)[number],
  body: Record<string, unknown>,
): z.ZodType<ClientMessage> {
  switch (action) {
    case 'subscribe':
      return 'all' in body ? subscribeAll : subscribeItem;
    case 'unsubscribe':
      return 'all' in body ? unsubscribeAll : unsubscribeItem;
    case 'cancel':
      return CancelMessage;
  }
}

const isAction = (value: unknown): value is (typeof CLIENT_ACTIONS)[number] =>
  typeof value === 'string' && (CLIENT_ACTIONS as readonly string[]).includes(value);

const expected = `expected one of ${CLIENT_ACTIONS.join(', ')}`;

/**
 * Parses the body of a WebSocket message: size first (an oversized body is never parsed), then
 * JSON, then the schema of its action. Every rejection says what was wrong and what is expected.
 */
export function parseClientMessage(
  body: string | null | undefined,
  isBase64Encoded = false,
): ParsedClientMessage {
  if (body === null || body === undefined || body === '')
    return { ok: false, error: `empty message: send a JSON object with an "action", ${expected}` };
  const bytes = isBase64Encoded ? Buffer.from(body, 'base64') : Buffer.from(body, 'utf8');
  if (bytes.length > MAX_CLIENT_MESSAGE_BYTES) {
    return {
      ok: false,
      error: `message is ${bytes.length} bytes; client messages are at most ${MAX_CLIENT_MESSAGE_BYTES} bytes`,
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    return { ok: false, error: `message is not valid JSON (${(err as Error).message})` };
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    return { ok: false, error: `message must be a JSON object with an "action", ${expected}` };
  const record = json as Record<string, unknown>;
  const named = ItemId.safeParse(record.itemId);
  const itemId = named.success ? { itemId: named.data } : {};
  const { action } = record;
  if (action === undefined) return { ok: false, error: `message has no "action"; ${expected}`, ...itemId };
  if (!isAction(action))
    return { ok: false, error: `unknown action ${JSON.stringify(action)}; ${expected}`, ...itemId };
  const parsed = schemaFor(action, record).safeParse(record);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`);
    return { ok: false, error: `invalid ${action} message: ${problems.join('; ')}`, ...itemId };
  }
  return { ok: true, message: parsed.data };
}
