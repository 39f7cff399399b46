/** Chunk records as the producer writes them, for tests. */
import type { ChunkRecord, ErrorInfo, Usage } from '../../shared/contracts/chunk-record.js';

export const TEST_USAGE: Usage = {
  inputTokens: 12,
  outputTokens: 34,
  firstByteLatencyMs: 5,
  invocationLatencyMs: 50,
};

/** Splits text into `count` pieces at code-point boundaries (never inside a surrogate pair). */
export function splitText(text: string, count: number): string[] {
  const points = [...text];
  const size = Math.max(1, Math.ceil(points.length / Math.max(1, count)));
  const pieces: string[] = [];
  for (let i = 0; i < points.length; i += size) pieces.push(points.slice(i, i + size).join(''));
  return pieces;
}

export type Ending =
  | { readonly type: 'end'; readonly usage?: Usage; readonly costUsd?: number }
  | { readonly type: 'error'; readonly final: boolean; readonly error?: ErrorInfo }
  | { readonly type: 'none' };

/** The records of one attempt: a delta per piece (seq from 0), then its ending. */
export function attemptRecords(
  itemId: string,
  attempt: number,
  pieces: readonly string[],
  ending: Ending = { type: 'end' },
): ChunkRecord[] {
  const records: ChunkRecord[] = pieces.map((text, seq) => ({
    v: 1,
    itemId,
    attempt,
    seq,
    type: 'delta',
    text,
  }));
  const seq = pieces.length;
  if (ending.type === 'end') {
    records.push({
      v: 1,
      itemId,
      attempt,
      seq,
      type: 'end',
      usage: ending.usage ?? TEST_USAGE,
      ...(ending.costUsd !== undefined ? { costUsd: ending.costUsd } : {}),
    });
  } else if (ending.type === 'error') {
    records.push({
      v: 1,
      itemId,
      attempt,
      seq,
      type: 'error',
      final: ending.final,
      error: ending.error ?? {
        code: 'model_stream_error',
        message: 'the model stream broke',
        retryable: !ending.final,
      },
    });
  }
  return records;
}

/** Deterministic text of `bytes` UTF-8 bytes or a little more, mixing ASCII, CJK and emoji. */
export function longText(bytes: number): string {
  const words = [
    'stream',
    'ordered',
    'chunk',
    'exactly',
    'once',
    '流れ',
    '順序',
    '😀',
    'naïve',
    '🚀🌍',
    'façade',
    '数据',
  ];
  const pieces: string[] = [];
  for (let i = 0, size = 0; size < bytes; i++) {
    const word = `${words[(i * 7) % words.length]} `;
    pieces.push(word);
    size += Buffer.byteLength(word);
  }
  return pieces.join('');
}
