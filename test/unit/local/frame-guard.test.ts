import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameSizeGuard } from '../../../local/websocket-gateway/frame-guard.js';

/** A masked client frame with a payload of `length` bytes, as RFC 6455 encodes it. */
function frame(length: number, opcode = 0x1): Buffer {
  const header: number[] = [0x80 | opcode];
  if (length < 126) header.push(0x80 | length);
  else if (length < 65536) header.push(0x80 | 126, length >> 8, length & 0xff);
  else {
    header.push(0x80 | 127, 0, 0, 0, 0);
    header.push((length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
  }
  return Buffer.concat([Buffer.from(header), Buffer.from([1, 2, 3, 4]), Buffer.alloc(length, 0x61)]);
}

/** Feeds `bytes` in chunks cut at `cuts`; returns the first report. */
function feed(guard: FrameSizeGuard, bytes: Buffer, cuts: number[]): number | undefined {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let last = 0;
  for (const point of [...points, bytes.length]) {
    const found = guard.feed(bytes.subarray(last, point));
    if (found !== undefined) return found;
    last = point;
  }
  return undefined;
}

describe('FrameSizeGuard', () => {
  it('reports nothing for frames at or under the limit, however the bytes are cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (lengths, cuts) => {
          const bytes = Buffer.concat(lengths.map((n) => frame(n)));
          expect(feed(new FrameSizeGuard(300), bytes, cuts)).toBeUndefined();
        },
      ),
    );
  });

  it('reports the first frame over the limit with its length, from its header', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 200 }), { maxLength: 4 }),
        fc.integer({ min: 201, max: 70_000 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (before, oversized, cuts) => {
          const bytes = Buffer.concat([...before.map((n) => frame(n)), frame(oversized)]);
          expect(feed(new FrameSizeGuard(200), bytes, cuts)).toBe(oversized);
        },
      ),
    );
  });

  it('reads 16- and 64-bit lengths', () => {
    expect(new FrameSizeGuard(32_768).feed(frame(32_769).subarray(0, 8))).toBe(32_769);
    expect(new FrameSizeGuard(32_768).feed(frame(70_000).subarray(0, 14))).toBe(70_000);
  });
});
