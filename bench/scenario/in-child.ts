import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildMessage, ChildRequest } from './child.js';

/** Children still running, so a Ctrl-C can end them. */
export const runningChildren = new Set<ReturnType<typeof fork>>();

/**
 * Runs `request` in a fresh Node process (with tsx), passing its progress lines on, and resolves
 * with its result. Kills the child and rejects after `timeoutMs`.
 */
export function runInChild<T>(
  request: ChildRequest,
  onProgress: (line: string) => void,
  timeoutMs: number,
): Promise<T> {
  const child = fork(fileURLToPath(new URL('./child.ts', import.meta.url)), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  runningChildren.add(child);
  let output = '';
  const keep = (data: Buffer) => {
    output = (output + data.toString('utf8')).slice(-4_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      runningChildren.delete(child);
      fn();
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(() => reject(new Error(`${describe(request)} did not finish within ${timeoutMs / 1000} s`)));
    }, timeoutMs);
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'progress') onProgress(message.line);
      else if (message.type === 'result') finish(() => resolve(message.result as T));
      else finish(() => reject(new Error(`${describe(request)} failed: ${message.message}`)));
    });
    child.on('close', (code, signal) =>
      finish(() =>
        reject(
          new Error(`${describe(request)} exited (${signal ?? code}) without a result; output:\n${output}`),
        ),
      ),
    );
    child.send(request);
  });
}

function describe(request: ChildRequest): string {
  return request.kind === 'scenario'
    ? `scenario ${request.spec.flow}/${request.spec.name}`
    : 'the capacity probe';
}
