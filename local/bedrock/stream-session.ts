import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { chunkFrame, exceptionFrame, type StreamException } from './event-stream.js';
import type { FaultDecision } from './faults.js';
import type { TokenSource } from './generator.js';
import type { FamilyShapes, InvocationMetrics } from './model-events.js';
import type { ResolvedModel } from './model-id.js';
import type { Timing } from './timing.js';

/** How a stream ended. */
export type StreamOutcome = 'completed' | 'midStreamFailure' | 'truncated' | 'aborted' | 'stopped' | 'failed';

export interface StreamSessionOptions {
  readonly res: ServerResponse;
  readonly requestId: string;
  readonly model: ResolvedModel;
  readonly shapes: FamilyShapes;
  readonly source: TokenSource;
  readonly fault: Exclude<FaultDecision, { kind: 'throttle' | 'unavailable' }>;
  readonly timing: Timing;
  /** `performance.now()` when the request arrived, for the latency metrics. */
  readonly receivedAt: number;
  /** Called with the number of tokens each socket write carried. */
  readonly onTokens: (count: number) => void;
  /** Called once, when the stream is over for whatever reason. */
  readonly onEnd: (outcome: StreamOutcome) => void;
}

/**
 * When nothing paces the stream, one write carries at most this many tokens before yielding to the
 * other streams, so one fast client cannot starve a thousand paced ones.
 */
const MAX_TOKENS_PER_WRITE = 512;

/**
 * One InvokeModelWithResponseStream response. It wakes once per tick, writes every event due by
 * then in a single socket write, waits for `drain` when the client reads slowly, and stops at once
 * when the client goes away.
 */
export class StreamSession {
  private readonly stopAt: number;
  private sent = 0;
  private firstTokenAt: number | undefined;
  private firstByteLatency = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private over = false;

  constructor(private readonly o: StreamSessionOptions) {
    const planned = o.source.plan.outputTokens;
    this.stopAt = o.fault.kind === 'none' ? planned : Math.min(o.fault.afterTokens, planned);
  }

  /** Sends the response headers and schedules the first token. */
  start(): void {
    const { res, requestId, timing, receivedAt } = this.o;
    res.writeHead(200, {
      'content-type': 'application/vnd.amazon.eventstream',
      'x-amzn-requestid': requestId,
      'x-amzn-bedrock-content-type': 'application/json',
    });
    res.flushHeaders();
    res.on('close', () => this.finish('aborted'));
    this.schedule(receivedAt + timing.timeToFirstTokenMs - performance.now());
  }

  /** Ends the stream without a word to the client (the server is stopping). */
  destroy(): void {
    this.finish('stopped');
    this.o.res.destroy();
  }

  private schedule(delayMs: number): void {
    if (delayMs > 0) this.timer = setTimeout(this.tick, delayMs);
    else this.immediate = setImmediate(this.tick);
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    this.immediate = undefined;
    if (this.over) return;
    try {
      this.writeDue();
    } catch (err) {
      // A fault of the stand-in itself: drop the connection so the client fails now instead of waiting.
      console.error('bedrock stand-in: stream failed', err);
      this.finish('failed');
      this.o.res.destroy(err instanceof Error ? err : new Error(String(err)));
    }
  };

  private writeDue(): void {
    const { shapes, source, model, fault, timing, res, receivedAt } = this.o;
    const plan = source.plan;
    const now = performance.now();
    const frames: Uint8Array[] = [];
    if (this.firstTokenAt === undefined) {
      this.firstTokenAt = now;
      this.firstByteLatency = Math.round(now - receivedAt);
      for (const event of shapes.streamStart(plan, model)) frames.push(chunkFrame(event));
    }
    const paced = timing.tokensPerSecond > 0;
    const due = paced
      ? Math.min(this.stopAt, 1 + Math.floor(((now - this.firstTokenAt) * timing.tokensPerSecond) / 1000))
      : this.stopAt;
    const until = Math.min(due, this.sent + MAX_TOKENS_PER_WRITE);
    const before = this.sent;
    while (this.sent < until) {
      for (const event of shapes.streamToken(source.next(), this.sent, plan)) frames.push(chunkFrame(event));
      this.sent++;
    }
    let outcome: StreamOutcome | undefined;
    if (this.sent === this.stopAt) {
      if (fault.kind === 'none') {
        const metrics: InvocationMetrics = {
          inputTokenCount: plan.inputTokens,
          outputTokenCount: plan.outputTokens,
          invocationLatency: Math.round(now - receivedAt),
          firstByteLatency: this.firstByteLatency,
        };
        for (const event of shapes.streamEnd(plan, metrics)) frames.push(chunkFrame(event));
        outcome = 'completed';
      } else if (fault.kind === 'midStream') {
        frames.push(exceptionFrame(fault.exception, exceptionBody(fault.exception, this.sent)));
        outcome = 'midStreamFailure';
      } else {
        outcome = 'truncated';
      }
    }
    const drained = frames.length === 0 || res.write(Buffer.concat(frames));
    if (this.sent > before) this.o.onTokens(this.sent - before);
    if (outcome) {
      this.finish(outcome);
      res.end();
      return;
    }
    if (!drained) {
      res.once('drain', () => this.schedule(0));
      return;
    }
    if (!paced || this.sent < due) {
      this.schedule(0);
      return;
    }
    // Sleep a whole tick, or longer when the next token is further away than that.
    const nextDueAt = this.firstTokenAt + (this.sent * 1000) / timing.tokensPerSecond;
    this.schedule(Math.max(timing.tickMs, nextDueAt - now));
  }

  private finish(outcome: StreamOutcome): void {
    if (this.over) return;
    this.over = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.o.onEnd(outcome);
  }
}

/** What Bedrock puts in each exception frame; `ModelStreamErrorException` also names the model's error. */
function exceptionBody(type: StreamException, afterTokens: number): Record<string, unknown> {
  const message = `${EXCEPTION_MESSAGES[type]} (injected by the local Bedrock stand-in after ${afterTokens} tokens)`;
  return type === 'modelStreamErrorException'
    ? { message, originalStatusCode: 500, originalMessage: 'The model encountered an internal error.' }
    : { message };
}

const EXCEPTION_MESSAGES: Record<StreamException, string> = {
  modelStreamErrorException: 'An error occurred while streaming the response. Retry your request.',
  serviceUnavailableException: 'The service is temporarily unable to handle the request. Try again later.',
  throttlingException: 'Too many tokens, please wait before trying again.',
  internalServerException: 'An internal server error occurred. Retry your request.',
  modelTimeoutException: 'The request took too long to process. Processing time exceeded the model timeout.',
};
