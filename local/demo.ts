import { KinesisClient, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { WorkItem } from '../shared/contracts/work-item.js';
import { readItem } from '../shared/items.js';
import { sleep } from '../shared/retry.js';
import type { LocalStack } from './stack.js';

const DEMO_ITEMS = (run: string): WorkItem[] => [
  {
    itemId: `demo-${run}-claude`,
    prompt: 'Explain in a paragraph why Kinesis partitions by item id.',
    modelId: 'anthropic.claude-3-5-haiku-20241022-v1:0',
    maxTokens: 300,
    metadata: { demo: true },
  },
  {
    itemId: `demo-${run}-llama`,
    prompt: 'List three things a dashboard should show about model generations.',
    modelId: 'meta.llama3-1-8b-instruct-v1:0',
    maxTokens: 200,
    metadata: { demo: true },
  },
  {
    itemId: `demo-${run}-nova`,
    system: 'You are terse.',
    prompt: 'Say hello to the viewers.',
    modelId: 'amazon.nova-lite-v1:0',
    maxTokens: 120,
    metadata: { demo: true },
  },
];

/**
 * Writes a few work items to the input stream, as an upstream system would, and reports each as
 * it completes.
 */
export async function runDemo(
  stack: LocalStack,
  print: (line: string) => void,
  deadlineMs = 120_000,
): Promise<void> {
  const { info } = stack;
  const kinesis = new KinesisClient({
    region: info.region,
    endpoint: info.kinesis.endpoint,
    credentials: info.credentials,
    requestHandler: new NodeHttpHandler(),
  });
  const items = DEMO_ITEMS(Date.now().toString(36));
  await kinesis.send(
    new PutRecordsCommand({
      StreamName: info.kinesis.inputStream,
      Records: items.map((item) => ({ PartitionKey: item.itemId, Data: Buffer.from(JSON.stringify(item)) })),
    }),
  );
  print(`demo: submitted ${items.map((i) => i.itemId).join(', ')}`);
  kinesis.destroy();

  const pending = new Set(items.map((i) => i.itemId));
  const seen = new Map<string, string>();
  const deadline = Date.now() + deadlineMs;
  while (pending.size > 0 && Date.now() < deadline) {
    for (const itemId of pending) {
      const item = await readItem(stack.clients.dynamo, stack.config.tables, itemId);
      if (!item || seen.get(itemId) === item.status) continue;
      seen.set(itemId, item.status);
      if (item.status === 'completed') {
        pending.delete(itemId);
        const tokens = item.usage?.outputTokens ?? 0;
        print(`demo: ${itemId} completed: ${tokens} tokens, ${item.text.length} characters`);
        print(`      "${item.text.slice(0, 100).replace(/\s+/g, ' ')}…"`);
      } else if (item.status === 'failed') {
        pending.delete(itemId);
        print(`demo: ${itemId} failed: ${item.error?.code} ${item.error?.message}`);
      } else {
        print(`demo: ${itemId} ${item.status}`);
      }
    }
    await sleep(250);
  }
  if (pending.size > 0) print(`demo: still running after ${deadlineMs / 1000} s: ${[...pending].join(', ')}`);
  else print(`demo: done. Open the dashboard, or: npm run cli -- get ${items[0]?.itemId}`);
}
