import { z } from 'zod';

/** `.local/stack.json`: written by `npm start` once every local service is ready. */
export const StackFile = z.object({
  region: z.string(),
  credentials: z.object({ accessKeyId: z.string(), secretAccessKey: z.string() }),
  kinesis: z.object({ endpoint: z.string().url(), inputStream: z.string(), chunkStream: z.string() }),
  dynamodb: z.object({
    endpoint: z.string().url(),
    tables: z.object({ items: z.string(), text: z.string(), connections: z.string() }),
  }),
  bedrock: z.object({ endpoint: z.string().url(), modelId: z.string() }),
  websocket: z.object({ url: z.string(), managementEndpoint: z.string().url() }),
  http: z.object({ url: z.string().url() }),
  dashboard: z.object({ url: z.string().url() }),
  deadLetters: z.object({ endpoint: z.string().url(), queueUrl: z.string().url() }),
  /**
   * The local stand-in of Lambda's Invoke API and the names of the functions behind the mappings,
   * for replaying dead letters through the same handlers (`cli dead-letters replay`). Optional:
   * stack files written before it existed stay valid.
   */
  lambda: z
    .object({
      endpoint: z.string().url(),
      functions: z.object({ producer: z.string(), consumer: z.string() }),
    })
    .optional(),
  token: z.string(),
});
export type StackFile = z.infer<typeof StackFile>;
