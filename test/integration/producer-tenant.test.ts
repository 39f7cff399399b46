import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WorkItem } from '../../shared/contracts/index.js';
import { tenantStatusKey } from '../../shared/tenancy.js';
import { WorkItemShard } from '../factories/work-item-events.js';
import { ProducerFixture } from './producer-fixture.js';

describe('producer: the tenant of a work item', () => {
  let fixture: ProducerFixture;
  /** The raw head row, with the index key the typed head leaves out. */
  const row = async (table: string, itemId: string) =>
    (await fixture.dynamo.send(new GetCommand({ TableName: table, Key: { itemId } }))).Item;
  beforeAll(async () => {
    fixture = await ProducerFixture.start();
  });
  afterEach(() => fixture.bedrock.setFaults({}));
  afterAll(async () => {
    await fixture?.stop();
  });

  it('stores the tenant on the item it creates, `default` when the work item names none', async () => {
    // Prepare
    const producer = await fixture.handler();
    const items: WorkItem[] = [
      { itemId: 'tenant-acme', prompt: 'Hello', maxTokens: 20, tenant: 'acme' },
      { itemId: 'tenant-none', prompt: 'Hello', maxTokens: 20 },
    ];
    // Act
    await producer.handler(new WorkItemShard().event(items));
    // Assess
    expect(await row(producer.config.tables.items, 'tenant-acme')).toMatchObject({
      tenant: 'acme',
      tenantStatus: tenantStatusKey('acme', 'queued', 'tenant-acme'),
    });
    expect(await row(producer.config.tables.items, 'tenant-none')).toMatchObject({ tenant: 'default' });
  });

  it('keeps the tenant an item was created with when a resend of it names another', async () => {
    // Prepare: a finally failed item of acme
    const producer = await fixture.handler({ MAX_GENERATION_ATTEMPTS: '1' });
    const item: WorkItem = { itemId: 'tenant-kept', prompt: 'fail-me tenant', maxTokens: 40, tenant: 'acme' };
    fixture.bedrock.setFaults({ midStream: { match: 'fail-me', probability: 1, afterTokens: 2 } });
    const shard = new WorkItemShard();
    await producer.handler(shard.event([item]));
    fixture.bedrock.setFaults({});
    // Act: a resend naming globex
    const resend: WorkItem = { ...item, tenant: 'globex' };
    await producer.handler(shard.event([resend]));
    // Assess
    expect(await row(producer.config.tables.items, item.itemId)).toMatchObject({
      claimedAttempt: 2,
      tenant: 'acme',
      tenantStatus: tenantStatusKey('acme', 'queued', item.itemId),
    });
  });
});
