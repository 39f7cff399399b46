/** Wakes whoever waits on it; waits can be cancelled so idle waiters do not pile up. */
export class Signal {
  private readonly waiters = new Set<() => void>();

  wait(): { promise: Promise<void>; cancel(): void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => {
      wake = resolve;
    });
    this.waiters.add(wake);
    return { promise, cancel: () => this.waiters.delete(wake) };
  }

  notify(): void {
    const waiting = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiting) wake();
  }
}

/**
 * Resolves after `ms`, when `wake` is notified, or when `stopping` aborts — whichever is first —
 * and leaves no timer or listener behind. Callers check `stopping` afterwards.
 */
export function pause(ms: number, stopping: AbortSignal, wake?: Signal): Promise<void> {
  if (stopping.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const woken = wake?.wait();
    const done = () => {
      clearTimeout(timer);
      stopping.removeEventListener('abort', done);
      woken?.cancel();
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    stopping.addEventListener('abort', done, { once: true });
    woken?.promise.then(done);
  });
}

/** Thrown inside a lane when the mapping stops between invocations: the records stay unprocessed. */
export class StoppedError extends Error {
  constructor() {
    super('event source mapping stopped');
    this.name = 'StoppedError';
  }
}
