/**
 * Every entry point × every kind of token, each cell an exact outcome: the real query handler
 * behind the local HTTP API and the real WebSocket routes behind the local gateway, over loopback,
 * on one dynalite.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueryApiHandler } from '../../consumers/query-api/handler.js';
import { type RunningHttpApi, startHttpApi } from '../../local/http-api.js';
import { DEFAULT_AUDIENCE, HMAC_ISSUER } from '../../shared/auth.js';
import type { BatchMessage, ServerMessage } from '../../shared/contracts/websocket.js';
import { createLogger } from '../../shared/telemetry.js';
import {
  type DeliveryWorld,
  SECRET,
  startDeliveryWorld,
  type Viewer,
  waitUntil,
} from './websocket-helpers.js';

const ITEM = 'mx-acme';
const OTHER_ITEM = 'mx-other';
/** An item no tenant has: it must be answered exactly like another tenant's. */
const UNKNOWN_ITEM = 'mx-unknown';
const TEXT = 'acme secret: quarterly numbers';
const RESUME_OFFSET = 'acme secret: '.length;

type Claims = Record<string, unknown>;
const now = () => Math.floor(Date.now() / 1000);

/** An HS256 token with `claims` (iat now, exp in 10 minutes unless given). */
async function mint(claims: Claims, secret = SECRET): Promise<string> {
  const jwt = new SignJWT({
    aud: DEFAULT_AUDIENCE,
    iss: HMAC_ISSUER,
    iat: now(),
    exp: now() + 600,
    ...claims,
  }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' });
  return jwt.sign(new TextEncoder().encode(secret));
}

/** An unsigned token (`alg: none`). */
function unsigned(claims: Claims): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const payload = { aud: DEFAULT_AUDIENCE, iss: HMAC_ISSUER, iat: now(), exp: now() + 600, ...claims };
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(payload)}.`;
}

const acmeRead = { sub: 'ann', tenant: 'acme', scope: 'read' };
const TOKENS: Record<string, () => Promise<string>> = {
  'own tenant read': () => mint(acmeRead),
  'own tenant cancel': () => mint({ sub: 'bob', tenant: 'acme', scope: 'cancel' }),
  'other tenant': () => mint({ sub: 'eve', tenant: 'other', scope: 'read cancel' }),
  'admin *': () => mint({ sub: 'ops', tenant: '*', scope: 'admin' }),
  '* without admin': () => mint({ sub: 'mal', tenant: '*', scope: 'read cancel' }),
  expired: () => mint({ ...acmeRead, iat: now() - 1_200, exp: now() - 600 }),
  'no exp': async () => {
    const jwt = new SignJWT({ ...acmeRead, aud: DEFAULT_AUDIENCE, iss: HMAC_ISSUER, iat: now() });
    return jwt.setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
  },
  'wrong aud': () => mint({ ...acmeRead, aud: 'another-service' }),
  'wrong signature': () => mint(acmeRead, 'a-different-secret-of-at-least-32-chars'),
  'alg none': async () => unsigned(acmeRead),
  'lifetime too long': () => mint({ ...acmeRead, exp: now() + 13 * 3600 }),
};

const REFUSED = { get: '401 unauthorized', list: '401 unauthorized', ws: 'refused 401' };
const refused = {
  'GET item': REFUSED.get,
  list: REFUSED.list,
  'subscribe item': REFUSED.ws,
  'subscribe all': REFUSED.ws,
  resume: REFUSED.ws,
  'subscribe unknown': REFUSED.ws,
  'resume unknown': REFUSED.ws,
  cancel: REFUSED.ws,
};
/** Another tenant's item and an unknown one: the same code and message (the id masked as `ID`). */
const NOT_FOUND = 'error not_found (cannot subscribe to ID: no such item (yet))';
const UNKNOWN = { 'subscribe unknown': NOT_FOUND, 'resume unknown': NOT_FOUND };
const EXPECTED: Record<string, Record<string, string>> = {
  'own tenant read': {
    'GET item': `200 ${ITEM}`,
    list: `200 [${ITEM}]`,
    'subscribe item': `snapshot attempt=1 seq=1 streaming text="${TEXT}"`,
    'subscribe all': `receives [${ITEM}]`,
    resume: `snapshot attempt=1 seq=1 streaming offset=${RESUME_OFFSET} text="${TEXT.slice(RESUME_OFFSET)}"`,
    ...UNKNOWN,
    cancel: 'error forbidden; flag unset',
  },
  'own tenant cancel': {
    'GET item': '403 insufficient_scope',
    list: '403 insufficient_scope',
    'subscribe item': 'error forbidden',
    'subscribe all': 'error forbidden',
    resume: 'error forbidden',
    'subscribe unknown': 'error forbidden',
    'resume unknown': 'error forbidden',
    cancel: 'no reply; flag set',
  },
  'other tenant': {
    'GET item': '404 item_not_found',
    list: '200 []',
    'subscribe item': NOT_FOUND,
    'subscribe all': `receives [${OTHER_ITEM}]`,
    resume: NOT_FOUND,
    ...UNKNOWN,
    cancel: 'error not_found (cannot cancel ID: no such item); flag unset',
  },
  'admin *': {
    'GET item': `200 ${ITEM}`,
    list: `200 [${ITEM}]`,
    'subscribe item': `snapshot attempt=1 seq=1 streaming text="${TEXT}"`,
    'subscribe all': `receives [${ITEM}, ${OTHER_ITEM}]`,
    resume: `snapshot attempt=1 seq=1 streaming offset=${RESUME_OFFSET} text="${TEXT.slice(RESUME_OFFSET)}"`,
    ...UNKNOWN,
    cancel: 'no reply; flag set',
  },
  '* without admin': refused,
  expired: refused,
  'no exp': refused,
  'wrong aud': refused,
  'wrong signature': refused,
  'alg none': refused,
  'lifetime too long': refused,
};

/**
 * A snapshot or error message as a cell; a `not_found` with its message, the item id masked, so the
 * cells show that another tenant's item and an unknown one are answered alike.
 */
function describeReply(m: ServerMessage): string {
  if (m.type === 'error' && m.code === 'not_found')
    return `error not_found (${m.message.replaceAll(m.itemId ?? '\u0000', 'ID')})`;
  if (m.type === 'error') return `error ${m.code}`;
  if (m.type !== 'snapshot') return m.type;
  const offset = m.offset === undefined ? '' : ` offset=${m.offset}`;
  return `snapshot attempt=${m.attempt} seq=${m.seq} ${m.status}${offset} text=${JSON.stringify(m.text)}`;
}

/** Item ids a viewer received live messages of (snapshots and errors aside), `batch` frames unpacked. */
function liveItems(viewer: Viewer): string[] {
  const packed = viewer.other.flatMap((raw) => (raw as Partial<BatchMessage>).messages ?? []);
  const live = [...viewer.messages, ...packed].filter((m) => m.type !== 'snapshot' && m.type !== 'error');
  return [...new Set(live.map((m) => ('itemId' in m ? String(m.itemId) : '?')))].sort();
}

describe('authorization matrix: every entry point × every token kind', () => {
  let world: DeliveryWorld;
  let api: RunningHttpApi;
  const tokens: Record<string, string> = {};
  /** One connection per token (and a fresh one per cell), or the refusal. */
  const open = async (kind: string): Promise<Viewer | string> =>
    world.connect(tokens[kind] ?? '').catch((err: Error) => err.message.replace('refused: ', 'refused '));
  /** The first reply (snapshot or error) to a message naming `itemId`, as a cell. */
  const replyTo = async (kind: string, message: object, itemId: string): Promise<string> => {
    const viewer = await open(kind);
    if (typeof viewer === 'string') return viewer;
    viewer.send(message);
    await waitUntil('a reply', () => viewer.messages.some((m) => 'itemId' in m && m.itemId === itemId));
    const reply = viewer.messages.find((m) => 'itemId' in m && m.itemId === itemId);
    await viewer.close();
    return reply ? describeReply(reply) : 'none';
  };

  beforeAll(async () => {
    world = await startDeliveryWorld();
    api = await startHttpApi({
      handler: createQueryApiHandler({
        config: world.config,
        clients: world.clients,
        logger: createLogger('q'),
      }),
    });
    await world.items.create(ITEM, 'acme');
    await world.items.apply(ITEM, { texts: [TEXT] });
    await world.items.create(OTHER_ITEM, 'other');
    for (const [kind, make] of Object.entries(TOKENS)) tokens[kind] = await make();
  });
  afterAll(async () => {
    await api?.stop();
    await world?.stop();
  });

  it('gives each cell exactly its expected outcome', async () => {
    const actual: Record<string, Record<string, string>> = {};
    for (const kind of Object.keys(TOKENS)) {
      const get = async (path: string) => {
        const res = await fetch(`${api.url}${path}`, {
          headers: { authorization: `Bearer ${tokens[kind]}` },
        });
        const body = (await res.json()) as {
          itemId?: string;
          items?: Array<{ itemId: string }>;
          error?: { code: string };
        };
        if (body.error) return `${res.status} ${body.error.code}`;
        return body.items
          ? `${res.status} [${body.items.map((i) => i.itemId).join(', ')}]`
          : `${res.status} ${body.itemId}`;
      };
      await world.dynamo.send(
        new UpdateCommand({
          TableName: world.config.tables.items,
          Key: { itemId: ITEM },
          UpdateExpression: 'SET cancelRequested = :no',
          ExpressionAttributeValues: { ':no': false },
        }),
      );
      const cancel = await (async () => {
        const viewer = await open(kind);
        if (typeof viewer === 'string') return viewer;
        viewer.send({ action: 'cancel', itemId: ITEM });
        // A recorded cancel has no reply: wait for the flag or an error, whichever comes.
        await waitUntil(
          'the cancel is answered',
          async () => viewer.messages.length > 0 || (await world.items.head(ITEM))?.cancelRequested === true,
        );
        await viewer.close();
        const [reply] = viewer.messages;
        const flag = (await world.items.head(ITEM))?.cancelRequested ? 'flag set' : 'flag unset';
        return `${reply ? describeReply(reply) : 'no reply'}; ${flag}`;
      })();
      actual[kind] = {
        'GET item': await get(`/items/${ITEM}`),
        list: await get('/items?tenant=acme'),
        'subscribe item': await replyTo(kind, { action: 'subscribe', itemId: ITEM }, ITEM),
        'subscribe all': '',
        resume: await replyTo(
          kind,
          { action: 'subscribe', itemId: ITEM, attempt: 1, seq: 1, offset: RESUME_OFFSET },
          ITEM,
        ),
        'subscribe unknown': await replyTo(kind, { action: 'subscribe', itemId: UNKNOWN_ITEM }, UNKNOWN_ITEM),
        'resume unknown': await replyTo(
          kind,
          { action: 'subscribe', itemId: UNKNOWN_ITEM, attempt: 1, seq: 1, offset: RESUME_OFFSET },
          UNKNOWN_ITEM,
        ),
        cancel,
      };
    }
    // `all`: every token's dashboard at once, then one consumer batch with an item of each tenant.
    const dashboards = new Map<string, Viewer | string>();
    for (const kind of Object.keys(TOKENS)) {
      const viewer = await open(kind);
      dashboards.set(kind, viewer);
      if (typeof viewer !== 'string')
        viewer.send({ action: 'subscribe', all: true, batch: kind === 'admin *' });
    }
    await waitUntil('every dashboard is subscribed or refused', async () => {
      const rows = new Set((await world.rows('subs#*')).map((r) => r.sk));
      return [...dashboards.values()].every(
        (v) =>
          typeof v === 'string' || rows.has(v.connectionId) || v.messages.some((m) => m.type === 'error'),
      );
    });
    await world.fanout.publish([
      await world.items.apply(ITEM, { texts: [' and more'] }),
      await world.items.apply(OTHER_ITEM, { texts: ['other text'] }),
    ]);
    for (const [kind, viewer] of dashboards) {
      const cells = actual[kind] as Record<string, string>;
      if (typeof viewer === 'string') cells['subscribe all'] = viewer;
      else {
        const error = viewer.messages.find((m) => m.type === 'error');
        cells['subscribe all'] = error ? describeReply(error) : `receives [${liveItems(viewer).join(', ')}]`;
        await viewer.close();
      }
    }
    expect(actual).toEqual(EXPECTED);
  }, 120_000);
});
