import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import {
  BedrockRuntimeClient,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { NodeHttpHandler } from '@smithy/node-http-handler';

/**
 * Load on the Bedrock stand-in: N concurrent paced response streams read by the real SDK client.
 * The stand-in runs in a child process so its CPU time is its own.
 *
 *   npx tsx bench/bedrock-stand-in.ts [--streams 1000] [--tokens 400] [--tps 50] [--ttft 300] [--raw]
 *
 * Prints wall time, tokens delivered, the stand-in's CPU use, how much later than its schedule
 * each stream finished, and whether every stream's text equals what InvokeModel returns.
 */
const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '1000' },
    tokens: { type: 'string', default: '400' },
    tps: { type: 'string', default: '50' },
    ttft: { type: 'string', default: '300' },
    // Read the streams as raw bytes (no SDK, no decoding) to see the stand-in's pacing on its own.
    raw: { type: 'boolean', default: false },
  },
});
const streams = Number(values.streams);
const maxTokens = Number(values.tokens);
const tps = Number(values.tps);
/** Schedule of one token; 0 when unpaced. */
const msPerToken = tps > 0 ? 1000 / tps : 0;
const ttft = Number(values.ttft);
const modelId = 'anthropic.claude-3-5-haiku-20241022-v1:0';

process.env.AWS_ACCESS_KEY_ID ??= 'local';
process.env.AWS_SECRET_ACCESS_KEY ??= 'local';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const child = spawn(
  process.execPath,
  ['--import', 'tsx', 'local/bedrock/main.ts', '--ttft', String(ttft), '--tps', String(tps)],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const endpoint = await new Promise<string>((resolve, reject) => {
  child.once('exit', (code) => reject(new Error(`stand-in exited with ${code}`)));
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    const found = /endpoint=(\S+)/.exec(text);
    if (found) resolve(found[1] as string);
  });
});

/** utime + stime of a process, in ms, from /proc (Linux). */
const cpuMs = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

const client = new BedrockRuntimeClient({
  region: 'us-east-1',
  endpoint,
  maxAttempts: 1,
  requestHandler: new NodeHttpHandler({
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: streams + 10 }),
    requestTimeout: 600_000,
  }),
});
const decoder = new TextDecoder();
const body = (i: number) =>
  JSON.stringify({
    anthropic_version: 'bedrock-2023-05-31',
    max_tokens: maxTokens,
    messages: [{ role: 'user', content: `Load test prompt number ${i}.` }],
  });

const expected: string[] = [];
for (let i = 0; i < streams; i++) {
  const reply = await client.send(new InvokeModelCommand({ modelId, body: body(i) }));
  const parsed = JSON.parse(decoder.decode(reply.body)) as { content: { text: string }[] };
  expected.push(parsed.content.map((c) => c.text).join(''));
}

const serverCpuBefore = cpuMs(child.pid as number);
const clientCpuBefore = process.cpuUsage();
const started = performance.now();
let tokens = 0;
let mismatches = 0;
const lateness: number[] = [];
const headersMs: number[] = [];
const firstTokenMs: number[] = [];
const streamingLateMs: number[] = [];
const expectedTokens: number[] = [];
for (let i = 0; i < streams; i++) {
  const reply = await client.send(new InvokeModelCommand({ modelId, body: body(i) }));
  const parsed = JSON.parse(decoder.decode(reply.body)) as { usage: { output_tokens: number } };
  expectedTokens.push(parsed.usage.output_tokens);
}

/** One stream read by the SDK: its text is checked against InvokeModel's. */
async function sdkStream(i: number, t0: number): Promise<{ count: number; first: number }> {
  const reply = await client.send(new InvokeModelWithResponseStreamCommand({ modelId, body: body(i) }));
  headersMs.push(performance.now() - t0);
  let text = '';
  let count = 0;
  let first = 0;
  for await (const part of reply.body ?? []) {
    const event = JSON.parse(decoder.decode(part.chunk?.bytes)) as {
      type: string;
      delta?: { text?: string };
    };
    if (event.type === 'content_block_delta') {
      if (count === 0) first = performance.now();
      text += event.delta?.text ?? '';
      count++;
    }
  }
  if (text !== expected[i]) mismatches++;
  return { count, first };
}

const rawAgent = new http.Agent({ keepAlive: true, maxSockets: streams + 10 });

/** One stream read as bytes: the first body byte stands for the first token (it carries it). */
function rawStream(i: number, t0: number): Promise<{ count: number; first: number }> {
  const url = new URL(`${endpoint}/model/${encodeURIComponent(modelId)}/invoke-with-response-stream`);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', agent: rawAgent }, (res) => {
      headersMs.push(performance.now() - t0);
      let first = 0;
      res.on('data', () => {
        if (first === 0) first = performance.now();
      });
      res.on('end', () => resolve({ count: expectedTokens[i] as number, first }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body(i));
  });
}

await Promise.all(
  Array.from({ length: streams }, async (_, i) => {
    const t0 = performance.now();
    const { count, first } = await (values.raw ? rawStream(i, t0) : sdkStream(i, t0));
    firstTokenMs.push(first - t0);
    tokens += count;
    streamingLateMs.push(performance.now() - first - (count - 1) * msPerToken);
    lateness.push(performance.now() - t0 - (ttft + (count - 1) * msPerToken));
  }),
);
const wallMs = performance.now() - started;
const serverCpu = cpuMs(child.pid as number) - serverCpuBefore;
const clientCpu = process.cpuUsage(clientCpuBefore);
const percentiles = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0);
  return { p50: at(0.5), p95: at(0.95), max: at(1) };
};

console.log(
  JSON.stringify(
    {
      streams,
      maxTokens,
      tokensPerSecondPerStream: tps,
      timeToFirstTokenMs: ttft,
      wallMs: Math.round(wallMs),
      tokensDelivered: tokens,
      tokensPerSecond: Math.round((tokens * 1000) / wallMs),
      standInCpuPercentOfOneCore: Math.round((serverCpu / wallMs) * 100),
      clientCpuPercentOfOneCore: Math.round(((clientCpu.user + clientCpu.system) / 1000 / wallMs) * 100),
      responseHeadersMs: percentiles(headersMs),
      firstTokenMs: percentiles(firstTokenMs),
      streamingLaterThanScheduleMs: percentiles(streamingLateMs),
      finishedLaterThanScheduleMs: percentiles(lateness),
      client: values.raw ? 'raw bytes' : 'BedrockRuntimeClient',
      textMismatches: values.raw ? 'not checked' : mismatches,
    },
    null,
    2,
  ),
);
client.destroy();
child.kill('SIGTERM');
