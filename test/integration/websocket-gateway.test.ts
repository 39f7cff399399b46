import {
  DeleteConnectionCommand,
  GetConnectionCommand,
  GoneException,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken } from '../../shared/auth.js';
import { MAX_CLIENT_MESSAGE_BYTES } from '../../shared/contracts/websocket.js';
import {
  type DeliveryWorld,
  SECRET,
  startDeliveryWorld,
  Viewer,
  waitUntil,
  within,
} from './websocket-helpers.js';

describe('WebSocket routes behind the local gateway', () => {
  let world: DeliveryWorld;

  beforeAll(async () => {
    world = await startDeliveryWorld();
    // Items exist from their claim on; a subscribe to one that does not is answered not_found.
    for (const itemId of ['still-open', 'disc-1', 'keep', 'drop']) await world.items.create(itemId);
  });
  afterAll(async () => {
    await world?.stop();
  });

  describe('$connect', () => {
    it('refuses a connection without a token with 401', async () => {
      await expect(world.connect(null)).rejects.toThrow('refused: 401');
    });

    it('refuses a token signed with another secret, and an expired one', async () => {
      const forged = await issueToken('another-secret-of-at-least-32-characters!', {
        subject: 'mallory',
        tenant: '*',
        scopes: ['admin'],
        ttlSeconds: 3600,
      });
      await expect(world.connect(forged)).rejects.toThrow('refused: 401');
      const expired = await issueToken('websocket-test-secret-of-at-least-32-chars', {
        subject: 'late',
        tenant: '*',
        scopes: ['admin'],
        ttlSeconds: -120,
      });
      await expect(world.connect(expired)).rejects.toThrow('refused: 401');
    });

    it('accepts a valid token and stores the connection with a TTL', async () => {
      // Act
      const viewer = await world.connect();
      // Assess
      const rows = await world.rows(`conn#${viewer.connectionId}`);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ sk: 'connection', subject: 'viewer', tenant: '*', scopes: ['admin'] });
      // The TTL is the connection's lifetime or the token's expiry, whichever comes first.
      const ttlEnd = Date.now() / 1000 + world.config.delivery.connectionTtlSeconds;
      const expected = Math.min(ttlEnd, Number(rows[0]?.tokenExpiresAt));
      expect(Math.abs(Number(rows[0]?.expiresAt) - expected)).toBeLessThanOrEqual(60);
      await viewer.close();
    });

    it("stores a connection whose token expires first with its token's expiry as TTL", async () => {
      const token = await issueToken(SECRET, {
        subject: 's',
        tenant: 't',
        scopes: ['read'],
        ttlSeconds: 600,
      });
      const viewer = await world.connect(token);
      const [row] = await world.rows(`conn#${viewer.connectionId}`);
      expect(row).toMatchObject({ tenant: 't', scopes: ['read'] });
      expect(row?.expiresAt).toBe(row?.tokenExpiresAt);
      expect(Number(row?.expiresAt)).toBeLessThanOrEqual(Date.now() / 1000 + 600);
      await viewer.close();
    });
  });

  describe('bad client messages get an error reply and the connection stays open', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['malformed JSON', '{"action":"subscribe",', /not valid JSON/],
      ['a JSON array', '[1,2]', /must be a JSON object/],
      ['no action', '{"itemId":"a"}', /has no "action"/],
      ['an unknown action', '{"action":"explode","itemId":"a"}', /unknown action "explode"/],
      [
        'an invalid itemId',
        '{"action":"subscribe","itemId":"has space"}',
        /invalid subscribe message: itemId/,
      ],
      ['a negative seq', '{"action":"subscribe","itemId":"a","attempt":1,"seq":-1}', /seq/],
      ['cancel without itemId', '{"action":"cancel"}', /invalid cancel message: itemId/],
      ['all: false', '{"action":"unsubscribe","all":false}', /invalid unsubscribe message: all/],
    ];
    it.each(cases)('%s', async (_name, body, expected) => {
      const viewer = await world.connect();
      viewer.send(body);
      const reply = await viewer.next('error');
      expect(reply.message).toMatch(expected);
      // Still open and serving: a valid subscribe gets its snapshot.
      viewer.send({ action: 'subscribe', itemId: 'still-open' });
      await viewer.next('snapshot', (m) => m.itemId === 'still-open');
      expect(viewer.open).toBe(true);
      await viewer.close();
    });

    it('an oversized message (under the frame limit) is rejected without being parsed', async () => {
      const viewer = await world.connect();
      const body = JSON.stringify({
        action: 'subscribe',
        itemId: 'x',
        pad: 'p'.repeat(MAX_CLIENT_MESSAGE_BYTES),
      });
      viewer.send(body);
      const reply = await viewer.next('error');
      expect(reply.message).toBe(
        `message is ${Buffer.byteLength(body)} bytes; client messages are at most ${MAX_CLIENT_MESSAGE_BYTES} bytes`,
      );
      expect(viewer.open).toBe(true);
      await viewer.close();
    });

    it('names the item in the error when the rejected message named a valid one', async () => {
      const viewer = await world.connect();
      viewer.send({ action: 'cancel', itemId: 'never-created' });
      const reply = await viewer.next('error');
      expect(reply).toEqual({
        type: 'error',
        itemId: 'never-created',
        code: 'not_found',
        message: 'cannot cancel never-created: no such item',
      });
      await viewer.close();
    });
  });

  describe("API Gateway's size limits", () => {
    it('closes the connection with 1009 on a frame over 32 KB', async () => {
      const viewer = await world.connect();
      viewer.send(JSON.stringify({ action: 'subscribe', itemId: 'x', pad: 'p'.repeat(40 * 1024) }));
      expect(await within('the close', viewer.closed)).toBe(1009);
      expect(viewer.messages).toEqual([]);
    });

    it('closes the connection with 1009 on a message over 128 KB, even in frames under 32 KB', async () => {
      const viewer = await world.connect();
      const piece = 'p'.repeat(30 * 1024);
      for (let i = 0; i < 5; i++) viewer.socket.send(piece, { fin: i === 4 });
      expect(await within('the close', viewer.closed)).toBe(1009);
    });

    it('passes a message of several frames under both limits to the route', async () => {
      const viewer = await world.connect();
      const body = JSON.stringify({ action: 'subscribe', itemId: 'fragmented', pad: 'p'.repeat(40 * 1024) });
      for (let at = 0; at < body.length; at += 16 * 1024)
        viewer.socket.send(body.slice(at, at + 16 * 1024), { fin: at + 16 * 1024 >= body.length });
      // The route saw it (and rejected it for its size, as any client message that large).
      expect((await viewer.next('error')).message).toMatch(/client messages are at most/);
      expect(viewer.open).toBe(true);
      await viewer.close();
    });
  });

  describe('management API', () => {
    it('posts, describes and deletes a connection through the real SDK client', async () => {
      // Prepare
      const viewer = await world.connect();
      const id = viewer.connectionId;
      const management = world.clients.management(world.gateway.managementEndpoint);
      // Act
      await management.send(
        new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('{"hello":1}') }),
      );
      const info = await management.send(new GetConnectionCommand({ ConnectionId: id }));
      await management.send(new DeleteConnectionCommand({ ConnectionId: id }));
      // Assess
      await waitUntil('the hello arrives', () => viewer.other.length === 1);
      expect(viewer.other).toEqual([{ hello: 1 }]);
      expect(id).toMatch(/=$/);
      expect(info.ConnectedAt).toBeInstanceOf(Date);
      expect(info.LastActiveAt).toBeInstanceOf(Date);
      expect(info.Identity?.SourceIp).toBe('127.0.0.1');
      expect(await within('the close', viewer.closed)).toBe(1000);
      await waitUntil(
        '$disconnect removed the connection',
        async () => (await world.rows(`conn#${id}`)).length === 0,
      );
    });

    it('answers 410 GoneException for a closed connection', async () => {
      const viewer = await world.connect();
      const id = viewer.connectionId;
      await viewer.close();
      const management = world.clients.management(world.gateway.managementEndpoint);
      await expect(
        management.send(new PostToConnectionCommand({ ConnectionId: id, Data: Buffer.from('x') })),
      ).rejects.toBeInstanceOf(GoneException);
    });
  });

  describe('$disconnect', () => {
    it('removes the connection and every subscription row', async () => {
      // Prepare
      const viewer = await world.connect();
      const id = viewer.connectionId;
      viewer.send({ action: 'subscribe', itemId: 'disc-1' });
      viewer.send({ action: 'subscribe', all: true });
      await viewer.next('snapshot', (m) => m.itemId === 'disc-1');
      await waitUntil(
        'both subscriptions are stored',
        async () => (await world.rows(`conn#${id}`)).length === 3,
      );
      expect((await world.rows('subs#disc-1')).map((r) => r.sk)).toContain(id);
      // Act
      await viewer.close();
      // Assess
      await waitUntil('the rows are gone', async () => (await world.rows(`conn#${id}`)).length === 0);
      expect((await world.rows('subs#disc-1')).map((r) => r.sk)).not.toContain(id);
      expect((await world.rows('subs#*')).map((r) => r.sk)).not.toContain(id);
    });

    it('unsubscribe removes only that subscription', async () => {
      const viewer = await world.connect();
      const id = viewer.connectionId;
      viewer.send({ action: 'subscribe', itemId: 'keep' });
      viewer.send({ action: 'subscribe', itemId: 'drop' });
      await viewer.next('snapshot', (m) => m.itemId === 'keep');
      await viewer.next('snapshot', (m) => m.itemId === 'drop');
      viewer.send({ action: 'unsubscribe', itemId: 'drop' });
      await waitUntil('drop is unsubscribed', async () => (await world.rows('subs#drop')).length === 0);
      expect((await world.rows('subs#keep')).map((r) => r.sk)).toEqual([id]);
      await viewer.close();
    });
  });

  it('an integration that throws gets API Gateway\'s "Internal server error" reply', async () => {
    // A gateway whose message route fails, in front of nothing else.
    const { startWebSocketGateway } = await import('../../local/websocket-gateway.js');
    const failing = await startWebSocketGateway({
      handlers: {
        connect: async () => ({ statusCode: 200 }),
        disconnect: async () => ({ statusCode: 200 }),
        message: async () => {
          throw new Error('boom');
        },
      },
      onError: () => {},
    });
    try {
      const viewer = new Viewer(failing.url);
      await viewer.opened;
      viewer.send({ action: 'subscribe', itemId: 'x' });
      await waitUntil('the error arrives', () => viewer.other.length === 1);
      expect(viewer.other[0]).toMatchObject({ message: 'Internal server error' });
      await viewer.close();
    } finally {
      await failing.stop();
    }
  });
});
