/**
 * Polls `probe` until it returns a value other than undefined/false and returns that value;
 * fails, naming what it waited for, once `timeoutMs` has passed.
 */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { what: string; timeoutMs?: number; intervalMs?: number },
): Promise<T> {
  const { what, timeoutMs = 10_000, intervalMs = 25 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
