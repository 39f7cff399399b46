import {
  BedrockRuntimeClient,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
  ThrottlingException,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { type BedrockStandIn, type QuotasReport, startBedrockStandIn } from '../../local/bedrock/index.js';
import { waitFor } from '../support/wait.js';

const MODEL = 'anthropic.claude-3-5-haiku-20241022-v1:0';
const decoder = new TextDecoder();

const claudeBody = (prompt: string, maxTokens: number) =>
  JSON.stringify({
    anthropic_version: 'bedrock-2023-05-31',
    max_tokens: maxTokens,
    messages: [{ role: 'user', content: prompt }],
  });

/** What InvokeModel says about a request: its usage, which a stream of it must match. */
const InvokeUsage = z.looseObject({
  usage: z.looseObject({ input_tokens: z.number().int(), output_tokens: z.number().int() }),
});

const newClient = (endpoint: string) =>
  new BedrockRuntimeClient({
    region: 'us-east-1',
    endpoint,
    maxAttempts: 1,
    requestHandler: new NodeHttpHandler(),
  });

/** The account's clock, moved by hand so a minute passes at once. */
const clock = { now: 0 };
let standIn: BedrockStandIn;
let alice: BedrockRuntimeClient;
let bob: BedrockRuntimeClient;

beforeAll(async () => {
  standIn = await startBedrockStandIn({ timeToFirstTokenMs: 0, tokensPerSecond: 0, clock: () => clock.now });
  alice = newClient(standIn.endpoint);
  bob = newClient(standIn.endpoint);
});

afterEach(async () => {
  standIn.setFaults({});
  standIn.setTiming({ timeToFirstTokenMs: 0, tokensPerSecond: 0 });
  await putQuotas({});
  standIn.resetStats();
});

afterAll(async () => {
  alice?.destroy();
  bob?.destroy();
  await standIn?.stop();
});

const control = (init?: RequestInit) => fetch(`${standIn.endpoint}/_control/quotas`, init);
const putQuotas = (value: unknown) =>
  control({ method: 'PUT', body: JSON.stringify(value), headers: { 'content-type': 'application/json' } });
const getQuotas = async () => (await (await control()).json()) as QuotasReport;

/** Streams a request to its end and returns the number of text deltas it carried. */
async function stream(
  client: BedrockRuntimeClient,
  prompt: string,
  maxTokens: number,
  modelId = MODEL,
): Promise<number> {
  const reply = await client.send(
    new InvokeModelWithResponseStreamCommand({ modelId, body: claudeBody(prompt, maxTokens) }),
  );
  let deltas = 0;
  for await (const part of reply.body ?? []) {
    const event = JSON.parse(decoder.decode(part.chunk?.bytes)) as { type: string };
    if (event.type === 'content_block_delta') deltas++;
  }
  return deltas;
}

async function invokeUsage(prompt: string, maxTokens: number) {
  const reply = await alice.send(
    new InvokeModelCommand({ modelId: MODEL, body: claudeBody(prompt, maxTokens) }),
  );
  return InvokeUsage.parse(JSON.parse(decoder.decode(reply.body))).usage;
}

describe('account quotas', () => {
  it('is one quota for every client: over it, send() rejects with a 429 ThrottlingException before any stream', async () => {
    // Prepare
    expect((await putQuotas({ [MODEL]: { requestsPerMinute: 1 } })).status).toBe(200);

    // Act
    const deltas = await stream(alice, 'First in.', 40);
    const refused = await stream(bob, 'Second in.', 40).catch((err: unknown) => err);

    // Assess
    expect(refused).toBeInstanceOf(ThrottlingException);
    expect((refused as ThrottlingException).$metadata.httpStatusCode).toBe(429);
    expect((refused as ThrottlingException).message).toMatch(/requestsPerMinute 1/);
    expect(standIn.stats()).toMatchObject({ streams: 1, throttled: 1, quotaThrottled: 1 });
    const input = (await invokeUsage('First in.', 40)).input_tokens;
    expect(await getQuotas()).toEqual({
      limits: { [MODEL]: { requestsPerMinute: 1 } },
      usage: { [MODEL]: { requests: 2, throttled: 1, inputTokens: input, outputTokens: deltas } },
      window: { [MODEL]: { requests: 1, tokens: input + deltas } },
    });
  });

  it('reserves input + token limit while a stream is open, settles with output × outputBurndown, recovers after a minute', async () => {
    // Prepare: room for one reservation, not two
    const { input_tokens: input, output_tokens: output } = await invokeUsage('Reserve then settle.', 100);
    const reservation = input + 100;
    await putQuotas({ [MODEL]: { tokensPerMinute: 2 * reservation - 1, outputBurndown: 3 } });
    standIn.setTiming({ timeToFirstTokenMs: 1_000 });

    // Act: a stream whose first token is a second away holds its reservation
    const open = stream(alice, 'Reserve then settle.', 100);
    await waitFor(() => standIn.stats().activeStreams === 1, { what: 'the first stream to open' });
    const windowWhileOpen = (await getQuotas()).window[MODEL];
    const refused = await stream(bob, 'Reserve then settle.', 100).catch((err: unknown) => err);
    const activeWhileOpen = standIn.stats().activeStreams;
    expect(await open).toBe(output);
    standIn.setTiming({ timeToFirstTokenMs: 0 });

    // Assess
    expect(activeWhileOpen).toBe(1);
    expect(windowWhileOpen).toEqual({ requests: 1, tokens: reservation });
    expect(refused).toBeInstanceOf(ThrottlingException);
    expect((refused as Error).message).toMatch(new RegExp(`reserves ${reservation} `));
    expect((await getQuotas()).window[MODEL]).toEqual({ requests: 1, tokens: input + output * 3 });
    clock.now += 60_000;
    expect((await getQuotas()).window[MODEL]).toEqual({ requests: 0, tokens: 0 });
    expect(await stream(bob, 'Reserve then settle.', 100)).toBe(output);
  });

  it('throttles every stream at a limit of 0, never InvokeModel, and PUT {} removes the quotas', async () => {
    await putQuotas({ [MODEL]: { tokensPerMinute: 0 } });

    await expect(stream(alice, 'Zero.', 10)).rejects.toBeInstanceOf(ThrottlingException);
    await expect(invokeUsage('Zero.', 10)).resolves.toMatchObject({ output_tokens: expect.any(Number) });
    expect((await getQuotas()).usage[MODEL]).toMatchObject({ requests: 1, throttled: 1 });
    const cleared = await putQuotas({});

    expect(await cleared.json()).toEqual({ limits: {}, usage: {}, window: {} });
    expect(await stream(alice, 'Zero.', 10)).toBeGreaterThan(0);
  });

  it('settles a stream that ends early with the tokens it actually sent', async () => {
    await putQuotas({ [MODEL]: { tokensPerMinute: 100_000, outputBurndown: 5 } });
    const { input_tokens: input } = await invokeUsage('Cut short.', 400);
    standIn.setFaults({ truncate: { match: 'Cut short.', afterTokens: 3 } });

    expect(await stream(alice, 'Cut short.', 400)).toBe(3);
    standIn.setFaults({});
    standIn.setTiming({ tokensPerSecond: 50, tickMs: 20 });
    const controller = new AbortController();
    const reply = await bob.send(
      new InvokeModelWithResponseStreamCommand({ modelId: MODEL, body: claudeBody('Abandoned.', 2_000) }),
      { abortSignal: controller.signal },
    );
    const reading = (async () => {
      for await (const _ of reply.body ?? []) if (standIn.stats().tokensSent >= 8) controller.abort();
    })().catch(() => undefined);
    await reading;
    await waitFor(() => standIn.stats().aborted === 1, { what: 'the aborted stream to end on the server' });

    const sent = standIn.stats().tokensSent;
    const abandonedInput = (await invokeUsage('Abandoned.', 2_000)).input_tokens;
    expect(sent - 3).toBeLessThan(100);
    expect((await getQuotas()).usage[MODEL]).toMatchObject({
      inputTokens: input + abandonedInput,
      outputTokens: sent,
    });
    expect((await getQuotas()).window[MODEL]).toEqual({
      requests: 2,
      tokens: input + abandonedInput + sent * 5,
    });
  });

  it('keys a quota by the model id as the request names it: an inference profile has its own', async () => {
    const profile = `us.${MODEL}`;
    await putQuotas({ [profile]: { requestsPerMinute: 0 } });

    await expect(stream(alice, 'Profile.', 10, profile)).rejects.toBeInstanceOf(ThrottlingException);
    expect(await stream(alice, 'Profile.', 10)).toBeGreaterThan(0);

    expect((await getQuotas()).usage).toEqual({
      [profile]: { requests: 1, throttled: 1, inputTokens: 0, outputTokens: 0 },
      [MODEL]: expect.objectContaining({ requests: 1, throttled: 0 }),
    });
  });

  it('refuses a bad PUT with 400 naming the field, keeping the quotas it had', async () => {
    await putQuotas({ [MODEL]: { requestsPerMinute: 7 } });

    const refused = await putQuotas({ [MODEL]: { tokensPerMinute: 'lots' } });

    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { message: string }).message).toMatch(/tokensPerMinute/);
    expect((await getQuotas()).limits).toEqual({ [MODEL]: { requestsPerMinute: 7 } });
  });
});
