import { type BedrockRuntimeClient, InvokeModelCommand } from '@aws-sdk/client-bedrock-runtime';
import { z } from 'zod';
import { adapterFor, resolveModel } from '../producers/generator/models/index.js';
import type { WorkItem } from '../shared/contracts/work-item.js';

const ResponseText = {
  anthropic: z
    .object({ content: z.array(z.object({ type: z.string(), text: z.string().optional() })) })
    .transform((r) => r.content.map((block) => block.text ?? '').join('')),
  llama: z.object({ generation: z.string() }).transform((r) => r.generation),
  nova: z
    .object({ output: z.object({ message: z.object({ content: z.array(z.object({ text: z.string() })) }) }) })
    .transform((r) => r.output.message.content.map((block) => block.text).join('')),
} as const;

/**
 * The text a work item must end with: `InvokeModel` with the very body the producer streams, so
 * any checker (tests, chaos runs) learns the model's output independently of the pipeline.
 */
export async function expectedText(
  bedrock: BedrockRuntimeClient,
  item: WorkItem,
  defaults: { modelId: string; maxTokens: number },
): Promise<string> {
  const model = resolveModel(item.modelId ?? defaults.modelId);
  const body = adapterFor(model.family).requestBody(item, {
    maxTokens: item.maxTokens ?? defaults.maxTokens,
  });
  const response = await bedrock.send(
    new InvokeModelCommand({
      modelId: model.requested,
      contentType: 'application/json',
      accept: 'application/json',
      body: JSON.stringify(body),
    }),
  );
  return ResponseText[model.family].parse(JSON.parse(new TextDecoder().decode(response.body)));
}
