/**
 * Watches the raw bytes a client sends and reports the first frame whose payload is larger than
 * a limit, from its header alone (before the payload arrives). `ws` enforces one limit for a
 * whole message and its frames alike; API Gateway has two (32 KB frames, 128 KB messages), so the
 * gateway gives `ws` the message limit and this guard the frame limit.
 *
 * Client frames (RFC 6455 §5.2): 2 header bytes, then a 16- or 64-bit extended length when the
 * 7-bit length is 126 or 127, then a 4-byte mask key when the mask bit is set, then the payload.
 */
export class FrameSizeGuard {
  readonly #limit: number;
  #header: number[] = [];
  #skip = 0;

  constructor(limitBytes: number) {
    this.#limit = limitBytes;
  }

  /** Feeds received bytes; returns the payload length of the first oversized frame, if any. */
  feed(chunk: Uint8Array): number | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, chunk.length - i);
        this.#skip -= take;
        i += take;
        continue;
      }
      this.#header.push(chunk[i] ?? 0);
      i++;
      const length = this.#payloadLength();
      if (length === undefined) continue;
      this.#header = [];
      if (length > this.#limit) return length;
      this.#skip = length;
    }
    return undefined;
  }

  /** The payload length once the whole header is in, else undefined. */
  #payloadLength(): number | undefined {
    const h = this.#header;
    if (h.length < 2) return undefined;
    const second = h[1] ?? 0;
    const masked = (second & 0x80) !== 0;
    const short = second & 0x7f;
    const extended = short === 126 ? 2 : short === 127 ? 8 : 0;
    if (h.length < 2 + extended + (masked ? 4 : 0)) return undefined;
    if (extended === 0) return short;
    let length = 0;
    for (let k = 0; k < extended; k++) length = length * 256 + (h[2 + k] ?? 0);
    return length;
  }
}
