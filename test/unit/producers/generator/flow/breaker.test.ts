import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../../../../producers/generator/flow/breaker.js';

function breaker() {
  const clock = { t: 0 };
  const b = new CircuitBreaker({
    failureThreshold: 3,
    coolDownMs: 1_000,
    maxCoolDownMs: 4_000,
    probeTimeoutMs: 10_000,
    now: () => clock.t,
  });
  return { b, clock };
}

describe('CircuitBreaker', () => {
  it('closed → open after a run of failures, and a success in between resets the run', () => {
    const { b } = breaker();
    b.failure();
    b.failure();
    b.success();
    b.failure();
    expect(b.failure()).toBe(false);
    expect(b.current()).toBe('closed');
    expect(b.failure()).toBe(true);
    expect(b.current()).toBe('open');
    expect(b.tryPass()).toEqual({ pass: false, retryInMs: 1_000 });
  });

  it('open → half-open after the cool-down, letting exactly one probe through', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    clock.t = 1_000;
    expect(b.current()).toBe('half-open');
    expect(b.tryPass()).toEqual({ pass: true, probe: 1 });
    expect(b.tryPass().pass).toBe(false);
  });

  it('half-open: a probe released without a verdict lets the next request probe, a stale release does not', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    clock.t = 1_000;
    const first = b.tryPass();
    expect(first).toEqual({ pass: true, probe: 1 });
    b.release(1);
    expect(b.tryPass()).toEqual({ pass: true, probe: 2 });
    b.release(1);
    expect(b.tryPass()).toEqual({ pass: false, retryInMs: 10_000 });
    expect(b.current()).toBe('half-open');
  });

  it('half-open: a probe that never reports holds the breaker only until its timeout', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    clock.t = 1_000;
    expect(b.tryPass().pass).toBe(true);
    clock.t = 10_999;
    expect(b.tryPass()).toEqual({ pass: false, retryInMs: 1 });
    clock.t = 11_000;
    expect(b.tryPass()).toEqual({ pass: true, probe: 2 });
  });

  it('half-open → closed when the probe succeeds', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    clock.t = 1_000;
    b.tryPass();
    b.success();
    expect(b.current()).toBe('closed');
    expect(b.tryPass()).toEqual({ pass: true });
  });

  it('half-open → open for twice as long when the probe fails, up to the maximum', () => {
    const { b, clock } = breaker();
    for (let i = 0; i < 3; i++) b.failure();
    for (const coolDown of [2_000, 4_000, 4_000]) {
      clock.t = b.reopensAt;
      expect(b.tryPass().pass).toBe(true);
      expect(b.failure()).toBe(true);
      expect(b.reopensAt - clock.t).toBe(coolDown);
    }
  });

  it('opens when another instance opened the fleet breaker', () => {
    const { b, clock } = breaker();
    b.openUntil(5_000);
    expect(b.current()).toBe('open');
    clock.t = 5_000;
    expect(b.current()).toBe('half-open');
  });
});
