/**
 * `submit`: writes one work item to the input stream (partition key = item id) and prints its id.
 *
 *   npm run cli -- submit "Write a haiku about streams"
 *   npm run cli -- submit --file item.json --id demo-1 --model amazon.nova-lite-v1:0
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { WorkItem } from '../../shared/contracts/work-item.js';
import { describe } from '../../shared/errors.js';
import { loadTarget, type Target } from '../target.js';

export const summary =
  'put a work item on the input stream and print its id: submit "<prompt>" | --file <item.json>';

const USAGE = `usage: npm run cli -- submit "<prompt>" [options]
       npm run cli -- submit --file <work-item.json> [options]

options:
  --id <itemId>        item id (default: a new one; or the file's)
  --model <modelId>    model id (default: the producer's configured model)
  --max-tokens <n>     token limit of the generation
  --system <text>      system prompt
  --stack <file>       target stack file (default: .local/stack.json)
`;

/** A bad command line: printed with the usage, exit code 2. */
class UsageError extends Error {}

/** A fresh item id: sortable by time, unique enough for hand-submitted work. */
export function newItemId(now = Date.now()): string {
  return `cli-${now.toString(36)}-${randomBytes(4).toString('hex')}`;
}

/** Builds and validates the work item a command line asks for. */
export function workItemOf(args: string[]): { item: WorkItem; stack: string | undefined } {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  let base: Record<string, unknown> = {};
  if (values.file !== undefined) {
    if (positionals.length > 0) throw new UsageError('give either a prompt or --file, not both');
    let raw: string;
    try {
      raw = readFileSync(values.file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read ${values.file}: ${(err as Error).message}`);
    }
    try {
      const json: unknown = JSON.parse(raw);
      if (typeof json !== 'object' || json === null || Array.isArray(json))
        throw new Error('not a JSON object');
      base = json as Record<string, unknown>;
    } catch (err) {
      throw new UsageError(`${values.file} is not a JSON work item: ${(err as Error).message}`);
    }
  } else {
    if (positionals.length === 0) throw new UsageError('give a prompt, or a work item with --file');
    base = { prompt: positionals.join(' ') };
  }
  let maxTokens: number | undefined;
  if (values['max-tokens'] !== undefined) {
    if (!/^\d+$/.test(values['max-tokens'])) {
      throw new UsageError(
        `--max-tokens must be a whole number; got ${JSON.stringify(values['max-tokens'])}`,
      );
    }
    maxTokens = Number(values['max-tokens']);
  }
  const candidate = {
    ...base,
    itemId: values.id ?? base.itemId ?? newItemId(),
    ...(values.model !== undefined ? { modelId: values.model } : {}),
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    ...(values.system !== undefined ? { system: values.system } : {}),
  };
  const result = WorkItem.safeParse(candidate);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(item)'}: ${i.message}`);
    throw new UsageError(`invalid work item: ${problems.join('; ')}`);
  }
  return { item: result.data, stack: values.stack };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      file: { type: 'string' },
      id: { type: 'string' },
      model: { type: 'string' },
      'max-tokens': { type: 'string' },
      system: { type: 'string' },
      stack: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

/** The Kinesis client of a target: its endpoint and credentials when it names them. */
export function kinesisClientOf(target: Target): KinesisClient {
  const endpoint = target.kinesis.endpoint;
  return new KinesisClient({
    region: target.region,
    ...(endpoint ? { endpoint } : {}),
    ...(target.credentials ? { credentials: target.credentials } : {}),
    // The default HTTP/2 handler fails against a plain-HTTP/1.1 endpoint such as the local stack's.
    ...(endpoint?.startsWith('http://') ? { requestHandler: new NodeHttpHandler() } : {}),
  });
}

/** Runs `submit`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let item: WorkItem;
  let target: Target;
  try {
    const built = workItemOf(args);
    item = built.item;
    target = loadTarget(built.stack === undefined ? [] : ['--stack', built.stack]);
  } catch (err) {
    process.stderr.write(
      `submit: ${(err as Error).message}\n${err instanceof UsageError ? `\n${USAGE}` : ''}`,
    );
    return 2;
  }
  const kinesis = kinesisClientOf(target);
  try {
    await kinesis.send(
      new PutRecordCommand({
        StreamName: target.kinesis.inputStream,
        PartitionKey: item.itemId,
        Data: Buffer.from(JSON.stringify(item)),
      }),
    );
  } catch (err) {
    process.stderr.write(
      `submit: could not put the work item on ${target.kinesis.inputStream}: ${describe(err)}\n`,
    );
    return 1;
  } finally {
    kinesis.destroy();
  }
  process.stdout.write(`${item.itemId}\n`);
  return 0;
}
