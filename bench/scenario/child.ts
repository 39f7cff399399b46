/**
 * Runs one scenario (or the capacity probes) in a process of its own, so each gets fresh
 * emulators and its own memory figures. Started by `runInChild`; talks over the IPC channel.
 */
import { type CapacitySpec, measureCapacity } from '../capacity.js';
import { runScenario, type ScenarioSpec } from './run-scenario.js';
import { useLocalProcessEnvironment } from '../../local/process-env.js';

export type ChildRequest =
  | { readonly kind: 'scenario'; readonly spec: ScenarioSpec }
  | { readonly kind: 'capacity'; readonly spec: CapacitySpec };

export type ChildMessage =
  | { readonly type: 'progress'; readonly line: string }
  | { readonly type: 'result'; readonly result: unknown }
  | { readonly type: 'error'; readonly message: string };

useLocalProcessEnvironment('CRITICAL');

const send = (message: ChildMessage) =>
  new Promise<void>((resolve) => {
    if (process.send) process.send(message, () => resolve());
    else resolve();
  });

// A parent that went away (Ctrl-C, a crash) leaves nobody to report to.
process.once('disconnect', () => process.exit(1));

process.once('message', async (request: ChildRequest) => {
  const progress = (line: string) => void send({ type: 'progress', line });
  try {
    const result =
      request.kind === 'scenario'
        ? await runScenario(request.spec, progress)
        : await measureCapacity(request.spec, progress);
    await send({ type: 'result', result });
  } catch (err) {
    await send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
  // Sockets and timers of a stopped stack may linger; the figures are sent.
  process.exit(0);
});
