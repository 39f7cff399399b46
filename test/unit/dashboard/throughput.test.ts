import { describe, expect, it } from 'vitest';
import { ThroughputMeter } from '../../../dashboard/page/throughput.js';

const T0 = 1_700_000_000_000;

describe('ThroughputMeter', () => {
  it('is all zeros with no activity', () => {
    const series = new ThroughputMeter(10).series(T0);
    expect(series.tokensPerSecond).toEqual(Array(10).fill(0));
    expect(series.inFlight).toEqual(Array(10).fill(0));
    expect(series.failuresPerMinute).toEqual(Array(10).fill(0));
  });

  it('estimates tokens per second from characters, smoothed over three seconds, at 4 characters a token', () => {
    const meter = new ThroughputMeter(5);
    meter.addText(1_200, T0);
    expect(meter.series(T0 + 2_000).tokensPerSecond).toEqual([0, 0, 100, 100, 100]);
  });

  it('calibrates characters per token from completed items', () => {
    const meter = new ThroughputMeter(1);
    meter.calibrate(600, 200);
    meter.calibrate(300, 100);
    expect(meter.charsPerToken).toBe(3);
    meter.addText(900, T0);
    expect(meter.series(T0).tokensPerSecond).toEqual([100]);
  });

  it('counts failures over the last minute', () => {
    const meter = new ThroughputMeter(3);
    meter.addFailure(T0);
    meter.addFailure(T0 + 500);
    expect(meter.series(T0 + 2_000).failuresPerMinute).toEqual([2, 2, 2]);
    // Second 59 still holds second 0 in its minute; second 60 no longer does.
    expect(meter.series(T0 + 60_500).failuresPerMinute).toEqual([2, 2, 0]);
  });

  it('carries the last in-flight sample forward, across the window’s start too', () => {
    const meter = new ThroughputMeter(4);
    meter.sampleInFlight(3, T0);
    meter.sampleInFlight(5, T0 + 2_000);
    expect(meter.series(T0 + 3_000).inFlight).toEqual([3, 3, 5, 5]);
    expect(meter.series(T0 + 100_000).inFlight).toEqual([5, 5, 5, 5]);
  });
});
