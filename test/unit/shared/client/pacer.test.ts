import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Pacer } from '../../../../shared/client/pacer.js';

describe('Pacer', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_800_000_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('sends a burst at once and the rest in order at the rate, never as many in 5 s as the server allows', async () => {
    const sent: Array<{ message: number; at: number }> = [];
    const pacer = new Pacer<number>({ perSecond: 12, burst: 24 }, (message) => {
      sent.push({ message, at: Date.now() });
      return true;
    });
    for (let i = 0; i < 600; i++) pacer.push(i);
    expect(sent).toHaveLength(24);

    await vi.advanceTimersByTimeAsync(60_000);

    expect(sent.map((s) => s.message)).toEqual([...Array(600).keys()]);
    // The server's default limit: 100 messages in a 5-s window. Any 5 s here holds at most 24 + 60.
    for (const { at } of sent)
      expect(sent.filter((s) => s.at >= at && s.at < at + 5_000).length).toBeLessThanOrEqual(85);
  });

  it('keeps what it could not deliver for the next flush, and clear returns what still waits', () => {
    let open = false;
    const sent: number[] = [];
    const pacer = new Pacer<number>({ perSecond: 10, burst: 5 }, (message) => {
      if (!open) return false;
      sent.push(message);
      return true;
    });
    pacer.push(1);
    pacer.push(2);
    expect(sent).toEqual([]);
    open = true;
    pacer.flush();
    expect(sent).toEqual([1, 2]);
    for (let i = 3; i <= 9; i++) pacer.push(i);
    expect(sent).toEqual([1, 2, 3, 4, 5]);
    expect(pacer.clear()).toEqual([6, 7, 8, 9]);
    expect(pacer.waiting).toBe(0);
  });
});
