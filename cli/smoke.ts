/**
 * `npm run smoke -- --stack <file>`: an end-to-end check of a running stack, local or deployed.
 * Submits a few work items to the input stream, watches one of them as a viewer over the
 * WebSocket API, and checks through the HTTP query API that each completed with the right text
 * (exactly `InvokeModel`'s text when the model is the local stand-in; otherwise non-empty), that
 * the viewer ended with exactly the stored text, and that `GET /items` lists them.
 *
 * Exit codes: 0 every check passed, 1 one failed, 2 a bad command line or stack file.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { lastValueFrom, timeout } from 'rxjs';
import { WebSocket } from 'ws';
import { expectedText } from '../local/expected-text.js';
import { createStreamsClient } from '../shared/client/index.js';
import { StoredItem } from '../shared/contracts/stored-item.js';
import type { WorkItem } from '../shared/contracts/work-item.js';
import { describe } from '../shared/errors.js';
import { orExitWithUsage, parseCommandLine, wholeNumber } from './args.js';
import { loadTarget, type Target } from './target.js';

const USAGE = `usage: npm run smoke -- [--stack <file>] [--items <n>] [--timeout <seconds>]

  --stack <file>        the stack to check (default: .local/stack.json, the running local stack)
  --items <n>           work items to submit, 1 to 20 (default 3)
  --timeout <seconds>   how long the items may take to complete (default 180)
`;

/** One check and how it went. */
export interface SmokeCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** How many items, how long to wait, and where to report progress. */
export interface SmokeOptions {
  readonly items?: number;
  readonly timeoutMs?: number;
  readonly log?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Runs the checks against `target`; never throws for a failed check (it is reported). */
export async function runSmoke(target: Target, options: SmokeOptions = {}): Promise<SmokeCheck[]> {
  const count = options.items ?? 3;
  const deadline = Date.now() + (options.timeoutMs ?? 180_000);
  const log = options.log ?? (() => {});
  const run = `smoke-${Date.now().toString(36)}`;
  const items: WorkItem[] = Array.from({ length: count }, (_, i) => ({
    itemId: `${run}-${i}`,
    prompt: `Smoke check ${i + 1} of ${count}: name one thing a stream carries.`,
    maxTokens: 48 + 16 * i,
    metadata: { smoke: run },
  }));
  const checks: SmokeCheck[] = [];
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail });
    log(`${ok ? 'ok  ' : 'FAIL'} ${name}: ${detail}`);
  };

  // The viewer subscribes before the item exists, as a dashboard would: answered not_found until a
  // producer claims the item, it asks again until then (up to the run's deadline).
  const watched = items[0]!.itemId;
  const viewer = createStreamsClient({
    url: target.websocket.url,
    token: target.token,
    WebSocket,
    notFoundRetry: { deadlineMs: deadline - Date.now() },
  });
  const viewed = lastValueFrom(
    viewer.text$(watched).pipe(timeout({ first: deadline - Date.now(), each: 60_000 })),
  );
  viewed.catch(() => {});
  try {
    await submit(target, items);
    check('submit', true, `${count} work items on ${target.kinesis.inputStream} (${run}-*)`);
    const stored = await Promise.all(items.map((item) => untilEnded(target, item.itemId, deadline)));
    const bedrock = target.bedrock ? standIn(target) : undefined;
    for (const [i, item] of stored.entries()) {
      const name = `item ${items[i]!.itemId}`;
      if (typeof item === 'string') check(name, false, item);
      else if (item.status !== 'completed')
        check(name, false, `${item.status}: ${item.error?.code} ${item.error?.message}`);
      else if (bedrock && target.bedrock) {
        const expected = await expectedText(bedrock, items[i]!, {
          modelId: target.bedrock.modelId,
          maxTokens: 1024,
        });
        check(
          name,
          item.text === expected,
          item.text === expected
            ? `completed; text equals InvokeModel's (${expected.length} characters)`
            : `stored text differs from InvokeModel's (${item.text.length} vs ${expected.length} characters)`,
        );
      } else check(name, item.text.length > 0, `completed with ${item.text.length} characters`);
    }
    bedrock?.destroy();
    const storedText = typeof stored[0] === 'string' ? undefined : stored[0]?.text;
    const seen = await viewed.then(
      (text) => text,
      (err: unknown) => new Error(describe(err)),
    );
    if (seen instanceof Error) check('viewer', false, `watching ${watched}: ${seen.message}`);
    else
      check(
        'viewer',
        seen === storedText,
        seen === storedText
          ? `ended with exactly the stored text of ${watched}`
          : `ended with other text than the stored item (${seen.length} vs ${storedText?.length} characters)`,
      );
    check(
      'list',
      ...(await listed(
        target,
        items.map((item) => item.itemId),
        deadline,
      )),
    );
  } catch (err) {
    check('run', false, describe(err));
  } finally {
    viewer.close();
  }
  return checks;
}

async function submit(target: Target, items: readonly WorkItem[]): Promise<void> {
  const kinesis = new KinesisClient({
    region: target.region,
    ...(target.kinesis.endpoint ? { endpoint: target.kinesis.endpoint } : {}),
    ...(target.credentials ? { credentials: target.credentials } : {}),
    requestHandler: new NodeHttpHandler(),
  });
  try {
    const result = await kinesis.send(
      new PutRecordsCommand({
        StreamName: target.kinesis.inputStream,
        Records: items.map((item) => ({
          PartitionKey: item.itemId,
          Data: Buffer.from(JSON.stringify(item)),
        })),
      }),
    );
    if (result.FailedRecordCount)
      throw new Error(`${result.FailedRecordCount} of ${items.length} work items were not put`);
  } finally {
    kinesis.destroy();
  }
}

function standIn(target: Target): BedrockRuntimeClient {
  return new BedrockRuntimeClient({
    region: target.region,
    endpoint: target.bedrock?.endpoint,
    ...(target.credentials ? { credentials: target.credentials } : {}),
    // The stand-in speaks HTTP/1.1; the client's default for Bedrock is HTTP/2.
    requestHandler: new NodeHttpHandler(),
  });
}

async function api(target: Target, path: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${target.http.url.replace(/\/+$/, '')}${path}`, {
    headers: { authorization: `Bearer ${target.token}` },
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** The stored item once it ended, or why not. */
async function untilEnded(target: Target, itemId: string, deadline: number): Promise<StoredItem | string> {
  let last = 'not stored yet';
  while (Date.now() < deadline) {
    const { status, body } = await api(target, `/items/${itemId}`);
    if (status === 200) {
      const item = StoredItem.parse(body);
      if (item.status === 'completed' || item.status === 'failed') return item;
      last = item.status;
    } else if (status !== 404) return `GET /items/${itemId} answered ${status}: ${JSON.stringify(body)}`;
    await sleep(500);
  }
  return `did not end in time (last seen: ${last})`;
}

/** Whether `GET /items` lists every item (its index is eventually consistent: polled). */
async function listed(target: Target, ids: readonly string[], deadline: number): Promise<[boolean, string]> {
  let missing = [...ids];
  while (Date.now() < deadline) {
    const { status, body } = await api(target, '/items?limit=100');
    if (status !== 200) return [false, `GET /items answered ${status}: ${JSON.stringify(body)}`];
    const listedIds = new Set(
      ((body as { items?: Array<{ itemId: string }> }).items ?? []).map((i) => i.itemId),
    );
    missing = ids.filter((id) => !listedIds.has(id));
    if (missing.length === 0) return [true, `GET /items lists all ${ids.length} items`];
    await sleep(500);
  }
  return [false, `GET /items does not list ${missing.join(', ')}`];
}

async function main(argv: string[]): Promise<number> {
  const { values, target } = orExitWithUsage(USAGE, () => {
    const { values } = parseCommandLine(argv, {
      stack: { type: 'string' },
      items: { type: 'string', default: '3' },
      timeout: { type: 'string', default: '180' },
      help: { type: 'boolean', short: 'h', default: false },
    });
    return {
      values: {
        help: values.help,
        items: wholeNumber('--items', values.items, { min: 1, max: 20 }),
        timeoutMs: wholeNumber('--timeout', values.timeout, { min: 1, max: 3600 }) * 1000,
      },
      target: values.help
        ? undefined
        : loadTarget(values.stack === undefined ? [] : ['--stack', values.stack]),
    };
  });
  if (values.help || !target) {
    process.stdout.write(USAGE);
    return 0;
  }
  process.stdout.write(
    `smoke check of ${target.http.url} (${target.bedrock ? 'local model stand-in' : 'real models'})\n`,
  );
  const checks = await runSmoke(target, { ...values, log: (line) => process.stdout.write(`  ${line}\n`) });
  const failed = checks.filter((c) => !c.ok).length;
  process.stdout.write(
    failed === 0 ? `all ${checks.length} checks passed\n` : `${failed} of ${checks.length} checks failed\n`,
  );
  return failed === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`smoke: ${describe(err)}\n`);
      process.exit(2);
    },
  );
}
