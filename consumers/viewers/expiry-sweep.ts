/**
 * The expiry sweep: closes WebSocket connections whose token expired, whether or not they send or
 * receive anything. The routes refuse an expired connection's messages and the fan-out closes one
 * a batch would have reached; a connection that does neither would otherwise stay open until API
 * Gateway's idle timeout (10 min) or, while it keeps sending, its 2-hour limit.
 *
 * One run: the connections whose token expired are found through the sparse `byExpiry` index (one
 * Query per minute bucket, see `connection-store.ts`), at most `maxConnections` of them; each is
 * closed through the management API (`DeleteConnection`; 410 means already gone) and its rows are
 * removed. A close that fails for good leaves the rows for the next run.
 */
import {
  type ApiGatewayManagementApiClient,
  DeleteConnectionCommand,
} from '@aws-sdk/client-apigatewaymanagementapi';
import { defaultIfEmpty, from, lastValueFrom, mergeMap } from 'rxjs';
import type { AwsClients } from '../../shared/aws-clients.js';
import type { Config } from '../../shared/config.js';
import { classifyAwsError, describe } from '../../shared/errors.js';
import { withRetry } from '../../shared/retry.js';
import { type Logger, type Metrics, MetricUnit } from '../../shared/telemetry.js';
import { type ConnectionStore, createConnectionStore } from './connection-store.js';

/** Connections closed per run at most; the next run takes the rest. */
export const DEFAULT_MAX_CONNECTIONS_PER_SWEEP = 500;
/** Minutes of expiry buckets each run looks back over (a run that failed is made up by the next ones). */
export const DEFAULT_LOOKBACK_MINUTES = 15;
/** Closes in flight at once. */
const CONCURRENCY = 8;
/** No close starts with less time than this left (one close, with its retries and row deletes). */
const MARGIN_MS = 2_000;
/** `DeleteConnection`: throttling and transient failures only, jittered backoff, bounded. */
const CLOSE_RETRY = { maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 1_000 } as const;

/** What the sweep needs; the management endpoint is the stage's (`WEBSOCKET_MANAGEMENT_ENDPOINT`). */
export interface ExpirySweepDeps {
  readonly config: Config;
  readonly clients: Pick<AwsClients, 'dynamo' | 'management'>;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Default `DEFAULT_MAX_CONNECTIONS_PER_SWEEP`. */
  readonly maxConnections?: number;
  /** Default `DEFAULT_LOOKBACK_MINUTES`. */
  readonly lookbackMinutes?: number;
  /** Epoch ms; default `Date.now`. */
  readonly now?: () => number;
}

/** What one run did. */
export interface ExpirySweepResult {
  /** Expired connections found (at most the per-run maximum). */
  readonly found: number;
  /** Closed by this run. */
  readonly closed: number;
  /** Already gone (410): only their rows were removed. */
  readonly gone: number;
  /** Not closed (a failure that is not 410, or no time left): left for the next run. */
  readonly left: number;
}

type CloseOutcome = 'closed' | 'gone' | 'left';

/**
 * Builds one run of the sweep (the scheduled function's core, and the local stack's timer). The run
 * takes the time the invocation has left, when known, and starts no close in its last seconds.
 */
export function createExpirySweep(
  deps: ExpirySweepDeps,
): (remainingMs?: number) => Promise<ExpirySweepResult> {
  const { config, logger, metrics } = deps;
  const now = deps.now ?? Date.now;
  const store = createConnectionStore({
    dynamo: deps.clients.dynamo,
    table: config.tables.connections,
    ttlSeconds: config.delivery.connectionTtlSeconds,
    now,
  });
  const count = (name: string, value: number) => metrics.addMetric(name, MetricUnit.Count, value);

  return async (remainingMs) => {
    const deadline = remainingMs === undefined ? Number.POSITIVE_INFINITY : now() + remainingMs - MARGIN_MS;
    const management = deps.clients.management();
    const ids = await store.expiredConnections({
      nowSeconds: Math.floor(now() / 1000),
      lookbackMinutes: deps.lookbackMinutes ?? DEFAULT_LOOKBACK_MINUTES,
      limit: deps.maxConnections ?? DEFAULT_MAX_CONNECTIONS_PER_SWEEP,
    });
    const outcomes: CloseOutcome[] = [];
    await lastValueFrom(
      from(ids).pipe(
        mergeMap(async (id) => {
          outcomes.push(now() >= deadline ? 'left' : await closeExpired(management, store, id, logger));
        }, CONCURRENCY),
        defaultIfEmpty(undefined),
      ),
    );
    const result = tally(ids.length, outcomes);
    count('ExpiredConnectionsClosed', result.closed + result.gone);
    count('ExpiredConnectionsLeft', result.left);
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    if (result.found > 0) logger.info('expired connections swept', { ...result });
    return result;
  };
}

/** Counts the outcomes of one run. */
function tally(found: number, outcomes: readonly CloseOutcome[]): ExpirySweepResult {
  const of = (outcome: CloseOutcome) => outcomes.filter((o) => o === outcome).length;
  return { found, closed: of('closed'), gone: of('gone'), left: of('left') };
}

/**
 * Closes one connection (`DeleteConnection`; API Gateway then runs `$disconnect`) and removes its
 * rows. Throttling and transient failures are retried (the management client's own retries are
 * off, so this is the one retry layer); a 410 means it is already gone; anything else leaves the
 * connection and its rows for the next run. Never throws.
 */
async function closeExpired(
  management: ApiGatewayManagementApiClient,
  store: ConnectionStore,
  connectionId: string,
  logger: Logger,
): Promise<CloseOutcome> {
  let outcome: CloseOutcome = 'closed';
  try {
    await withRetry(() => management.send(new DeleteConnectionCommand({ ConnectionId: connectionId })), {
      what: `DeleteConnection ${connectionId}`,
      ...CLOSE_RETRY,
    });
  } catch (err) {
    if (classifyAwsError(err) !== 'gone') {
      logger.warn('closing an expired connection failed; the next sweep tries again', {
        connectionId,
        error: describe(err),
      });
      return 'left';
    }
    outcome = 'gone';
  }
  try {
    await store.removeConnection(connectionId);
  } catch (err) {
    // Closed, but rows are left: the next run finds the connection row again (a 410 then).
    logger.warn('removing the rows of an expired connection failed', { connectionId, error: describe(err) });
  }
  return outcome;
}
