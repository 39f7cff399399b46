import {
  type ApiGatewayManagementApiClient,
  PostToConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { classifyAwsError, describe } from '../../shared/errors.js';
import { backoffDelayMs, sleep } from '../../shared/retry.js';

/**
 * How hard one delivery (the frames for one connection) is tried. A delivery never takes longer
 * than `deadlineMs` in all, so with a concurrency of C a dead or slow connection holds one of C
 * slots for at most that long and never the others.
 */
export interface PostPolicy {
  /** Attempts per frame, the first included, for throttling (429) and transient (5xx, network) failures. */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Time for the whole delivery, retries and backoff included. */
  readonly deadlineMs: number;
}

/** At most ~3 s per delivery: 4 attempts per frame, 50–400 ms backoff caps. */
export const DEFAULT_POST_POLICY: PostPolicy = {
  maxAttempts: 4,
  baseDelayMs: 50,
  maxDelayMs: 400,
  deadlineMs: 3_000,
};

/** How a delivery ended: every frame sent; the connection is gone (410); or it was given up. */
export type PostOutcome = 'sent' | 'gone' | 'failed';

/** Counters a delivery reports to (metrics, stats). */
export interface PostObserver {
  /** One `PostToConnection` call was made (retries count again). */
  onCall?(): void;
  /** A throttled or transient failure will be retried after `delayMs`. */
  onRetry?(connectionId: string, kind: string, delayMs: number): void;
  /** The delivery was given up. */
  onFailure?(connectionId: string, err: unknown): void;
}

const encoder = new TextEncoder();

/**
 * Sends `frames` to one connection in order with `PostToConnection`. Stops at the first frame
 * that cannot be sent: a 410 (gone) is never retried; throttling and transient failures are
 * retried with full-jitter backoff within `policy`; anything else (403, 413, a deadline) gives up
 * on this connection for this delivery. `budget`, when given, aborts the delivery like its
 * deadline (the fan-out's time budget for the whole batch). Never throws.
 */
export async function postFrames(
  client: ApiGatewayManagementApiClient,
  connectionId: string,
  frames: readonly string[],
  policy: PostPolicy = DEFAULT_POST_POLICY,
  observer: PostObserver = {},
  budget?: AbortSignal,
): Promise<PostOutcome> {
  // The delivery's own deadline, and the batch's budget when the fan-out gives one.
  const deadline = budget
    ? AbortSignal.any([AbortSignal.timeout(policy.deadlineMs), budget])
    : AbortSignal.timeout(policy.deadlineMs);
  for (const frame of frames) {
    const data = encoder.encode(frame);
    for (let attempt = 1; ; attempt++) {
      try {
        observer.onCall?.();
        await client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: data }), {
          abortSignal: deadline,
        });
        break;
      } catch (err) {
        const kind = classifyAwsError(err);
        if (kind === 'gone') return 'gone';
        const retryable = kind === 'throttling' || kind === 'transient';
        if (!retryable || attempt >= policy.maxAttempts || deadline.aborted) {
          observer.onFailure?.(connectionId, err);
          return 'failed';
        }
        const delayMs = backoffDelayMs(attempt, policy);
        observer.onRetry?.(connectionId, kind, delayMs);
        try {
          await sleep(delayMs, deadline);
        } catch {
          observer.onFailure?.(
            connectionId,
            new Error(`deadline of ${policy.deadlineMs} ms or the batch budget passed: ${describe(err)}`),
          );
          return 'failed';
        }
      }
    }
  }
  return 'sent';
}
