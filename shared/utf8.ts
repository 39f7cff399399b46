/**
 * UTF-8 sizes and code-point-safe splitting of JavaScript strings, without encoding them.
 * A lone surrogate counts as 3 bytes, as `TextEncoder` / `Buffer` encode it (U+FFFD).
 */

const isHigh = (unit: number) => unit >= 0xd800 && unit <= 0xdbff;
const isLow = (unit: number) => unit >= 0xdc00 && unit <= 0xdfff;

/** UTF-8 size of `text` in bytes. */
export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Splits `text` into a head of at most `maxBytes` UTF-8 bytes and the rest, never between the
 * two halves of a surrogate pair. The head is the longest such prefix; it is empty only when the
 * first code point alone is larger than `maxBytes` (then nothing fits: callers pass ≥ 4).
 */
export function splitUtf8(text: string, maxBytes: number): [head: string, rest: string] {
  if (!(maxBytes >= 0)) throw new RangeError(`maxBytes must be >= 0, got ${maxBytes}`);
  // Fast path: every code unit is at most 3 bytes, so a short enough string fits whole.
  if (text.length * 3 <= maxBytes) return [text, ''];
  let bytes = 0;
  let i = 0;
  while (i < text.length) {
    const unit = text.charCodeAt(i);
    let size: number;
    let units = 1;
    if (unit < 0x80) size = 1;
    else if (unit < 0x800) size = 2;
    else if (isHigh(unit) && i + 1 < text.length && isLow(text.charCodeAt(i + 1))) {
      size = 4;
      units = 2;
    } else size = 3;
    if (bytes + size > maxBytes) break;
    bytes += size;
    i += units;
  }
  return [text.slice(0, i), text.slice(i)];
}

/**
 * True when `text` ends with a high surrogate: its low half may still be on its way, so the last
 * code unit must not be sent on its own yet.
 */
export function endsWithHighSurrogate(text: string): boolean {
  return text.length > 0 && isHigh(text.charCodeAt(text.length - 1));
}
