/**
 * The dashboard page in real headless Chromium against the real local stack: items stream into
 * the table and the text panel, the WebSocket is cut at the network level and restored, and the
 * text on the page must equal the stored text exactly (a duplicated or lost delta fails it).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatCount, NONE, shortModel } from '../../dashboard/page/format.js';
import { expectedText } from '../../local/expected-text.js';
import { issueToken } from '../../shared/auth.js';
import { type LocalStack, startLocalStack } from '../../local/stack.js';
import type { StoredItem } from '../../shared/contracts/stored-item.js';
import type { WorkItem } from '../../shared/contracts/work-item.js';
import { readItem } from '../../shared/items.js';
import { findBrowser, planBrowserSuite, systemProbe } from '../support/find-browser.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { waitFor } from '../support/wait.js';

// A browser from CHROMIUM_PATH, the system or Playwright's cache; without one the suite is
// skipped with a hint, except under CI=true where it fails.
const plan = planBrowserSuite(findBrowser(systemProbe()), process.env);
if (plan.action === 'skip') process.stderr.write(`skipping the dashboard page suite: ${plan.message}\n`);
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const SCREENSHOT = 'test-results/dashboard.png';
/** Prompts containing this hit the stand-in's mid-stream fault on every second stream request. */
const RETRY_MARK = '[retried once]';
const CLAUDE = 'anthropic.claude-3-5-haiku-20241022-v1:0';
const LLAMA = 'meta.llama3-1-8b-instruct-v1:0';
const NOVA = 'amazon.nova-lite-v1:0';

if (plan.action === 'fail') {
  describe('the dashboard page', () => {
    it('has a browser to run in', () => {
      throw new Error(plan.message);
    });
  });
}

describe.skipIf(plan.action !== 'run')('the dashboard page', () => {
  let dir: string;
  let profile: string;
  let stack: LocalStack;
  let proxy: TcpProxy;
  let browser: BrowserContext;
  let page: Page;
  const pageErrors: string[] = [];

  const submit = async (items: WorkItem[]) => {
    await stack.clients.kinesis.send(
      new PutRecordsCommand({
        StreamName: stack.info.kinesis.inputStream,
        Records: items.map((item) => ({
          PartitionKey: item.itemId,
          Data: Buffer.from(JSON.stringify(item)),
        })),
      }),
    );
  };
  const stored = (itemId: string) => readItem(stack.clients.dynamo, stack.config.tables, itemId);
  const ended = (itemId: string, timeoutMs = 30_000) =>
    waitFor(
      async () => {
        const item = await stored(itemId);
        return item?.status === 'completed' || item?.status === 'failed' ? item : undefined;
      },
      { what: `${itemId} to end in the store`, timeoutMs },
    );
  const expected = (item: WorkItem) =>
    expectedText(stack.clients.bedrock, item, {
      modelId: stack.config.defaultModelId,
      maxTokens: stack.config.producer.defaultMaxTokens,
    });

  // ---- what the page shows ----
  const row = (itemId: string) => page.locator(`tr[data-item-id="${itemId}"]`);
  const rowStatus = (itemId: string) => row(itemId).getAttribute('data-status', { timeout: 1_000 });
  const panelStatus = () => page.getAttribute('#detail', 'data-status');
  const panelText = async () => (await page.textContent('#detail-text')) ?? '';
  const bannerShown = () => page.isVisible('#banner');
  const connectionState = () => page.getAttribute('#connection', 'data-state');
  const shownItems = () =>
    page.$$eval('#rows tr[data-item-id]', (rows) => rows.map((r) => r.getAttribute('data-item-id') ?? ''));
  /** Every text the panel has shown for the item, in order (recorded in the page on each DOM change). */
  const textsShown = (itemId: string) =>
    page.evaluate(
      (id) => (window as unknown as { __shown: Array<[string, string]> }).__shown.filter(([of]) => of === id),
      itemId,
    );
  /**
   * The page's text for the item is exactly `final`, and was a beginning of it at every moment, so
   * text shown twice even for a moment (and then corrected) fails too.
   */
  const expectExactText = async (itemId: string, final: string) => {
    expect(await panelText()).toBe(final);
    const shown = await textsShown(itemId);
    expect(shown.length).toBeGreaterThan(0);
    for (const [, text] of shown) {
      if (!final.startsWith(text)) {
        expect.fail(
          `the page showed ${itemId} as ${JSON.stringify(text.slice(-120))}…, not a beginning of its text`,
        );
      }
    }
  };
  const select = async (itemId: string) => {
    await row(itemId).click();
    await waitFor(async () => (await page.textContent('#detail-id')) === itemId, {
      what: `${itemId} to be selected`,
    });
  };
  /** Waits until the panel shows the item ended, then returns the text it shows. */
  const panelEnded = async (status: 'completed' | 'failed', what: string) => {
    await waitFor(async () => (await panelStatus()) === status, { what, timeoutMs: 30_000 });
    return panelText();
  };

  beforeAll(async () => {
    if (plan.action !== 'run') throw new Error('unreachable: the suite runs only with a browser');
    dir = mkdtempSync(join(tmpdir(), 'dashboard-'));
    profile = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'));
    stack = await startLocalStack({
      dataDir: dir,
      inMemory: true,
      bedrock: {
        // Paced so that text visibly streams for a few seconds per item.
        timeToFirstTokenMs: 150,
        tokensPerSecond: 200,
        faults: { midStream: { match: RETRY_MARK, everyNth: 2, afterTokens: 60 } },
      },
    });
    const gateway = new URL(stack.info.websocket.url);
    proxy = await startTcpProxy({ host: gateway.hostname, port: Number(gateway.port) });
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: plan.browser.path,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 900 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // The page reaches the gateway through the proxy, so the test can cut its connection.
    const websocketUrl = `ws://127.0.0.1:${proxy.port}${gateway.pathname}`;
    const fragment = new URLSearchParams({ token: stack.info.token, ws: websocketUrl });
    await page.goto(`${stack.info.dashboard.url}#${fragment}`);
    await waitFor(async () => (await connectionState()) === 'open', { what: 'the page to connect' });
    await page.evaluate(() => {
      const shown: Array<[string, string]> = [];
      (window as unknown as { __shown: typeof shown }).__shown = shown;
      const text = document.getElementById('detail-text');
      const id = document.getElementById('detail-id');
      if (!text || !id) throw new Error('the page has no #detail-text or #detail-id');
      new MutationObserver(() => shown.push([id.textContent ?? '', text.textContent ?? ''])).observe(text, {
        characterData: true,
        childList: true,
        subtree: true,
      });
    });
  });

  afterAll(async () => {
    await browser?.close();
    await proxy?.stop();
    await stack?.stop();
    for (const folder of [dir, profile]) if (folder) rmSync(folder, { recursive: true, force: true });
  });

  const streamed: WorkItem[] = [
    { itemId: 'dash-rivers', prompt: 'Tell a story about rivers and deltas', maxTokens: 700 },
    { itemId: 'dash-kinesis', prompt: 'Explain Kinesis shards', modelId: LLAMA, maxTokens: 300 },
    { itemId: 'dash-dynamo', prompt: 'Describe DynamoDB conditional writes', modelId: NOVA, maxTokens: 250 },
  ];

  it('lists submitted items live and streams the selected one, exact across a dropped connection', async () => {
    // Prepare
    await submit(streamed);
    await waitFor(
      async () => {
        const shown = await shownItems();
        return streamed.every((item) => shown.includes(item.itemId));
      },
      { what: 'the submitted items to appear in the table' },
    );
    const first = streamed[0]!;
    await select(first.itemId);
    const early = await waitFor(
      async () => {
        const text = await panelText();
        return (await panelStatus()) === 'streaming' && text.length > 0 ? text : undefined;
      },
      { what: `${first.itemId}'s text to start streaming on the page` },
    );

    // Act: cut the page's WebSocket at the network, until the stream has moved on without it
    proxy.cut();
    await waitFor(async () => (await bannerShown()) && (await connectionState()) === 'reconnecting', {
      what: 'the disconnected banner',
    });
    const shownWhileDown = await panelText();
    await waitFor(
      async () => {
        const item = await stored(first.itemId);
        return item !== undefined && item.text.length > shownWhileDown.length + 200;
      },
      { what: `${first.itemId} to stream on while the page is cut off`, timeoutMs: 20_000 },
    );
    expect(await bannerShown()).toBe(true);
    proxy.restore();
    await waitFor(async () => !(await bannerShown()) && (await connectionState()) === 'open', {
      what: 'the page to reconnect and hide the banner',
      timeoutMs: 20_000,
    });

    // Assess: exactly the stored text (and the model's), of which the early text was a beginning
    const final = await panelEnded('completed', `${first.itemId} to complete on the page`);
    const item = await ended(first.itemId);
    expect(item.status).toBe('completed');
    await expectExactText(first.itemId, item.text);
    expect(final).toBe(await expected(first));
    expect(early.length).toBeLessThan(final.length);
    expect(final.startsWith(early)).toBe(true);
    for (const other of streamed.slice(1)) {
      await select(other.itemId);
      await panelEnded('completed', `${other.itemId} to complete on the page`);
      await expectExactText(other.itemId, (await ended(other.itemId)).text);
    }
  });

  it('fills the table from the live stream and the query API', async () => {
    for (const item of streamed) {
      const storedItem: StoredItem = await ended(item.itemId);
      await waitFor(async () => (await rowStatus(item.itemId)) === 'completed', {
        what: `${item.itemId}'s row to show completed`,
      });
      const cells = await row(item.itemId).locator('td').allTextContents();
      const [, , model, input, output, ttft, duration, cost] = cells;
      expect(model).toBe(shortModel(storedItem.modelId));
      expect(input).toBe(formatCount(storedItem.usage?.inputTokens));
      expect(output).toBe(formatCount(storedItem.usage?.outputTokens));
      for (const timing of [ttft, duration]) expect(timing).toMatch(/^\d+(\.\d+)? (ms|s)$/);
      expect(cost).toMatch(/^\$\d/);
    }
    // Latest first
    const createdAt = new Map(
      await Promise.all(
        streamed.map(async (item) => [item.itemId, (await ended(item.itemId)).createdAt] as const),
      ),
    );
    const latestFirst = [...createdAt.keys()].sort((a, b) => {
      const [ta, tb] = [createdAt.get(a)!, createdAt.get(b)!];
      return ta === tb ? a.localeCompare(b) : ta < tb ? 1 : -1;
    });
    expect((await shownItems()).filter((id) => createdAt.has(id))).toEqual(latestFirst);
  });

  it('shows a new attempt plainly and ends with only that attempt’s text', async () => {
    // Prepare: the first matching request streams normally, the next one fails mid-stream
    const decoy: WorkItem = {
      itemId: 'dash-first-try',
      prompt: `Name three rivers ${RETRY_MARK}`,
      maxTokens: 80,
    };
    await submit([decoy]);
    await ended(decoy.itemId);
    const retried: WorkItem = {
      itemId: 'dash-retried',
      prompt: `Explain exactly-once delivery ${RETRY_MARK}`,
      modelId: CLAUDE,
      maxTokens: 300,
    };

    // Act
    await submit([retried]);
    await waitFor(async () => (await shownItems()).includes(retried.itemId), {
      what: `${retried.itemId} to appear`,
    });
    await select(retried.itemId);

    // Assess
    const text = await panelEnded('completed', `${retried.itemId} to complete on the page`);
    const item = await ended(retried.itemId);
    expect(item.attempt).toBe(2);
    await expectExactText(retried.itemId, item.text);
    expect(text).toBe(await expected(retried));
    const notice = page.locator('#detail-notices .notice[data-kind="reset"]');
    expect(await notice.textContent()).toMatch(/attempt 2/i);
  });

  it('cancels a running generation from its cancel button', async () => {
    // Prepare: long enough to still be running when the button is pressed
    const long: WorkItem = {
      itemId: 'dash-cancelled',
      prompt: 'Write a very long essay on streams',
      maxTokens: 4000,
    };
    await submit([long]);
    await waitFor(async () => (await rowStatus(long.itemId).catch(() => null)) === 'streaming', {
      what: `${long.itemId} to stream`,
    });
    await select(long.itemId);
    await waitFor(async () => (await panelText()).length > 0, { what: `${long.itemId}'s text on the page` });

    // Act
    await page.click('#cancel');

    // Assess
    await panelEnded('failed', `${long.itemId} to end as failed on the page`);
    const item = await ended(long.itemId);
    expect(item.error?.code).toBe('cancelled');
    await expectExactText(long.itemId, item.text);
    expect(await page.isVisible('#detail-notices .notice[data-kind="cancelled"]')).toBe(true);
    expect(await page.isVisible('#cancel')).toBe(false);
    await waitFor(async () => (await page.textContent('#metric-failures .metric-value')) === '1', {
      what: 'the failure to show in failures per minute',
    });
  });

  it('filters the table by status', async () => {
    await page.click('button[data-filter="failed"]');
    await waitFor(async () => sameSet(await shownItems(), ['dash-cancelled']), {
      what: 'only the failed item to be listed',
    });
    await page.click('button[data-filter="completed"]');
    const completed = [...streamed.map((item) => item.itemId), 'dash-first-try', 'dash-retried'];
    await waitFor(async () => sameSet(await shownItems(), completed), {
      what: 'only the completed items to be listed',
    });
    await page.click('button[data-filter="all"]');
    await waitFor(async () => (await shownItems()).length === completed.length + 1, {
      what: 'every item to be listed again',
    });
  });

  it('shows a tenant token only its tenant’s items, and names the tenant it watches', async () => {
    // Prepare: a page with a token for tenant acme (read only), beside the admin page.
    const token = await issueToken(stack.config.auth.secret ?? '', {
      subject: 'acme-viewer',
      tenant: 'acme',
      scopes: ['read'],
      ttlSeconds: 600,
    });
    const tenantPage = await browser.newPage();
    tenantPage.on('pageerror', (err) => pageErrors.push(err.message));
    const fragment = new URLSearchParams({ token, ws: stack.info.websocket.url });
    await tenantPage.goto(`${stack.info.dashboard.url}#${fragment}`);
    await waitFor(async () => (await tenantPage.getAttribute('#connection', 'data-state')) === 'open', {
      what: 'the tenant page to connect',
    });
    const acme: WorkItem[] = [
      { itemId: 'acme-rivers', tenant: 'acme', prompt: 'Tell acme about rivers', maxTokens: 200 },
      { itemId: 'acme-shards', tenant: 'acme', prompt: 'Tell acme about shards', maxTokens: 150 },
    ];
    const globex: WorkItem = {
      itemId: 'globex-secret',
      tenant: 'globex',
      prompt: 'Globex plans',
      maxTokens: 200,
    };
    // Act
    await submit([...acme, globex]);
    await Promise.all([...acme, globex].map((item) => ended(item.itemId)));
    // Assess: the admin page has globex's item, so it was streamed; the tenant page never lists it.
    await waitFor(async () => (await shownItems()).includes(globex.itemId), {
      what: 'the admin page to list the other tenant’s item',
    });
    const tenantRows = () =>
      tenantPage.$$eval('#rows tr[data-item-id]', (rows) =>
        rows.map((r) => r.getAttribute('data-item-id') ?? ''),
      );
    await waitFor(
      async () => {
        const statuses = await Promise.all(
          acme.map((item) =>
            tenantPage
              .getAttribute(`tr[data-item-id="${item.itemId}"]`, 'data-status', { timeout: 1_000 })
              .catch(() => null),
          ),
        );
        return statuses.every((status) => status === 'completed');
      },
      { what: 'the tenant page to show its items completed' },
    );
    expect((await tenantRows()).sort()).toEqual(acme.map((item) => item.itemId).sort());
    expect(await tenantPage.getAttribute('#tenant', 'data-tenant')).toBe('acme');
    expect(await tenantPage.textContent('#tenant')).toBe('Tenant acme');
    expect(await page.textContent('#tenant')).toBe('All tenants');
    await tenantPage.close();
  });

  it('charts throughput and leaves a screenshot of the page at work', async () => {
    // Prepare: a few items streaming for the picture
    const busy: WorkItem[] = [
      { itemId: 'demo-haiku-streams', prompt: 'Write a haiku about streams', maxTokens: 900 },
      { itemId: 'demo-shard-math', prompt: 'How many shards for 5 MB/s?', modelId: LLAMA, maxTokens: 900 },
      { itemId: 'demo-cost-report', prompt: 'Summarize the cost of tokens', modelId: NOVA, maxTokens: 900 },
    ];
    await submit(busy);
    const watched = busy[0]!.itemId;
    await waitFor(async () => (await shownItems()).includes(watched), { what: `${watched} to appear` });
    await select(watched);
    // Model and time to first token come from the query API, not the live stream.
    await waitFor(
      async () => {
        for (const item of busy) {
          const [, , model, , , ttft] = await row(item.itemId).locator('td').allTextContents();
          if (model === NONE || ttft === NONE) return false;
        }
        return true;
      },
      { what: 'the streaming rows to show their model and time to first token' },
    );
    await waitFor(async () => (await panelText()).length > 1_500, {
      what: `${watched} to show some text`,
      timeoutMs: 20_000,
    });
    // One chart tick after the burst, so the newest second is drawn.
    const peak = await waitFor(
      async () => Number(await page.getAttribute('#metric-tokens svg', 'data-peak')) || undefined,
      { what: 'tokens per second to be charted' },
    );
    expect(peak).toBeGreaterThan(0);
    expect(Number(await page.getAttribute('#metric-flight svg', 'data-peak'))).toBeGreaterThan(0);

    mkdirSync(dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    expect(pageErrors).toEqual([]);
  });
});

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && b.every((x) => a.includes(x));
}
