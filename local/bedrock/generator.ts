import { createHash } from 'node:crypto';

/**
 * The stand-in's "model": a deterministic text generator. The text is a function of the foundation
 * model, the prompt text and the token limit only, so InvokeModel and the response stream agree and
 * any checker can learn the expected output of a request by sending it again.
 *
 * The token sequence depends on the model and the prompt; the limit only decides how many tokens are
 * produced. A larger limit therefore continues the same answer, as a model sampling greedily would.
 */

/** What the text depends on. */
export interface GenerationInput {
  /** The foundation model id (inference-profile prefixes and ARNs already removed). */
  readonly modelId: string;
  /** System and message text, in request order. */
  readonly promptText: string;
  /** The request's token limit (`max_tokens`, `max_gen_len`, `maxTokens`); at least 1. */
  readonly maxTokens: number;
}

/** Why a generation ended: the answer was complete, or the token limit cut it. */
export type FinishReason = 'complete' | 'limit';

/** The size of a generation, known before any token is produced. */
export interface GenerationPlan {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly finish: FinishReason;
}

/** A whole generation. */
export interface Generation extends GenerationPlan {
  readonly text: string;
}

/** Share of requests whose answer runs into the token limit. */
const LIMIT_SHARE = 0.2;
/** A complete answer uses at least this share of the limit. */
const MIN_SHARE = 0.6;

/**
 * The number of prompt tokens the stand-in reports: about one per four characters, as a rough
 * English tokenizer would count, and never 0.
 */
export function countInputTokens(promptText: string): number {
  let codePoints = 0;
  for (const _ of promptText) codePoints++;
  return Math.max(1, Math.ceil(codePoints / 4));
}

/** How long the answer to `input` is and why it ends, without producing it. */
export function planGeneration(input: GenerationInput): GenerationPlan {
  checkLimit(input.maxTokens);
  const inputTokens = countInputTokens(input.promptText);
  const draw = seededRandom(
    `length\u0000${input.modelId}\u0000${input.promptText}\u0000${input.maxTokens}`,
  )();
  if (input.maxTokens === 1 || draw < LIMIT_SHARE)
    return { inputTokens, outputTokens: input.maxTokens, finish: 'limit' };
  const share = MIN_SHARE + ((1 - MIN_SHARE) * (draw - LIMIT_SHARE)) / (1 - LIMIT_SHARE);
  const outputTokens = Math.min(input.maxTokens - 1, Math.max(1, Math.floor(input.maxTokens * share)));
  return { inputTokens, outputTokens, finish: 'complete' };
}

/** Produces the whole answer to `input` at once (InvokeModel). */
export function generate(input: GenerationInput): Generation {
  const source = new TokenSource(input);
  const parts: string[] = new Array(source.plan.outputTokens);
  for (let i = 0; i < parts.length; i++) parts[i] = source.next();
  return { ...source.plan, text: parts.join('') };
}

/**
 * Produces the answer one token at a time (the response stream), so a stream that is aborted early
 * never pays for the rest. Every token is whole code points; grapheme clusters (an emoji with a skin
 * tone, a flag) may be split across tokens, as a real tokenizer splits them.
 */
export class TokenSource {
  readonly plan: GenerationPlan;
  private produced = 0;
  private readonly random: () => number;
  private readonly pending: string[] = [];
  private wordsLeft: number;
  private sentenceStart = true;
  private lineStart = true;

  constructor(input: GenerationInput) {
    this.plan = planGeneration(input);
    this.random = seededRandom(`text\u0000${input.modelId}\u0000${input.promptText}`);
    this.wordsLeft = this.sentenceLength();
  }

  /** Tokens produced so far. */
  get count(): number {
    return this.produced;
  }

  /** Tokens still to come. */
  get remaining(): number {
    return this.plan.outputTokens - this.produced;
  }

  /** The next token; throws once all `plan.outputTokens` tokens have been produced. */
  next(): string {
    if (this.produced >= this.plan.outputTokens)
      throw new RangeError(`generation has only ${this.plan.outputTokens} tokens`);
    this.produced++;
    // A complete answer ends its last sentence; one cut by the limit stops wherever it is.
    if (this.produced === this.plan.outputTokens && this.plan.finish === 'complete' && this.produced > 1)
      return '.';
    if (this.pending.length === 0) this.refill();
    return this.pending.shift() as string;
  }

  /** Queues the tokens of the next unit of text: a word, a punctuation mark, an emoji, a CJK phrase. */
  private refill(): void {
    if (this.wordsLeft === 0) {
      this.pending.push(this.pick(SENTENCE_ENDS));
      if (this.random() < 0.2) {
        this.pending.push('\n\n');
        this.lineStart = true;
      }
      this.sentenceStart = true;
      this.wordsLeft = this.sentenceLength();
      return;
    }
    const roll = this.random();
    let unit: readonly string[];
    if (roll < 0.04) unit = this.pick(EMOJI);
    else if (roll < 0.08) unit = this.pick(CJK);
    else if (roll < 0.1) unit = [String(Math.floor(this.random() * 2100))];
    else if (roll < 0.15) unit = [this.pick(ACCENTED)];
    else unit = [this.pick(WORDS)];
    const head = unit[0] as string;
    this.pending.push((this.lineStart ? '' : ' ') + (this.sentenceStart ? capitalize(head) : head));
    for (let i = 1; i < unit.length; i++) this.pending.push(unit[i] as string);
    this.sentenceStart = false;
    this.lineStart = false;
    this.wordsLeft--;
    if (this.wordsLeft > 1 && this.random() < 0.07) this.pending.push(',');
  }

  private sentenceLength(): number {
    return 4 + Math.floor(this.random() * 14);
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)] as T;
  }
}

function capitalize(word: string): string {
  const first = word.codePointAt(0);
  if (first === undefined) return word;
  const head = String.fromCodePoint(first);
  return head.toUpperCase() + word.slice(head.length);
}

function checkLimit(maxTokens: number): void {
  if (!Number.isInteger(maxTokens) || maxTokens < 1)
    throw new RangeError(`token limit must be an integer >= 1, got ${String(maxTokens)}`);
}

/** sfc32 seeded from SHA-256 of `key`: fast, and the same sequence on every platform. */
export function seededRandom(key: string): () => number {
  const digest = createHash('sha256').update(key).digest();
  let a = digest.readUInt32LE(0);
  let b = digest.readUInt32LE(4);
  let c = digest.readUInt32LE(8);
  let d = digest.readUInt32LE(12);
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

const SENTENCE_ENDS = ['.', '.', '.', '.', '.', '!', '?'] as const;

const WORDS = [
  'the',
  'stream',
  'model',
  'record',
  'shard',
  'answer',
  'of',
  'and',
  'to',
  'in',
  'is',
  'that',
  'it',
  'for',
  'with',
  'as',
  'on',
  'by',
  'each',
  'every',
  'partition',
  'key',
  'order',
  'chunk',
  'viewer',
  'token',
  'text',
  'table',
  'item',
  'write',
  'read',
  'retry',
  'batch',
  'window',
  'latency',
  'throughput',
  'consumer',
  'producer',
  'event',
  'source',
  'mapping',
  'checkpoint',
  'sequence',
  'number',
  'delivers',
  'keeps',
  'arrives',
  'once',
  'twice',
  'never',
  'always',
  'quickly',
  'slowly',
  'carefully',
  'durable',
  'ordered',
  'exactly',
  'between',
  'through',
  'before',
  'after',
  'while',
  'because',
  'although',
  'however',
  'this',
  'those',
  'a',
  'an',
  'we',
  'they',
  'you',
  'can',
  'will',
  'should',
  'must',
  'may',
  'data',
  'system',
  'signal',
  'buffer',
  'queue',
  'limit',
  'quota',
  'region',
  'function',
  'handler',
  'request',
  'response',
  'generation',
  'attempt',
  'failure',
  'recovery',
  'replay',
  'duplicate',
  'idempotent',
  'condition',
] as const;

const ACCENTED = [
  'café',
  'naïve',
  'façade',
  'résumé',
  'Zürich',
  'São',
  'jalapeño',
  'über',
  'déjà',
  'Ångström',
  'Øresund',
  'Kraków',
  'Straße',
  'crème',
  'brûlée',
  'piñata',
  'coöperate',
  'Þórsmörk',
  'Ελλάδα',
  'Москва',
] as const;

/** Emoji, some split across tokens the way byte-pair tokenizers split them. */
const EMOJI: readonly (readonly string[])[] = [
  ['🚀'],
  ['🎉'],
  ['😀'],
  ['🧠'],
  ['✨'],
  ['☕'],
  ['👍', '🏽'],
  ['👩', '\u200d💻'],
  ['🇯', '🇵'],
  ['𝄞'],
];

/** CJK and Hangul phrases: no spaces inside, several tokens each. */
const CJK: readonly (readonly string[])[] = [
  ['数据', '流'],
  ['東京', 'の', '天気'],
  ['模型', '输出'],
  ['한국어'],
  ['こんにちは'],
  ['分片', '键'],
  ['𠜎', '𠜱'],
];
