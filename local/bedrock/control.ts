import type { IncomingMessage, ServerResponse } from 'node:http';
import { ValidationError } from '../../shared/errors.js';
import { type Faults, parseFaults } from './faults.js';
import { AwsErrorResponse, readBody, sendJson } from './http.js';
import { parseQuotas, type Quotas, type QuotasReport } from './quotas.js';
import { parseTiming, type Timing, type TimingUpdate } from './timing.js';

/** Counters since start (or the last reset). */
export interface BedrockStandInStats {
  /** Model requests of either operation, including refused ones. */
  requests: number;
  /** InvokeModel requests answered. */
  invocations: number;
  /** Response streams started (HTTP 200). */
  streams: number;
  /** Response streams still open. */
  activeStreams: number;
  /** Streams that ended with their final event. */
  completed: number;
  /** Tokens written to response streams. */
  tokensSent: number;
  /** Requests refused with `ValidationException` (bad model id or body). */
  rejected: number;
  /** Stream requests answered with HTTP 429, by an injected `throttle` fault or by a quota. */
  throttled: number;
  /** Stream requests answered with HTTP 503 by an injected `unavailable` fault. */
  unavailable: number;
  /** Of those, the ones refused by a quota (`/_control/quotas`). */
  quotaThrottled: number;
  /** Streams ended by an exception frame. */
  midStreamFailures: number;
  /** Streams cut off without their final events. */
  truncated: number;
  /** Streams whose client went away before the end. */
  aborted: number;
}

/** What the control endpoint reads and changes. */
export interface ControlTarget {
  faults(): Faults;
  setFaults(faults: Faults): void;
  quotas(): QuotasReport;
  setQuotas(quotas: Quotas): void;
  timing(): Timing;
  setTiming(timing: TimingUpdate): void;
  stats(): BedrockStandInStats;
  resetStats(): void;
}

/** The routes of the control endpoint, for its 404 message. */
const ROUTES =
  'GET|PUT|DELETE /_control/faults, GET|PUT|DELETE /_control/quotas, GET|PUT /_control/timing, ' +
  'GET|DELETE /_control/stats';

/**
 * Serves `/_control/*`, the stand-in's own JSON API for tests and operators:
 * `GET /_control/faults` · `PUT /_control/faults` (replaces all faults; `{}` clears them) ·
 * `DELETE /_control/faults` · `GET /_control/quotas` (limits, and per model the counters since
 * the last `PUT` and the last 60 s) · `PUT /_control/quotas` (replaces all quotas and zeroes their
 * counters; `{}` removes all) · `DELETE /_control/quotas` · `GET /_control/timing` · `PUT /_control/timing` (changes the named
 * fields) · `GET /_control/stats` · `DELETE /_control/stats` (zeroes the counters).
 * Bad input answers 400 with `{ message }` naming the field.
 */
export async function handleControl(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  target: ControlTarget,
): Promise<void> {
  const route = `${req.method ?? 'GET'} ${path}`;
  try {
    switch (route) {
      case 'GET /_control/faults':
        return sendJson(res, 200, target.faults());
      case 'PUT /_control/faults':
        target.setFaults(parseFaults(await jsonBody(req)));
        return sendJson(res, 200, target.faults());
      case 'DELETE /_control/faults':
        target.setFaults({});
        return sendJson(res, 200, target.faults());
      case 'GET /_control/quotas':
        return sendJson(res, 200, target.quotas());
      case 'PUT /_control/quotas':
        target.setQuotas(parseQuotas(await jsonBody(req)));
        return sendJson(res, 200, target.quotas());
      case 'DELETE /_control/quotas':
        target.setQuotas({});
        return sendJson(res, 200, target.quotas());
      case 'GET /_control/timing':
        return sendJson(res, 200, target.timing());
      case 'PUT /_control/timing':
        target.setTiming(parseTiming(await jsonBody(req)));
        return sendJson(res, 200, target.timing());
      case 'GET /_control/stats':
        return sendJson(res, 200, target.stats());
      case 'DELETE /_control/stats':
        target.resetStats();
        return sendJson(res, 200, target.stats());
      default:
        return sendJson(res, 404, { message: `no control route ${route}; routes: ${ROUTES}` });
    }
  } catch (err) {
    if (err instanceof ValidationError || err instanceof AwsErrorResponse)
      return sendJson(res, 400, { message: err.message });
    throw err;
  }
}

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const raw = (await readBody(req)).toString('utf8');
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new ValidationError(
      `control request body must be JSON, got ${JSON.stringify(raw.slice(0, 200))} (${err instanceof Error ? err.message : String(err)})`,
    );
  }
}
