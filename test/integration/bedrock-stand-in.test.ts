import {
  BedrockRuntimeClient,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
  ModelStreamErrorException,
  ServiceUnavailableException,
  ThrottlingException,
  ValidationException,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type BedrockStandIn, startBedrockStandIn } from '../../local/bedrock/index.js';
import { sleep } from '../../shared/retry.js';

type Json = Record<string, unknown>;

/** Bedrock's `amazon-bedrock-invocationMetrics`. */
const Metrics = z.strictObject({
  inputTokenCount: z.number().int(),
  outputTokenCount: z.number().int(),
  invocationLatency: z.number().int(),
  firstByteLatency: z.number().int(),
});
type Metrics = z.infer<typeof Metrics>;
const METRICS = 'amazon-bedrock-invocationMetrics';

/** One model family as a client sees it: how to ask, and where the answer is in the reply. */
interface Family {
  readonly name: string;
  readonly modelId: string;
  /** Another model of the same family. */
  readonly otherModelId: string;
  body(prompt: string, limit: number, sampling?: { temperature: number; topP: number }): Json;
  invokeText(reply: unknown): string;
  invokeUsage(reply: unknown): { input: number; output: number };
  deltas(events: unknown[]): string[];
  streamUsage(events: unknown[]): { input: number | undefined; output: number | undefined };
  /** The invocation metrics of the event that says the answer is complete, if it is one. */
  finalMetrics(event: unknown): Metrics | undefined;
}

const SYSTEM = 'You are a concise assistant.';
const sampled = { temperature: 0.5, topP: 0.9 };

// The shapes below are Bedrock's, from captured responses; strict, so a stray field fails the test.
const ClaudeEvent = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('message_start'),
    message: z.strictObject({
      id: z.string().startsWith('msg_bdrk_'),
      type: z.literal('message'),
      role: z.literal('assistant'),
      model: z.string(),
      content: z.tuple([]),
      stop_reason: z.null(),
      stop_sequence: z.null(),
      usage: z.strictObject({ input_tokens: z.number().int(), output_tokens: z.number().int() }),
    }),
  }),
  z.strictObject({
    type: z.literal('content_block_start'),
    index: z.literal(0),
    content_block: z.strictObject({ type: z.literal('text'), text: z.literal('') }),
  }),
  z.strictObject({
    type: z.literal('content_block_delta'),
    index: z.literal(0),
    delta: z.strictObject({ type: z.literal('text_delta'), text: z.string() }),
  }),
  z.strictObject({ type: z.literal('content_block_stop'), index: z.literal(0) }),
  z.strictObject({
    type: z.literal('message_delta'),
    delta: z.strictObject({ stop_reason: z.enum(['end_turn', 'max_tokens']), stop_sequence: z.null() }),
    usage: z.strictObject({ output_tokens: z.number().int() }),
  }),
  z.strictObject({ type: z.literal('message_stop'), [METRICS]: Metrics }),
]);
const ClaudeReply = z.strictObject({
  id: z.string().startsWith('msg_bdrk_'),
  type: z.literal('message'),
  role: z.literal('assistant'),
  model: z.string(),
  content: z.array(z.strictObject({ type: z.literal('text'), text: z.string() })),
  stop_reason: z.enum(['end_turn', 'max_tokens']),
  stop_sequence: z.null(),
  usage: z.strictObject({ input_tokens: z.number().int(), output_tokens: z.number().int() }),
});

const anthropic: Family = {
  name: 'Anthropic Claude',
  modelId: 'anthropic.claude-3-5-haiku-20241022-v1:0',
  otherModelId: 'anthropic.claude-3-5-sonnet-20241022-v2:0',
  body: (prompt, limit, sampling = sampled) => ({
    anthropic_version: 'bedrock-2023-05-31',
    max_tokens: limit,
    system: SYSTEM,
    messages: [{ role: 'user', content: prompt }],
    temperature: sampling.temperature,
    top_p: sampling.topP,
  }),
  invokeText: (reply) =>
    ClaudeReply.parse(reply)
      .content.map((block) => block.text)
      .join(''),
  invokeUsage: (reply) => {
    const { usage } = ClaudeReply.parse(reply);
    return { input: usage.input_tokens, output: usage.output_tokens };
  },
  deltas: (events) =>
    events
      .map((e) => ClaudeEvent.parse(e))
      .flatMap((e) => (e.type === 'content_block_delta' ? [e.delta.text] : [])),
  streamUsage: (events) => {
    const parsed = events.map((e) => ClaudeEvent.parse(e));
    const start = parsed.find((e) => e.type === 'message_start');
    const delta = parsed.find((e) => e.type === 'message_delta');
    return { input: start?.message.usage.input_tokens, output: delta?.usage.output_tokens };
  },
  finalMetrics: (event) => {
    const parsed = ClaudeEvent.parse(event);
    return parsed.type === 'message_stop' ? parsed[METRICS] : undefined;
  },
};

const LlamaChunk = z.strictObject({
  generation: z.string(),
  prompt_token_count: z.number().int().nullable(),
  generation_token_count: z.number().int(),
  stop_reason: z.enum(['stop', 'length']).nullable(),
  [METRICS]: Metrics.optional(),
});
const LlamaReply = z.strictObject({
  generation: z.string(),
  prompt_token_count: z.number().int(),
  generation_token_count: z.number().int(),
  stop_reason: z.enum(['stop', 'length']),
});

const llama: Family = {
  name: 'Meta Llama',
  modelId: 'meta.llama3-1-8b-instruct-v1:0',
  otherModelId: 'meta.llama3-1-70b-instruct-v1:0',
  body: (prompt, limit, sampling = sampled) => ({
    prompt: `<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n${SYSTEM}<|eot_id|><|start_header_id|>user<|end_header_id|>\n${prompt}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n`,
    max_gen_len: limit,
    temperature: sampling.temperature,
    top_p: sampling.topP,
  }),
  invokeText: (reply) => LlamaReply.parse(reply).generation,
  invokeUsage: (reply) => {
    const parsed = LlamaReply.parse(reply);
    return { input: parsed.prompt_token_count, output: parsed.generation_token_count };
  },
  deltas: (events) => events.map((e) => LlamaChunk.parse(e).generation).filter((text) => text !== ''),
  streamUsage: (events) => {
    const parsed = events.map((e) => LlamaChunk.parse(e));
    return {
      input: parsed[0]?.prompt_token_count ?? undefined,
      output: parsed.find((e) => e.stop_reason !== null)?.generation_token_count,
    };
  },
  finalMetrics: (event) => {
    const parsed = LlamaChunk.parse(event);
    return parsed.stop_reason === null ? undefined : parsed[METRICS];
  },
};

const NovaUsage = {
  inputTokens: z.number().int(),
  outputTokens: z.number().int(),
  cacheReadInputTokenCount: z.literal(0),
  cacheWriteInputTokenCount: z.literal(0),
};
const NovaEvent = z.union([
  z.strictObject({ messageStart: z.strictObject({ role: z.literal('assistant') }) }),
  z.strictObject({
    contentBlockDelta: z.strictObject({
      delta: z.strictObject({ text: z.string() }),
      contentBlockIndex: z.number().int(),
    }),
  }),
  z.strictObject({ contentBlockStop: z.strictObject({ contentBlockIndex: z.number().int() }) }),
  z.strictObject({ messageStop: z.strictObject({ stopReason: z.enum(['end_turn', 'max_tokens']) }) }),
  z.strictObject({
    metadata: z.strictObject({
      usage: z.strictObject(NovaUsage),
      metrics: z.strictObject({}),
      trace: z.strictObject({}),
    }),
    [METRICS]: Metrics.extend({
      cacheReadInputTokenCount: z.literal(0),
      cacheWriteInputTokenCount: z.literal(0),
    }),
  }),
]);
const NovaReply = z.strictObject({
  output: z.strictObject({
    message: z.strictObject({
      content: z.array(z.strictObject({ text: z.string() })),
      role: z.literal('assistant'),
    }),
  }),
  stopReason: z.enum(['end_turn', 'max_tokens']),
  usage: z.strictObject({ ...NovaUsage, totalTokens: z.number().int() }),
});

const nova: Family = {
  name: 'Amazon Nova',
  modelId: 'amazon.nova-lite-v1:0',
  otherModelId: 'amazon.nova-micro-v1:0',
  body: (prompt, limit, sampling = sampled) => ({
    schemaVersion: 'messages-v1',
    system: [{ text: SYSTEM }],
    messages: [{ role: 'user', content: [{ text: prompt }] }],
    inferenceConfig: { maxTokens: limit, temperature: sampling.temperature, topP: sampling.topP },
  }),
  invokeText: (reply) =>
    NovaReply.parse(reply)
      .output.message.content.map((block) => block.text)
      .join(''),
  invokeUsage: (reply) => {
    const { usage } = NovaReply.parse(reply);
    return { input: usage.inputTokens, output: usage.outputTokens };
  },
  deltas: (events) =>
    events
      .map((e) => NovaEvent.parse(e))
      .flatMap((e) => ('contentBlockDelta' in e ? [e.contentBlockDelta.delta.text] : [])),
  streamUsage: (events) => {
    const metadata = events.map((e) => NovaEvent.parse(e)).find((e) => 'metadata' in e);
    return { input: metadata?.metadata.usage.inputTokens, output: metadata?.metadata.usage.outputTokens };
  },
  finalMetrics: (event) => {
    const parsed = NovaEvent.parse(event);
    return 'metadata' in parsed ? parsed[METRICS] : undefined;
  },
};

const FAMILIES = [anthropic, llama, nova];
const decoder = new TextDecoder();

let standIn: BedrockStandIn;
let client: BedrockRuntimeClient;

beforeAll(async () => {
  standIn = await startBedrockStandIn({ timeToFirstTokenMs: 0, tokensPerSecond: 0 });
  client = new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint: standIn.endpoint,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler(),
  });
});

afterEach(() => {
  standIn.setFaults({});
  standIn.setTiming({ timeToFirstTokenMs: 0, tokensPerSecond: 0 });
  standIn.resetStats();
});

afterAll(async () => {
  client?.destroy();
  await standIn?.stop();
});

async function invoke(modelId: string, body: Json): Promise<unknown> {
  const reply = await client.send(
    new InvokeModelCommand({ modelId, body: JSON.stringify(body), contentType: 'application/json' }),
  );
  return JSON.parse(decoder.decode(reply.body)) as unknown;
}

interface StreamResult {
  readonly events: unknown[];
  readonly error?: unknown;
}

/** Reads a response stream to its end, keeping the error the iteration threw, if any. */
async function stream(modelId: string, body: Json, abortSignal?: AbortSignal): Promise<StreamResult> {
  const reply = await client.send(
    new InvokeModelWithResponseStreamCommand({
      modelId,
      body: JSON.stringify(body),
      contentType: 'application/json',
    }),
    { abortSignal },
  );
  const events: unknown[] = [];
  try {
    for await (const part of reply.body ?? []) {
      if (part.chunk?.bytes) events.push(JSON.parse(decoder.decode(part.chunk.bytes)) as unknown);
    }
  } catch (error) {
    return { events, error };
  }
  return { events };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

describe.each(FAMILIES)('$name', (family) => {
  const prompt = `Describe how ${family.name} output reaches a dashboard.`;

  it('streams exactly the text InvokeModel returns, multi-byte characters included', async () => {
    // Prepare
    const body = family.body(prompt, 600);

    // Act
    const expected = family.invokeText(await invoke(family.modelId, body));
    const { events, error } = await stream(family.modelId, body);

    // Assess
    expect(error).toBeUndefined();
    expect(family.deltas(events).join('')).toBe(expected);
    expect(Buffer.byteLength(expected, 'utf8')).toBeGreaterThan(expected.length);
    expect(expected).toMatch(/[\u{10000}-\u{10FFFF}]/u);
  });

  it('reports the same usage both ways, one delta per output token, metrics on the last event', async () => {
    const body = family.body(prompt, 200);

    const reply = await invoke(family.modelId, body);
    const { events } = await stream(family.modelId, body);

    const usage = family.invokeUsage(reply);
    expect(family.streamUsage(events)).toEqual(usage);
    expect(family.deltas(events)).toHaveLength(usage.output);
    expect(usage.output).toBeGreaterThanOrEqual(120);
    expect(usage.output).toBeLessThanOrEqual(200);
    const metrics = family.finalMetrics(events.at(-1));
    expect(metrics).toMatchObject({ inputTokenCount: usage.input, outputTokenCount: usage.output });
    expect(metrics?.invocationLatency).toBeGreaterThanOrEqual(metrics?.firstByteLatency ?? Infinity);
    expect(events.slice(0, -1).every((e) => family.finalMetrics(e) === undefined)).toBe(true);
  });

  it('answers the same whatever the sampling fields, and differently for another prompt, model or limit', async () => {
    const text = async (modelId: string, body: Json) => family.invokeText(await invoke(modelId, body));
    const base = await text(family.modelId, family.body(prompt, 120));

    expect(await text(family.modelId, family.body(prompt, 120, { temperature: 1, topP: 0.1 }))).toBe(base);
    expect(await text(family.modelId, family.body(`${prompt} Briefly.`, 120))).not.toBe(base);
    expect(await text(family.otherModelId, family.body(prompt, 120))).not.toBe(base);
    expect(await text(family.modelId, family.body(prompt, 40))).not.toBe(base);
  });

  it('ends a truncated stream after K tokens with no final event and no error', async () => {
    standIn.setFaults({ truncate: { probability: 1, afterTokens: 7 } });
    const body = family.body(prompt, 200);
    const expected = family.invokeText(await invoke(family.modelId, body));

    const { events, error } = await stream(family.modelId, body);

    expect(error).toBeUndefined();
    expect(family.deltas(events)).toHaveLength(7);
    expect(expected.startsWith(family.deltas(events).join(''))).toBe(true);
    expect(events.some((e) => family.finalMetrics(e) !== undefined)).toBe(false);
    expect(JSON.stringify(events)).not.toContain(METRICS);
    expect(standIn.stats()).toMatchObject({ truncated: 1, completed: 0 });
  });
});

describe('model ids', () => {
  it.each([
    'us.anthropic.claude-3-5-haiku-20241022-v1:0',
    'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0',
    'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0',
  ])('%s reaches the same foundation model as its plain id', async (modelId) => {
    const body = anthropic.body('Same model, another name.', 80);

    const viaProfile = await stream(modelId, body);

    expect(viaProfile.error).toBeUndefined();
    expect(anthropic.deltas(viaProfile.events).join('')).toBe(
      anthropic.invokeText(await invoke(anthropic.modelId, body)),
    );
  });
});

describe('invalid requests', () => {
  it('refuses a model family it does not serve with a ValidationException naming the id', async () => {
    const refused = invoke('cohere.command-r-v1:0', anthropic.body('hi', 10));

    await expect(refused).rejects.toBeInstanceOf(ValidationException);
    await expect(refused).rejects.toThrow(/"cohere\.command-r-v1:0"/);
  });

  it('refuses a malformed body with a ValidationException naming the field', async () => {
    const body = { ...anthropic.body('hi', 10), max_tokens: 'ten' };

    const refused = stream(anthropic.modelId, body);

    await expect(refused).rejects.toBeInstanceOf(ValidationException);
    await expect(refused).rejects.toThrow(/max_tokens: .*expected number/);
    expect(standIn.stats()).toMatchObject({ rejected: 1, streams: 0 });
  });

  it('refuses a body that is not JSON', async () => {
    const refused = client.send(new InvokeModelCommand({ modelId: nova.modelId, body: '{"messages": [' }));

    await expect(refused).rejects.toBeInstanceOf(ValidationException);
    await expect(refused).rejects.toThrow(/not valid JSON/);
  });
});

describe('faults', () => {
  const body = (prompt = 'A prompt for fault injection.') => anthropic.body(prompt, 200);

  it('throttles before the stream: send() rejects with ThrottlingException (HTTP 429)', async () => {
    standIn.setFaults({ throttle: { probability: 1 } });

    const refused = stream(anthropic.modelId, body());

    await expect(refused).rejects.toBeInstanceOf(ThrottlingException);
    await expect(refused).rejects.toMatchObject({ $metadata: { httpStatusCode: 429 } });
    expect(standIn.stats()).toMatchObject({ throttled: 1, streams: 0 });
  });

  it('answers an overloaded model before the stream: send() rejects with ServiceUnavailableException (HTTP 503)', async () => {
    standIn.setFaults({ unavailable: { probability: 1 } });

    const refused = stream(anthropic.modelId, body());

    await expect(refused).rejects.toBeInstanceOf(ServiceUnavailableException);
    await expect(refused).rejects.toMatchObject({ $metadata: { httpStatusCode: 503 } });
    expect(standIn.stats()).toMatchObject({ unavailable: 1, throttled: 0, streams: 0 });
  });

  it('never faults InvokeModel, the reference for expected text', async () => {
    standIn.setFaults({ throttle: { probability: 1 } });

    await expect(invoke(anthropic.modelId, body())).resolves.toHaveProperty('content');
  });

  it.each([
    ['modelStreamErrorException', ModelStreamErrorException],
    ['serviceUnavailableException', ServiceUnavailableException],
    ['throttlingException', ThrottlingException],
  ] as const)(
    'a %s frame after K tokens makes the iteration throw %O after the chunks',
    async (exception, type) => {
      standIn.setFaults({ midStream: { probability: 1, afterTokens: 5, exception } });
      const expected = anthropic.invokeText(await invoke(anthropic.modelId, body()));

      const { events, error } = await stream(anthropic.modelId, body());

      expect(error).toBeInstanceOf(type);
      expect(anthropic.deltas(events)).toHaveLength(5);
      expect(expected.startsWith(anthropic.deltas(events).join(''))).toBe(true);
      expect(events.some((e) => anthropic.finalMetrics(e) !== undefined)).toBe(false);
      expect(standIn.stats()).toMatchObject({ midStreamFailures: 1, completed: 0 });
    },
  );

  it('gives a ModelStreamErrorException the model’s original status code', async () => {
    standIn.setFaults({ midStream: { probability: 1, afterTokens: 1 } });

    const { error } = await stream(anthropic.modelId, body());

    expect(error).toBeInstanceOf(ModelStreamErrorException);
    expect(error).toMatchObject({ originalStatusCode: 500 });
  });

  it('with `match`, hits only the requests whose prompt contains it', async () => {
    standIn.setFaults({ midStream: { match: 'item-poison-42', afterTokens: 3 } });

    const poisoned = await stream(anthropic.modelId, body('Work item item-poison-42, please.'));
    const healthy = await stream(anthropic.modelId, body('Work item item-healthy-7, please.'));

    expect(poisoned.error).toBeInstanceOf(ModelStreamErrorException);
    expect(healthy.error).toBeUndefined();
    expect(anthropic.finalMetrics(healthy.events.at(-1))).toBeDefined();
  });

  it('with `everyNth`, throttles the Nth, 2Nth, ... request', async () => {
    standIn.setFaults({ throttle: { everyNth: 2 } });

    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await stream(anthropic.modelId, body(`request ${i}`)).then(
          () => 'ok',
          (err: Error) => err.name,
        ),
      );
    }

    expect(outcomes).toEqual(['ok', 'ThrottlingException', 'ok', 'ThrottlingException']);
  });
});

describe('control endpoint', () => {
  const control = (path: string, init?: RequestInit) => fetch(`${standIn.endpoint}/_control/${path}`, init);
  const put = (path: string, value: unknown) =>
    control(path, {
      method: 'PUT',
      body: JSON.stringify(value),
      headers: { 'content-type': 'application/json' },
    });

  it('changes faults at run time', async () => {
    const body = anthropic.body('Control endpoint check.', 50);
    expect((await stream(anthropic.modelId, body)).error).toBeUndefined();

    const set = await put('faults', { throttle: { probability: 1 } });
    expect(set.status).toBe(200);
    expect(await (await control('faults')).json()).toEqual({ throttle: { probability: 1 } });
    await expect(stream(anthropic.modelId, body)).rejects.toBeInstanceOf(ThrottlingException);

    expect((await control('faults', { method: 'DELETE' })).status).toBe(200);
    expect((await stream(anthropic.modelId, body)).error).toBeUndefined();
  });

  it('refuses bad settings with 400 naming the field, keeping the old ones', async () => {
    await put('faults', { truncate: { everyNth: 3 } });

    const refused = await put('faults', { midStream: { probability: 1, exception: 'teapotException' } });

    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { message: string }).message).toMatch(/midStream\.exception/);
    expect(await (await control('faults')).json()).toEqual({ truncate: { everyNth: 3 } });
    const notJson = await control('faults', { method: 'PUT', body: 'throttle please' });
    expect(notJson.status).toBe(400);
  });

  it('changes the timing and reports stats', async () => {
    const timing = await put('timing', { tokensPerSecond: 500, timeToFirstTokenMs: 5 });
    expect(await timing.json()).toMatchObject({ tokensPerSecond: 500, timeToFirstTokenMs: 5 });
    expect(standIn.timing()).toMatchObject({ tokensPerSecond: 500, timeToFirstTokenMs: 5 });
    expect((await put('timing', { tokensPerSecond: -1 })).status).toBe(400);

    await stream(anthropic.modelId, anthropic.body('stats', 30));

    const stats = (await (await control('stats')).json()) as Record<string, number>;
    expect(stats).toMatchObject({ requests: 1, streams: 1, completed: 1, activeStreams: 0 });
    expect(stats.tokensSent).toBeGreaterThan(0);
  });

  it('answers an unknown route with 404 listing the routes', async () => {
    const missing = await control('nope');

    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { message: string }).message).toMatch(/\/_control\/faults/);
  });
});

describe('pacing and aborts', () => {
  it('paces tokens in ticks and still streams exactly the InvokeModel text', async () => {
    standIn.setTiming({ timeToFirstTokenMs: 20, tokensPerSecond: 3_000, tickMs: 10 });
    const body = nova.body('Paced output.', 150);

    const { events, error } = await stream(nova.modelId, body);

    expect(error).toBeUndefined();
    expect(nova.deltas(events).join('')).toBe(nova.invokeText(await invoke(nova.modelId, body)));
  });

  it('stops generating as soon as the client aborts, and counts it', async () => {
    standIn.setTiming({ timeToFirstTokenMs: 0, tokensPerSecond: 50, tickMs: 20 });
    const body = anthropic.body('A long answer nobody waits for.', 2_000);
    const planned = anthropic.invokeUsage(await invoke(anthropic.modelId, body)).output;
    const controller = new AbortController();

    const reply = await client.send(
      new InvokeModelWithResponseStreamCommand({ modelId: anthropic.modelId, body: JSON.stringify(body) }),
      { abortSignal: controller.signal },
    );
    let deltas = 0;
    const reading = (async () => {
      for await (const part of reply.body ?? []) {
        if (part.chunk?.bytes && decoder.decode(part.chunk.bytes).includes('content_block_delta')) deltas++;
        if (deltas === 3) controller.abort();
      }
    })();

    await expect(reading).rejects.toThrow();
    await waitFor(() => standIn.stats().aborted === 1, 'the stand-in to see the abort');
    expect(standIn.stats().activeStreams).toBe(0);
    expect(standIn.stats().tokensSent).toBeLessThan(planned);
  });

  it('streams a 20,000-token answer unpaced, byte for byte', async () => {
    const body = llama.body('Write at length.', 20_000);

    const { events, error } = await stream(llama.modelId, body);

    expect(error).toBeUndefined();
    const expected = llama.invokeText(await invoke(llama.modelId, body));
    expect(llama.deltas(events).join('')).toBe(expected);
    expect(llama.deltas(events).length).toBeGreaterThanOrEqual(12_000);
  });
});
