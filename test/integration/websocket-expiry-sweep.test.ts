/**
 * The expiry sweep against the real route handlers behind the local gateway, on dynalite: a
 * connection whose token expires is closed by the server at expiry even when it sends nothing,
 * holds no subscription and would receive nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExpirySweep, type ExpirySweepResult } from '../../consumers/viewers/handler.js';
import { type ExpirySweeper, startExpirySweeper } from '../../local/expiry-sweeper.js';
import { issueToken } from '../../shared/auth.js';
import { type AwsClients, createAwsClients } from '../../shared/aws-clients.js';
import type { Config } from '../../shared/config.js';
import { createLogger, createMetrics } from '../../shared/telemetry.js';
import {
  type DeliveryWorld,
  SECRET,
  startDeliveryWorld,
  type Viewer,
  waitUntil,
  within,
} from './websocket-helpers.js';

/** The local stack sweeps every few seconds; here faster, so the test waits less. */
const INTERVAL_MS = 250;

describe('expiry sweep: expired connections are closed at expiry', () => {
  let world: DeliveryWorld;
  let config: Config;
  let clients: AwsClients;
  let sequence = 0;
  const token = (ttlSeconds: number) =>
    issueToken(SECRET, { subject: `sweep-${++sequence}`, tenant: 'sw', scopes: ['read'], ttlSeconds });
  /** The epoch ms the token of `viewer`'s connection expires at, from its stored row. */
  const expiresAtMs = async (viewer: Viewer) => {
    const [row] = await world.rows(`conn#${viewer.connectionId}`);
    return Number(row?.tokenExpiresAt) * 1000;
  };
  const deps = () => ({ config, clients, logger: createLogger('sweep'), metrics: createMetrics('sweep') });

  beforeAll(async () => {
    world = await startDeliveryWorld();
    // The sweep closes connections through the gateway's management API, like the fan-out.
    config = {
      ...world.config,
      endpoints: { ...world.config.endpoints, websocketManagement: world.gateway.managementEndpoint },
    };
    clients = createAwsClients(config);
  });
  afterAll(async () => {
    clients?.dynamo.destroy();
    await world?.stop();
  });

  describe('on its timer', () => {
    let sweeper: ExpirySweeper;
    const runs: ExpirySweepResult[] = [];
    beforeAll(() => {
      sweeper = startExpirySweeper({ ...deps(), intervalMs: INTERVAL_MS, onRun: (r) => runs.push(r) });
    });
    afterAll(async () => {
      await sweeper?.stop();
    });

    it('closes an idle connection without subscriptions at its expiry; one with a valid token stays open', async () => {
      // Prepare: a token valid for 2 s and one valid for 10 min; neither sends or holds anything.
      const short = await world.connect(await token(2));
      const long = await world.connect(await token(600));
      const expiry = await expiresAtMs(short);
      let closedAt = 0;
      void short.closed.then(() => {
        closedAt = Date.now();
      });
      // Act: nothing but time passing. Assess: closed by the server within the sweep interval of expiry.
      const untilExpiry = expiry - Date.now();
      await within('the expired connection is closed', short.closed, untilExpiry + INTERVAL_MS + 2_000);
      expect(closedAt).toBeGreaterThanOrEqual(expiry);
      expect(short.closeCode).toBe(1000);
      await waitUntil(
        'its rows are removed',
        async () => (await world.rows(`conn#${short.connectionId}`)).length === 0,
      );
      // Two more runs after the close, and the valid connection is still open and stored.
      const after = runs.length;
      await waitUntil('two more sweeps', () => runs.length >= after + 2);
      expect(long.open).toBe(true);
      expect((await world.rows(`conn#${long.connectionId}`)).map((r) => r.sk)).toEqual(['connection']);
      expect(runs.some((r) => r.closed === 1)).toBe(true);
      await long.close();
    }, 20_000);
  });

  describe('one run', () => {
    it('closes at most its maximum; the next run takes the rest; a gone one (410) only loses its rows', async () => {
      // Prepare: three expired connections, one of them dropped by the gateway without $disconnect.
      const viewers = [await world.connect(await token(1)), await world.connect(await token(1))];
      const dropped = await world.connect(await token(1));
      await world.gateway.dropConnection(dropped.connectionId, { notify: false });
      const last = Math.max(...(await Promise.all([...viewers, dropped].map(expiresAtMs))));
      await waitUntil('every token expired', () => Date.now() >= last, 5_000);
      const sweep = createExpirySweep({ ...deps(), maxConnections: 2 });
      // Act
      const first = await sweep();
      const second = await sweep();
      const third = await sweep();
      // Assess
      expect(first).toMatchObject({ found: 2, left: 0 });
      expect(second).toMatchObject({ found: 1, left: 0 });
      expect(first.closed + first.gone + second.closed + second.gone).toBe(3);
      expect(first.gone + second.gone).toBe(1);
      expect(third).toEqual({ found: 0, closed: 0, gone: 0, left: 0 });
      await Promise.all(viewers.map((v) => within('the close', v.closed)));
      for (const v of [...viewers, dropped]) expect(await world.rows(`conn#${v.connectionId}`)).toEqual([]);
    }, 20_000);
  });
});
