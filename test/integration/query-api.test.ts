import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createQueryApiHandler } from '../../consumers/query-api/handler.js';
import { createReassemblerHandler } from '../../consumers/reassembler/handler.js';
import { type RunningHttpApi, startHttpApi } from '../../local/http-api.js';
import { issueToken } from '../../shared/auth.js';
import { ApiError, ItemSummary, StoredItem } from '../../shared/contracts/stored-item.js';
import { readItem } from '../../shared/items.js';
import { attemptRecords, longText, splitText } from '../factories/chunk-records.js';
import { deliverLikeLambda, kinesisEvent, TestShard } from '../factories/kinesis-events.js';
import {
  type ConsumerWorld,
  faultyDynamo,
  putClaimedHead,
  recordingPublisher,
  startConsumerWorld,
  TEST_SECRET,
  telemetry,
} from './consumer-fixture.js';

/** An HTTP API payload 2.0 event as a deployed API with a `$default` route on a named stage sends it. */
function apiEvent(path: string, token: string, stage = '$default'): APIGatewayProxyEventV2 {
  const rawPath = stage === '$default' ? path : `/${stage}${path}`;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: '',
    headers: { authorization: `Bearer ${token}` },
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method: 'GET', path: rawPath, protocol: 'HTTP/1.1', sourceIp: '10.0.0.1', userAgent: 'test' },
      requestId: 'r',
      routeKey: '$default',
      stage,
      time: '01/Jan/2030:00:00:00 +0000',
      timeEpoch: 1_893_456_000_000,
    },
  };
}

describe('HTTP query API through the local HTTP API', () => {
  let world: ConsumerWorld;
  let api: RunningHttpApi;
  let token: string;
  const texts = { done: 'Exactly once: 流れ 😀 done.', big: longText(1024 * 1024), running: 'half an ans' };
  const ids = { done: 'q-done', big: 'q:big.item_1', running: 'q-running', queued: 'q-queued' };

  const get = (path: string, headers: Record<string, string> = { authorization: `Bearer ${token}` }) =>
    fetch(`${api.url}${path}`, { headers });

  beforeAll(async () => {
    world = await startConsumerWorld();
    const consumer = createReassemblerHandler({
      config: world.config,
      clients: world.clients,
      deadLetters: { send: async () => {} },
      publisher: recordingPublisher(),
      ...telemetry('consumer'),
    });
    const created = (minute: number) => `2030-01-01T00:${String(minute).padStart(2, '0')}:00.000Z`;
    await putClaimedHead(world, ids.done, { createdAt: created(1), metadata: { source: 'test' } });
    await putClaimedHead(world, ids.big, { createdAt: created(2) });
    await putClaimedHead(world, ids.running, { createdAt: created(3) });
    await putClaimedHead(world, ids.queued, { createdAt: created(4) });
    await deliverLikeLambda(
      consumer,
      new TestShard().records([
        ...attemptRecords(ids.done, 1, splitText(texts.done, 5), { type: 'end', costUsd: 0.01 }),
        ...attemptRecords(ids.big, 1, splitText(texts.big, 200), { type: 'end' }),
        ...attemptRecords(ids.running, 1, splitText(texts.running, 3), { type: 'none' }),
      ]),
    );
    api = await startHttpApi({
      handler: createQueryApiHandler({
        config: world.config,
        clients: world.clients,
        ...telemetry('query-api'),
      }),
      fallback: (req, res) => {
        if (!req.url?.startsWith('/dashboard/')) return false;
        res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>dashboard</h1>');
        return true;
      },
    });
    token = await issueToken(TEST_SECRET, {
      subject: 'tester',
      tenant: '*',
      scopes: ['admin'],
      ttlSeconds: 600,
    });
  });
  afterAll(async () => {
    await api.stop();
    await world.stop();
  });

  const errorOf = async (response: Response) => ApiError.parse(await response.json()).error;

  describe('GET /items/{itemId}', () => {
    it('returns the stored item as JSON, the same as it is stored', async () => {
      const response = await get(`/items/${ids.done}`);

      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      const item = StoredItem.parse(await response.json());
      expect(item).toEqual(await readItem(world.dynamo, world.config.tables, ids.done));
      expect(item).toMatchObject({
        status: 'completed',
        text: texts.done,
        costUsd: 0.01,
        metadata: { source: 'test' },
      });
    });

    it('returns a 1 MB output whole, byte for byte', async () => {
      const response = await get(`/items/${ids.big}`);

      expect(response.status).toBe(200);
      const item = StoredItem.parse(await response.json());
      expect(Buffer.from(item.text).equals(Buffer.from(texts.big))).toBe(true);
    });

    it('accepts an item id whose characters arrive percent-encoded', async () => {
      const response = await get(`/items/${encodeURIComponent(ids.big)}`);

      expect(response.status).toBe(200);
      expect(StoredItem.parse(await response.json()).itemId).toBe(ids.big);
    });

    it('reads again when a new attempt replaced the item between reading its head and its parts', async () => {
      // Prepare: an item with sealed parts of attempt 1; its reader is overtaken by attempt 2.
      const id = 'q-overtaken';
      await putClaimedHead(world, id, { createdAt: '2029-12-31T00:00:00.000Z' });
      const consumer = createReassemblerHandler({
        config: world.config,
        clients: world.clients,
        deadLetters: { send: async () => {} },
        publisher: recordingPublisher(),
        ...telemetry('consumer'),
        sealBytes: 16,
      });
      const shard = new TestShard();
      await consumer(
        kinesisEvent(shard.records(attemptRecords(id, 1, splitText(longText(200), 10), { type: 'none' }))),
      );
      const overtaken = faultyDynamo(world, () => undefined);
      let overtook = false;
      overtaken.middlewareStack.add(
        (next, context) => async (args) => {
          if (context.commandName === 'QueryCommand' && !overtook) {
            overtook = true;
            await consumer(
              kinesisEvent(shard.records(attemptRecords(id, 2, ['second ', 'attempt'], { type: 'end' }))),
            );
          }
          return next(args);
        },
        { step: 'initialize', name: 'overtake' },
      );
      const handler = createQueryApiHandler({
        config: world.config,
        clients: { dynamo: overtaken, secrets: world.clients.secrets },
        ...telemetry('query-api'),
      });

      // Act
      const response = await handler(apiEvent(`/items/${id}`, token));

      // Assess
      expect(overtook).toBe(true);
      expect(response.statusCode).toBe(200);
      expect(StoredItem.parse(JSON.parse(response.body ?? ''))).toMatchObject({
        attempt: 2,
        text: 'second attempt',
      });
    });

    it('answers 404 with a JSON error for an unknown id', async () => {
      const response = await get('/items/never-submitted');

      expect(response.status).toBe(404);
      expect(await errorOf(response)).toEqual({
        code: 'item_not_found',
        message: 'no item with id "never-submitted"',
      });
    });

    it.each([
      ['a character outside the allowed set', '/items/bad%20id'],
      ['too long', `/items/${'x'.repeat(129)}`],
      ['a broken percent-encoding', '/items/abc%zz'],
    ])('answers 400 with a JSON error for a malformed id (%s)', async (_case, path) => {
      const response = await get(path);

      expect(response.status).toBe(400);
      expect((await errorOf(response)).code).toBe('invalid_item_id');
    });
  });

  describe('authorization', () => {
    it('answers 401 without a token', async () => {
      const response = await get(`/items/${ids.done}`, {});

      expect(response.status).toBe(401);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
      expect(await errorOf(response)).toEqual({ code: 'unauthorized', message: 'a token is required' });
    });

    it('answers 401 for a token signed with another secret', async () => {
      const forged = await issueToken('another-secret-of-at-least-thirty-two-chars', {
        subject: 'tester',
        tenant: '*',
        scopes: ['admin'],
        ttlSeconds: 600,
      });

      const response = await get(`/items/${ids.done}`, { authorization: `Bearer ${forged}` });

      expect(response.status).toBe(401);
      expect(await errorOf(response)).toEqual({ code: 'unauthorized', message: 'the token is not valid' });
    });

    it('answers 401 for an expired token', async () => {
      const expired = await issueToken(TEST_SECRET, {
        subject: 'tester',
        tenant: '*',
        scopes: ['admin'],
        ttlSeconds: -120,
      });

      const response = await get('/items', { authorization: `Bearer ${expired}` });

      expect(response.status).toBe(401);
      expect((await errorOf(response)).message).toBe('the token has expired');
    });

    it('answers 401 for a header that is not a bearer token', async () => {
      const response = await get('/items', { authorization: `Basic ${token}` });

      expect(response.status).toBe(401);
    });
  });

  describe('GET /items', () => {
    const list = async (query = '') => {
      const response = await get(`/items${query}`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { items: unknown[] };
      // Only the items made for these tests (others are older and made by other tests).
      return body.items
        .map((item) => ItemSummary.strict().parse(item))
        .filter((item) => (Object.values(ids) as string[]).includes(item.itemId));
    };

    it('lists the latest items of every status first, without their text', async () => {
      const items = await list();

      expect(items.map((i) => i.itemId)).toEqual([ids.queued, ids.running, ids.big, ids.done]);
      expect(items.map((i) => i.status)).toEqual(['queued', 'streaming', 'completed', 'completed']);
    });

    it('filters by status and honours the limit', async () => {
      expect((await list('?status=completed')).map((i) => i.itemId)).toEqual([ids.big, ids.done]);
      expect((await list('?status=completed&limit=1')).map((i) => i.itemId)).toEqual([ids.big]);
      expect((await list('?limit=2')).map((i) => i.itemId)).toEqual([ids.queued, ids.running]);
      expect(await list('?status=failed')).toEqual([]);
    });

    it.each([
      [
        '?status=done',
        'invalid_status',
        'status must be one of queued, streaming, completed, failed; got "done"',
      ],
      ['?limit=0', 'invalid_limit', 'limit must be a whole number from 1 to 100; got "0"'],
      ['?limit=101', 'invalid_limit', 'limit must be a whole number from 1 to 100; got "101"'],
      ['?limit=ten', 'invalid_limit', 'limit must be a whole number from 1 to 100; got "ten"'],
      [
        '?sort=asc',
        'invalid_parameter',
        'unknown query parameter "sort": GET /items takes status, limit and tenant',
      ],
    ])('answers 400 with a JSON error for %s', async (query, code, message) => {
      const response = await get(`/items${query}`);

      expect(response.status).toBe(400);
      expect(await errorOf(response)).toEqual({ code, message });
    });
  });

  describe('tenancy', () => {
    const tenantToken = (tenant: string, scopes: Array<'read' | 'cancel' | 'admin'> = ['read']) =>
      issueToken(TEST_SECRET, { subject: `viewer-${tenant}`, tenant, scopes, ttlSeconds: 600 });
    const as = async (tokenOf: Promise<string>, path: string) =>
      get(path, { authorization: `Bearer ${await tokenOf}` });

    beforeAll(async () => {
      await putClaimedHead(world, 'acme-1', { tenant: 'acme', createdAt: '2030-02-01T00:00:00.000Z' });
      await putClaimedHead(world, 'acme-2', { tenant: 'acme', createdAt: '2030-02-01T00:01:00.000Z' });
      await putClaimedHead(world, 'globex-1', { tenant: 'globex', createdAt: '2030-02-01T00:02:00.000Z' });
    });

    it('answers another tenant’s item exactly like an unknown one', async () => {
      const other = await as(tenantToken('globex'), '/items/acme-1');
      const unknown = await as(tenantToken('globex'), '/items/acme-nothing');
      const own = await as(tenantToken('acme'), '/items/acme-1');

      expect(own.status).toBe(200);
      expect(StoredItem.parse(await own.json()).tenant).toBe('acme');
      expect(other.status).toBe(404);
      expect(unknown.status).toBe(404);
      expect(await errorOf(other)).toEqual({ code: 'item_not_found', message: 'no item with id "acme-1"' });
      expect(await errorOf(unknown)).toEqual({
        code: 'item_not_found',
        message: 'no item with id "acme-nothing"',
      });
    });

    it('lists the token’s tenant only, whatever tenant it asks for; a * token lists the tenant named', async () => {
      const ids = async (response: Response) =>
        ((await response.json()) as { items: Array<{ itemId: string }> }).items.map((i) => i.itemId);

      expect(await ids(await as(tenantToken('acme'), '/items'))).toEqual(['acme-2', 'acme-1']);
      expect(await ids(await as(tenantToken('globex'), '/items'))).toEqual(['globex-1']);
      expect(await ids(await as(tenantToken('globex'), '/items?tenant=acme'))).toEqual([]);
      expect(await ids(await get('/items?tenant=acme'))).toEqual(['acme-2', 'acme-1']);
    });

    it('spreads one tenant’s status over several index partitions and merges them newest first', async () => {
      const created = Array.from({ length: 24 }, (_, i) => `spread-${i}`);
      for (const [i, id] of created.entries()) {
        await putClaimedHead(world, id, {
          tenant: 'spread',
          createdAt: `2030-03-01T00:${String(i).padStart(2, '0')}:00.000Z`,
        });
      }
      const keys = await world.dynamo.send(
        new ScanCommand({ TableName: world.config.tables.items, ProjectionExpression: 'tenantStatus' }),
      );
      const partitions = new Set(
        (keys.Items ?? []).map((row) => String(row.tenantStatus)).filter((key) => key.startsWith('spread#')),
      );

      const response = await as(tenantToken('spread'), '/items?limit=5');

      expect(partitions.size).toBeGreaterThan(4);
      expect(
        ((await response.json()) as { items: Array<{ itemId: string }> }).items.map((i) => i.itemId),
      ).toEqual(created.slice(-5).reverse());
    });

    it('answers 403 to a token that cannot read', async () => {
      const response = await as(tenantToken('acme', ['cancel']), '/items/acme-1');

      expect(response.status).toBe(403);
      expect((await errorOf(response)).code).toBe('insufficient_scope');
    });
  });

  describe('the local HTTP API', () => {
    it('answers other paths with a JSON 404 and other methods with a JSON 405', async () => {
      const missing = await get('/nowhere');
      const posted = await fetch(`${api.url}/items/${ids.done}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: '{}',
      });

      expect(missing.status).toBe(404);
      expect((await errorOf(missing)).code).toBe('route_not_found');
      expect(posted.status).toBe(405);
      expect((await errorOf(posted)).code).toBe('method_not_allowed');
    });

    it('lets a fallback serve paths outside the API, such as the dashboard', async () => {
      const response = await fetch(`${api.url}/dashboard/index.html`);

      expect(response.status).toBe(200);
      expect(await response.text()).toBe('<h1>dashboard</h1>');
    });

    it('hands the handler an HTTP API payload 2.0 event', async () => {
      const events: APIGatewayProxyEventV2[] = [];
      const capture = await startHttpApi({
        handler: async (event) => {
          events.push(event);
          return { statusCode: 204 };
        },
      });
      try {
        await fetch(`${capture.url}/items/abc%3Adef?x=1&x=2&y=`, {
          headers: { 'X-Custom': 'Yes', cookie: 'a=1; b=2' },
        });
        await fetch(`${capture.url}/items?status=completed`);
        await fetch(`${capture.url}/other/path`, { method: 'DELETE' });
      } finally {
        await capture.stop();
      }

      const [item, list, other] = events;
      expect(item).toMatchObject({
        version: '2.0',
        routeKey: 'GET /items/{itemId}',
        rawPath: '/items/abc%3Adef',
        rawQueryString: 'x=1&x=2&y=',
        queryStringParameters: { x: '1,2', y: '' },
        pathParameters: { itemId: 'abc:def' },
        cookies: ['a=1', 'b=2'],
        isBase64Encoded: false,
        requestContext: {
          http: { method: 'GET', path: '/items/abc%3Adef', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1' },
          routeKey: 'GET /items/{itemId}',
          stage: '$default',
        },
      });
      expect(item?.headers['x-custom']).toBe('Yes');
      expect(list).toMatchObject({ routeKey: 'GET /items', queryStringParameters: { status: 'completed' } });
      expect(list?.pathParameters).toBeUndefined();
      expect(other).toMatchObject({
        routeKey: '$default',
        rawPath: '/other/path',
        requestContext: { http: { method: 'DELETE' } },
      });
    });

    it('answers 500 as API Gateway does when the handler throws', async () => {
      const errors: unknown[] = [];
      const broken = await startHttpApi({
        handler: async () => {
          throw new Error('boom');
        },
        onError: (err) => errors.push(err),
      });
      try {
        const response = await fetch(`${broken.url}/items`);

        expect(response.status).toBe(500);
        expect(await response.json()).toEqual({ message: 'Internal Server Error' });
        expect(errors).toHaveLength(1);
      } finally {
        await broken.stop();
      }
    });
  });

  describe('the handler with a deployed API’s event', () => {
    it('routes by the path under a named stage when API Gateway matched a $default route', async () => {
      const handler = createQueryApiHandler({
        config: world.config,
        clients: world.clients,
        ...telemetry('q'),
      });
      const event = apiEvent(`/items/${ids.done}`, token, 'prod');

      const response = await handler(event);

      expect(response.statusCode).toBe(200);
      expect(StoredItem.parse(JSON.parse(response.body ?? '')).text).toBe(texts.done);
    });

    it('refuses to start without a way to verify tokens', () => {
      const config = { ...world.config, auth: { ...world.config.auth, secret: undefined } };

      expect(() => createQueryApiHandler({ config, clients: world.clients, ...telemetry('q') })).toThrow(
        /no token verification configured: set AUTH_OIDC_ISSUER, AUTH_TOKEN_SECRET_ARN or AUTH_TOKEN_SECRET/,
      );
    });
  });
});
