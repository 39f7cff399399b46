import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread on a TypeScript module (`entry`, a file URL). The worker registers tsx
 * itself: a worker does not inherit the loader of the thread that starts it.
 */
export function startTsWorker(entry: URL, workerData: unknown): Worker {
  const tsx = import.meta.resolve('tsx/esm/api');
  return new Worker(
    `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry.href)}); });`,
    { eval: true, workerData },
  );
}
