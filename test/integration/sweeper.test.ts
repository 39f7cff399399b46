/**
 * The stall sweeper on dynalite, with the real reassembler: a stuck item is marked `failed`
 * (`stalled`) and a resend's new attempt then completes it exactly.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReassemblerHandler } from '../../consumers/reassembler/handler.js';
import { createSweeper, STALLED_CODE } from '../../consumers/sweeper/sweeper.js';
import { decideClaim } from '../../producers/generator/claims.js';
import { readItem, readItemHead } from '../../shared/items.js';
import { createLogger, createMetrics } from '../../shared/telemetry.js';
import { attemptRecords } from '../factories/chunk-records.js';
import { kinesisEvent, TestShard } from '../factories/kinesis-events.js';
import { type ConsumerWorld, putClaimedHead, startConsumerWorld } from './consumer-fixture.js';

const LIMIT_MS = 60_000;

describe('stall sweeper', () => {
  let world: ConsumerWorld;
  let clock = Date.now();
  const consumer = () =>
    createReassemblerHandler({
      config: world.config,
      clients: world.clients,
      deadLetters: { send: async () => {} },
      publisher: { publish: async () => {} },
      logger: createLogger('consumer'),
      metrics: createMetrics('consumer'),
      now: () => clock,
    });
  const sweep = () =>
    createSweeper({
      config: world.config,
      clients: world.clients,
      logger: createLogger('sweeper'),
      metrics: createMetrics('sweeper'),
      stallLimitMs: LIMIT_MS,
      now: () => clock,
    })();
  const lease = (itemId: string, leaseUntil: number) =>
    world.dynamo.send(
      new UpdateCommand({
        TableName: world.config.tables.items,
        Key: { itemId },
        UpdateExpression: 'SET leaseUntil = :l, claimState = :c, claimedBy = :b',
        ExpressionAttributeValues: { ':l': leaseUntil, ':c': 'completed', ':b': 'shard-0:1' },
      }),
    );

  beforeAll(async () => {
    world = await startConsumerWorld();
  });
  afterAll(async () => {
    await world?.stop();
  });

  it('marks an item stuck behind a gap failed as stalled, and a resend completes it exactly', async () => {
    // Prepare: seq 1 of attempt 1 was skipped, so seq 2 and the end are held forever.
    clock = Date.now();
    const itemId = `stuck-${clock}`;
    await putClaimedHead(world, itemId, { createdAt: new Date(clock).toISOString() });
    const shard = new TestShard();
    const first = attemptRecords(itemId, 1, ['lost ', 'in ', 'a gap']);
    await consumer()(
      kinesisEvent(shard.records([first[0], first[2], first[3]].flatMap((r) => (r ? [r] : [])))),
    );
    await lease(itemId, clock + 5_000);
    expect((await readItemHead(world.dynamo, world.config.tables, itemId))?.status).toBe('streaming');
    // Act: within the limit nothing happens; past it the item is marked.
    clock += LIMIT_MS / 2;
    expect((await sweep()).stalled).not.toContain(itemId);
    clock += LIMIT_MS * 2;
    const result = await sweep();
    // Assess
    expect(result.stalled).toContain(itemId);
    const marked = await readItemHead(world.dynamo, world.config.tables, itemId);
    expect(marked?.status).toBe('failed');
    expect(marked?.error?.code).toBe(STALLED_CODE);
    expect(marked?.error?.message).toMatch(
      /no progress for \d+ s .*streaming at attempt 1, next seq 1, 2 records held/,
    );
    expect(marked?.claimState).toBe('failed');
    // The producer's claim: a resend (another input record) starts a new attempt; the same one does not.
    expect(decideClaim(marked, clock, 'shard-0:2')).toBe('reclaim');
    expect(decideClaim(marked, clock, 'shard-0:1')).toBe('ended');
    // A late record of the stalled attempt changes nothing; the new attempt completes exactly.
    await consumer()(kinesisEvent(shard.records([first[1]].flatMap((r) => (r ? [r] : [])))));
    expect((await readItemHead(world.dynamo, world.config.tables, itemId))?.status).toBe('failed');
    await consumer()(kinesisEvent(shard.records(attemptRecords(itemId, 2, ['found ', 'again']))));
    const item = await readItem(world.dynamo, world.config.tables, itemId);
    expect(item?.status).toBe('completed');
    expect(item?.attempt).toBe(2);
    expect(item?.text).toBe('found again');
    expect(item?.error).toBeNull();
  });

  it('leaves an item alone while its producer renews its lease', async () => {
    clock = Date.now();
    const itemId = `leased-${clock}`;
    await putClaimedHead(world, itemId, { createdAt: new Date(clock - 10 * LIMIT_MS).toISOString() });
    await lease(itemId, clock + 20_000);
    expect((await sweep()).stalled).not.toContain(itemId);
    expect((await readItemHead(world.dynamo, world.config.tables, itemId))?.status).toBe('queued');
  });
});
