import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { endsWithHighSurrogate, splitUtf8, utf8Length } from '../../../shared/utf8.js';

describe('splitUtf8', () => {
  it('keeps the whole text when it fits', () => {
    expect(splitUtf8('hello', 5)).toEqual(['hello', '']);
  });

  it('cuts at the last code point that fits, counting UTF-8 bytes', () => {
    // a=1, é=2, €=3, 😀=4 bytes
    expect(splitUtf8('aé€😀', 6)).toEqual(['aé€', '😀']);
    expect(splitUtf8('aé€😀', 9)).toEqual(['aé€', '😀']);
    expect(splitUtf8('aé€😀', 10)).toEqual(['aé€😀', '']);
  });

  it('never separates the halves of a surrogate pair', () => {
    expect(splitUtf8('😀😀', 5)).toEqual(['😀', '😀']);
    expect(splitUtf8('😀', 3)).toEqual(['', '😀']);
  });

  it('counts a lone surrogate as the 3 bytes it encodes to', () => {
    expect(splitUtf8('\uD83Dx', 3)).toEqual(['\uD83D', 'x']);
    expect(utf8Length('\uD83D')).toBe(3);
  });

  it('rejects a negative size', () => {
    expect(() => splitUtf8('x', -1)).toThrow(/maxBytes must be >= 0, got -1/);
  });

  it('always returns a head within the limit that, with the rest, is the text, cut at a code point', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.integer({ min: 4, max: 64 }),
        (text, max) => {
          const [head, rest] = splitUtf8(text, max);
          expect(head + rest).toBe(text);
          expect(utf8Length(head)).toBeLessThanOrEqual(max);
          expect(endsWithHighSurrogate(head) && /^[\uDC00-\uDFFF]/.test(rest)).toBe(false);
          // Longest prefix: adding the next code point would exceed the limit.
          const next = String.fromCodePoint(rest.codePointAt(0) ?? 0);
          if (rest.length > 0) expect(utf8Length(head + next)).toBeGreaterThan(max);
        },
      ),
    );
  });
});

describe('endsWithHighSurrogate', () => {
  it('is true only for text whose last unit is a high surrogate', () => {
    expect(endsWithHighSurrogate('a\uD83D')).toBe(true);
    expect(endsWithHighSurrogate('a😀')).toBe(false);
    expect(endsWithHighSurrogate('')).toBe(false);
  });
});
