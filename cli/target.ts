import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/**
 * Where the command line sends work and reads items from. The local stack writes one to
 * `.local/stack.json`; for a deployed stack, write the same fields to a file and pass
 * `--stack <file>` (or set STREAMS_STACK_FILE). Credentials are optional: without them the AWS
 * SDK's default chain is used.
 */
export const Target = z.object({
  region: z.string(),
  credentials: z.object({ accessKeyId: z.string(), secretAccessKey: z.string() }).optional(),
  kinesis: z.object({
    endpoint: z.string().url().optional(),
    inputStream: z.string(),
    /** Needed only to replay the consumer's dead letters. */
    chunkStream: z.string().optional(),
  }),
  http: z.object({ url: z.string().url() }),
  websocket: z.object({ url: z.string() }),
  token: z.string(),
  /** The dead-letter store (`dead-letters list|replay`). */
  deadLetters: z.object({ endpoint: z.string().url().optional(), queueUrl: z.string().url() }).optional(),
  /** The functions behind the event source mappings, invoked to replay dead letters. */
  lambda: z
    .object({
      endpoint: z.string().url().optional(),
      functions: z.object({ producer: z.string(), consumer: z.string() }),
    })
    .optional(),
  /** The local model stand-in (local stacks only): checkers learn expected texts from it. */
  bedrock: z.object({ endpoint: z.string().url(), modelId: z.string() }).optional(),
});
export type Target = z.infer<typeof Target>;

export const DEFAULT_STACK_FILE = '.local/stack.json';

/** Removes `--stack <file>` from `args` and loads the target it names (or the default). */
export function loadTarget(args: string[], env: NodeJS.ProcessEnv = process.env): Target {
  const at = args.indexOf('--stack');
  let file = env.STREAMS_STACK_FILE ?? DEFAULT_STACK_FILE;
  if (at >= 0) {
    const value = args[at + 1];
    if (!value) throw new Error('--stack needs a file path');
    file = value;
    args.splice(at, 2);
  }
  let raw: string;
  try {
    raw = readFileSync(resolve(file), 'utf8');
  } catch {
    throw new Error(
      `no stack file at ${file}: start the local stack with \`npm start\`, or pass --stack <file>`,
    );
  }
  const parsed = Target.safeParse(JSON.parse(raw));
  if (!parsed.success) throw new Error(`stack file ${file} is not valid: ${parsed.error.message}`);
  return parsed.data;
}
