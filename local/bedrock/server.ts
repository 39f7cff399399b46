import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { closeServer, listenOnLoopback } from '../listen.js';
import { type BedrockStandInStats, handleControl } from './control.js';
import { FaultInjector, type Faults, faultsFromEnv } from './faults.js';
import { generate, TokenSource } from './generator.js';
import { AwsErrorResponse, newRequestId, parseJsonBody, readBody, sendAwsError, sendJson } from './http.js';
import { shapesOf } from './model-events.js';
import { ModelIdError, type ResolvedModel, resolveModelId } from './model-id.js';
import { AccountQuotas, type Quotas, type QuotasReport, quotasFromEnv } from './quotas.js';
import { type ModelRequest, parseModelRequest, RequestBodyError } from './request-bodies.js';
import { StreamSession } from './stream-session.js';
import { DEFAULT_TIMING, parseTiming, type Timing, type TimingUpdate, timingFromEnv } from './timing.js';

export type { BedrockStandInStats } from './control.js';
export type { Faults, FaultRule, StreamFaultRule } from './faults.js';
export type { ModelQuota, ModelUsage, Quotas, QuotasReport, QuotaWindow } from './quotas.js';
export type { Timing, TimingUpdate } from './timing.js';

export interface BedrockStandInOptions {
  /** Loopback port; 0 (default) picks a free one. */
  readonly port?: number;
  /** Default 300. */
  readonly timeToFirstTokenMs?: number;
  /** Default 80; 0 or `Infinity` streams as fast as the client reads. */
  readonly tokensPerSecond?: number;
  /** Default 25. */
  readonly tickMs?: number;
  /** Faults from the start; none by default. */
  readonly faults?: Faults;
  /** Randomness for fault probabilities (tests pass a seeded one). Default `Math.random`. */
  readonly random?: () => number;
  /** Per-model account quotas from the start; none (unlimited) by default. */
  readonly quotas?: Quotas;
  /** The quotas' clock, in milliseconds that never go back (tests pass a fake). Default `performance.now`. */
  readonly clock?: () => number;
}

/** A running stand-in. Point a `BedrockRuntimeClient` at `endpoint`. */
export interface BedrockStandIn {
  readonly endpoint: string;
  readonly port: number;
  /** Replaces every fault setting and restarts the `everyNth` counters; throws on a bad setting. */
  setFaults(faults: Faults): void;
  faults(): Faults;
  /** Replaces every quota (`{}` removes all) and zeroes their counters; throws on a bad setting. */
  setQuotas(quotas: Quotas): void;
  /** The quotas, and per model the counters since they were set and the last 60 s. */
  quotas(): QuotasReport;
  /** Changes the named timing fields for streams that start afterwards; throws on a bad value. */
  setTiming(timing: TimingUpdate): void;
  timing(): Timing;
  stats(): BedrockStandInStats;
  /** Zeroes the counters (`activeStreams` keeps counting the open streams). */
  resetStats(): void;
  /** Ends open streams and closes the server. */
  stop(): Promise<void>;
}

const ROUTE = /^\/model\/([^/]+)\/(invoke|invoke-with-response-stream)$/;

const zeroStats = (): Omit<BedrockStandInStats, 'activeStreams'> => ({
  requests: 0,
  invocations: 0,
  streams: 0,
  completed: 0,
  tokensSent: 0,
  rejected: 0,
  throttled: 0,
  unavailable: 0,
  quotaThrottled: 0,
  midStreamFailures: 0,
  truncated: 0,
  aborted: 0,
});

/**
 * Starts the local Bedrock Runtime stand-in on 127.0.0.1: `POST /model/{modelId}/invoke` and
 * `POST /model/{modelId}/invoke-with-response-stream` for Anthropic Claude, Meta Llama and Amazon
 * Nova models, in the wire format the real `BedrockRuntimeClient` expects, plus `/_control/*`.
 */
export async function startBedrockStandIn(options: BedrockStandInOptions = {}): Promise<BedrockStandIn> {
  let timing: Timing = {
    ...DEFAULT_TIMING,
    ...parseTiming({
      timeToFirstTokenMs: options.timeToFirstTokenMs,
      tokensPerSecond: options.tokensPerSecond,
      tickMs: options.tickMs,
    }),
  };
  const injector = new FaultInjector(options.faults, options.random);
  const accountQuotas = new AccountQuotas(options.quotas, options.clock);
  const sessions = new Set<StreamSession>();
  let counters = zeroStats();

  const standIn = {
    setFaults: (faults: Faults) => injector.set(faults),
    faults: () => injector.get(),
    setQuotas: (quotas: Quotas) => accountQuotas.set(quotas),
    quotas: () => accountQuotas.report(),
    setTiming: (update: TimingUpdate) => {
      timing = { ...timing, ...parseTiming(update) };
    },
    timing: () => timing,
    stats: (): BedrockStandInStats => ({ ...counters, activeStreams: sessions.size }),
    resetStats: () => {
      counters = zeroStats();
    },
  };

  async function serveModel(req: IncomingMessage, res: ServerResponse, match: RegExpExecArray) {
    const receivedAt = performance.now();
    const requestId = newRequestId();
    const [, segment, operation] = match as unknown as [string, string, string];
    counters.requests++;
    try {
      if (req.method !== 'POST')
        throw new AwsErrorResponse(
          404,
          'UnknownOperationException',
          `${req.method} is not an operation; use POST.`,
        );
      const model = resolveModelId(segment);
      const body = parseJsonBody(await readBody(req), model.family);
      const request = parseModelRequest(model.family, body);
      if (operation === 'invoke') {
        // Never throttled nor faulted: InvokeModel is how checkers learn the expected text.
        const generation = generate({ modelId: model.foundationModelId, ...request });
        counters.invocations++;
        return sendJson(res, 200, shapesOf(model.family).invokeResponse(generation, model), {
          'x-amzn-requestid': requestId,
          'x-amzn-bedrock-input-token-count': generation.inputTokens,
          'x-amzn-bedrock-output-token-count': generation.outputTokens,
          'x-amzn-bedrock-invocation-latency': Math.round(performance.now() - receivedAt),
        });
      }
      serveStream(res, { requestId, receivedAt, model, request });
    } catch (err) {
      const answer = toAwsError(err);
      if (answer.errorType === 'ValidationException') counters.rejected++;
      if (!res.headersSent) sendAwsError(res, answer, requestId);
      else res.destroy();
    }
  }

  /**
   * Answers InvokeModelWithResponseStream: an injected throttle, then the account quota, may refuse
   * it with HTTP 429 before the stream opens; an admitted stream settles its quota when it ends.
   */
  function serveStream(res: ServerResponse, call: StreamCall) {
    const { model, request } = call;
    const source = new TokenSource({ modelId: model.foundationModelId, ...request });
    const fault = injector.decide(request.promptText, source.plan.outputTokens);
    if (fault.kind === 'throttle') {
      counters.throttled++;
      throw new AwsErrorResponse(
        429,
        'ThrottlingException',
        'Too many requests, please wait before trying again. (injected by the local Bedrock stand-in)',
      );
    }
    if (fault.kind === 'unavailable') {
      counters.unavailable++;
      throw new AwsErrorResponse(
        503,
        'ServiceUnavailableException',
        'The service is unavailable. Please try again later. (injected by the local Bedrock stand-in)',
      );
    }
    const admission = accountQuotas.admit({
      modelId: model.requested,
      inputTokens: source.plan.inputTokens,
      maxTokens: request.maxTokens,
    });
    if (!admission.admitted) {
      counters.throttled++;
      counters.quotaThrottled++;
      throw new AwsErrorResponse(429, 'ThrottlingException', admission.message);
    }
    counters.streams++;
    let outputTokens = 0;
    const session: StreamSession = new StreamSession({
      res,
      requestId: call.requestId,
      model,
      shapes: shapesOf(model.family),
      source,
      fault,
      timing,
      receivedAt: call.receivedAt,
      onTokens: (count) => {
        counters.tokensSent += count;
        outputTokens += count;
      },
      onEnd: (outcome) => {
        sessions.delete(session);
        admission.settle(outputTokens);
        if (outcome === 'completed') counters.completed++;
        else if (outcome === 'midStreamFailure') counters.midStreamFailures++;
        else if (outcome === 'truncated') counters.truncated++;
        else if (outcome === 'aborted') counters.aborted++;
      },
    });
    sessions.add(session);
    session.start();
  }

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0] as string;
    const onError = (err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { message: String(err) });
      else res.destroy();
    };
    if (path.startsWith('/_control/')) {
      handleControl(req, res, path, standIn).catch(onError);
      return;
    }
    const match = ROUTE.exec(path);
    if (match) {
      serveModel(req, res, match).catch(onError);
      return;
    }
    sendAwsError(
      res,
      new AwsErrorResponse(
        404,
        'UnknownOperationException',
        `No operation at ${req.method} ${path}; the stand-in serves POST /model/{modelId}/invoke, ` +
          'POST /model/{modelId}/invoke-with-response-stream and /_control/*.',
      ),
      newRequestId(),
    );
  });
  // Longer than the SDK agent's idle sockets live, so a reused keep-alive socket is never closed under it.
  server.keepAliveTimeout = 70_000;

  const port = await listenOnLoopback(server, options.port ?? 0);
  return {
    ...standIn,
    endpoint: `http://127.0.0.1:${port}`,
    port,
    async stop() {
      for (const session of sessions) session.destroy();
      await closeServer(server);
    },
  };
}

/** A stream request once its model and body have been read. */
interface StreamCall {
  readonly requestId: string;
  readonly receivedAt: number;
  readonly model: ResolvedModel;
  readonly request: ModelRequest;
}

function toAwsError(err: unknown): AwsErrorResponse {
  if (err instanceof AwsErrorResponse) return err;
  if (err instanceof ModelIdError || err instanceof RequestBodyError)
    return new AwsErrorResponse(400, 'ValidationException', err.message);
  return new AwsErrorResponse(
    500,
    'InternalServerException',
    `The local Bedrock stand-in failed: ${err instanceof Error ? err.message : String(err)}`,
  );
}

/**
 * Stand-in options from the environment: `BEDROCK_FAULTS` (JSON), `BEDROCK_QUOTAS` (JSON),
 * `BEDROCK_TIME_TO_FIRST_TOKEN_MS`, `BEDROCK_TOKENS_PER_SECOND`. Throws a `ConfigError` naming a bad variable.
 */
export function standInOptionsFromEnv(env: NodeJS.ProcessEnv): BedrockStandInOptions {
  const faults = faultsFromEnv(env);
  const quotas = quotasFromEnv(env);
  return { ...timingFromEnv(env), ...(faults ? { faults } : {}), ...(quotas ? { quotas } : {}) };
}
