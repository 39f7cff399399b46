import { describe, expect, it } from 'vitest';
import { parseClientMessage } from '../../../../consumers/viewers/client-message.js';
import { MAX_CLIENT_MESSAGE_BYTES } from '../../../../shared/contracts/websocket.js';

describe('parseClientMessage', () => {
  it.each([
    ['{"action":"subscribe","itemId":"a"}', { action: 'subscribe', itemId: 'a' }],
    [
      '{"action":"subscribe","itemId":"a","attempt":2,"seq":5,"offset":10}',
      { action: 'subscribe', itemId: 'a', attempt: 2, seq: 5, offset: 10 },
    ],
    ['{"action":"subscribe","all":true}', { action: 'subscribe', all: true }],
    ['{"action":"unsubscribe","itemId":"a"}', { action: 'unsubscribe', itemId: 'a' }],
    ['{"action":"unsubscribe","all":true}', { action: 'unsubscribe', all: true }],
    ['{"action":"cancel","itemId":"a.b:c-d_e"}', { action: 'cancel', itemId: 'a.b:c-d_e' }],
  ])('accepts %s', (body, message) => {
    expect(parseClientMessage(body)).toEqual({ ok: true, message });
  });

  it('decodes a base64 body', () => {
    const body = Buffer.from('{"action":"cancel","itemId":"x"}').toString('base64');
    expect(parseClientMessage(body, true)).toEqual({ ok: true, message: { action: 'cancel', itemId: 'x' } });
  });

  it.each([
    [undefined, /^empty message/],
    ['', /^empty message/],
    ['nope', /^message is not valid JSON/],
    ['"subscribe"', /^message must be a JSON object/],
    ['null', /^message must be a JSON object/],
    ['{"itemId":"a"}', /^message has no "action"; expected one of subscribe, unsubscribe, cancel$/],
    ['{"action":42}', /^unknown action 42;/],
    ['{"action":"SUBSCRIBE","itemId":"a"}', /^unknown action "SUBSCRIBE";/],
    ['{"action":"subscribe"}', /^invalid subscribe message: itemId:/],
    ['{"action":"subscribe","itemId":"a b"}', /itemId must be 1–128 characters/],
    ['{"action":"subscribe","itemId":"a","seq":1.5}', /^invalid subscribe message: seq:/],
    ['{"action":"subscribe","all":"yes"}', /^invalid subscribe message: all:/],
  ])('rejects %s with a specific reason', (body, reason) => {
    const result = parseClientMessage(body);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(reason);
  });

  it('rejects an oversized body by its size, before parsing it', () => {
    const body = `{${' '.repeat(MAX_CLIENT_MESSAGE_BYTES)}`;
    expect(parseClientMessage(body)).toEqual({
      ok: false,
      error: `message is ${MAX_CLIENT_MESSAGE_BYTES + 1} bytes; client messages are at most ${MAX_CLIENT_MESSAGE_BYTES} bytes`,
    });
  });

  it('names the item of a rejected message when it is a valid id', () => {
    expect(parseClientMessage('{"action":"cancel","itemId":"ok","extra":1,"action2":0}')).toMatchObject({
      ok: true,
    });
    expect(parseClientMessage('{"action":"pause","itemId":"ok"}')).toMatchObject({ ok: false, itemId: 'ok' });
    expect(parseClientMessage('{"action":"pause","itemId":"not ok"}')).not.toHaveProperty('itemId');
  });
});
