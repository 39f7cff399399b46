/** The three live series of the throughput chart, one value per second, oldest first. */
export interface ThroughputSeries {
  /** Estimated output tokens per second (a 3-second moving average). */
  readonly tokensPerSecond: number[];
  /** Items queued or streaming, as last sampled in each second. */
  readonly inFlight: number[];
  /** Failures in the 60 seconds up to each second. */
  readonly failuresPerMinute: number[];
}

/** Characters per token until completed items say otherwise (typical of English text). */
const DEFAULT_CHARS_PER_TOKEN = 4;
const SMOOTHING_SECONDS = 3;

/**
 * Live throughput from what the page sees. Text arrives as characters while token counts arrive
 * only when an item completes, so tokens per second are estimated from the characters, at the
 * characters-per-token ratio of the items completed so far. Pure: the caller passes the time.
 */
export class ThroughputMeter {
  readonly #windowSeconds: number;
  readonly #chars = new Map<number, number>();
  readonly #failures = new Map<number, number>();
  readonly #inFlight = new Map<number, number>();
  #calibrationChars = 0;
  #calibrationTokens = 0;

  /** @param windowSeconds seconds of history kept and charted. Default 120. */
  constructor(windowSeconds = 120) {
    this.#windowSeconds = windowSeconds;
  }

  /** Characters of new model output arrived at `now`. */
  addText(chars: number, now: number): void {
    if (chars > 0) bump(this.#chars, second(now), chars);
  }

  /** A completed item's text length and its token count, as measured by the model. */
  calibrate(chars: number, outputTokens: number): void {
    if (chars <= 0 || outputTokens <= 0) return;
    this.#calibrationChars += chars;
    this.#calibrationTokens += outputTokens;
  }

  /** Characters per token in use. */
  get charsPerToken(): number {
    return this.#calibrationTokens > 0
      ? this.#calibrationChars / this.#calibrationTokens
      : DEFAULT_CHARS_PER_TOKEN;
  }

  /** An item failed at `now`. */
  addFailure(now: number): void {
    bump(this.#failures, second(now), 1);
  }

  /** Items in flight at `now` (the last sample of a second counts for it). */
  sampleInFlight(count: number, now: number): void {
    this.#inFlight.set(second(now), count);
  }

  /** The series over the window ending at the second of `now`; drops older history. */
  series(now: number): ThroughputSeries {
    const last = second(now);
    const first = last - this.#windowSeconds + 1;
    this.#forget(first - 60);
    const perToken = this.charsPerToken;
    const tokensPerSecond: number[] = [];
    const inFlight: number[] = [];
    const failuresPerMinute: number[] = [];
    let flight = this.#latestInFlightBefore(first);
    for (let s = first; s <= last; s++) {
      let chars = 0;
      for (let k = s - SMOOTHING_SECONDS + 1; k <= s; k++) chars += this.#chars.get(k) ?? 0;
      tokensPerSecond.push(chars / perToken / SMOOTHING_SECONDS);
      flight = this.#inFlight.get(s) ?? flight;
      inFlight.push(flight);
      let failures = 0;
      for (let k = s - 59; k <= s; k++) failures += this.#failures.get(k) ?? 0;
      failuresPerMinute.push(failures);
    }
    return { tokensPerSecond, inFlight, failuresPerMinute };
  }

  #latestInFlightBefore(first: number): number {
    let latest = -Infinity;
    let value = 0;
    for (const [s, count] of this.#inFlight) {
      if (s < first && s > latest) {
        latest = s;
        value = count;
      }
    }
    return value;
  }

  #forget(before: number): void {
    for (const map of [this.#chars, this.#failures]) {
      for (const s of map.keys()) if (s < before) map.delete(s);
    }
    // One older in-flight sample is kept: it is the value at the start of the window.
    const older = [...this.#inFlight.keys()].filter((s) => s < before).sort((a, b) => a - b);
    for (const s of older.slice(0, -1)) this.#inFlight.delete(s);
  }
}

const second = (ms: number) => Math.floor(ms / 1000);

function bump(map: Map<number, number>, key: number, by: number): void {
  map.set(key, (map.get(key) ?? 0) + by);
}
