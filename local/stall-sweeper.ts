import { createSweeper, type SweeperDeps } from '../consumers/sweeper/handler.js';
import { describe } from '../shared/errors.js';

/** A running stall sweeper. */
export interface StallSweeper {
  /** Stops the timer and waits for a sweep in progress. */
  stop(): Promise<void>;
}

/**
 * The scheduled sweeper function of the AWS stack (an EventBridge rule every few minutes), run by
 * a timer: every `intervalMs` (default 60 s) one sweep, never two at once.
 */
export function startStallSweeper(options: SweeperDeps & { readonly intervalMs?: number }): StallSweeper {
  const sweep = createSweeper({
    ...options,
    stallLimitMs: options.stallLimitMs ?? options.config.delivery.stallLimitSeconds * 1000,
  });
  let running: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(() =>
      sweep().catch((err: unknown) => options.logger.error('stall sweep failed', { error: describe(err) })),
    );
  }, options.intervalMs ?? 60_000);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
