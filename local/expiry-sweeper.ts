import {
  createExpirySweep,
  type ExpirySweepDeps,
  type ExpirySweepResult,
} from '../consumers/viewers/handler.js';
import { describe } from '../shared/errors.js';

/** A running expiry sweeper. */
export interface ExpirySweeper {
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

/**
 * The scheduled expiry sweep of the AWS stack (an EventBridge rule every minute), run by a timer:
 * every `intervalMs` (default 5 s) one run, never two at once. Its deps must reach the WebSocket
 * gateway's management API, which closes the sockets (and runs `$disconnect`).
 */
export function startExpirySweeper(
  options: ExpirySweepDeps & {
    readonly intervalMs?: number;
    /** Told what each run did (local stats, tests). */
    readonly onRun?: (result: ExpirySweepResult) => void;
  },
): ExpirySweeper {
  const sweep = createExpirySweep(options);
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() =>
      sweep().then(
        (result) => options.onRun?.(result),
        (err: unknown) => options.logger.error('expiry sweep failed', { error: describe(err) }),
      ),
    );
  }, options.intervalMs ?? 5_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
