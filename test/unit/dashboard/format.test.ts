import { describe, expect, it } from 'vitest';
import { formatCost, formatDuration, NONE, shortModel } from '../../../dashboard/page/format.js';

describe('display formats', () => {
  it('shortens model ids for the table', () => {
    expect(shortModel('anthropic.claude-3-5-haiku-20241022-v1:0')).toBe('claude-3-5-haiku');
    expect(shortModel('us.anthropic.claude-3-5-haiku-20241022-v1:0')).toBe('claude-3-5-haiku');
    expect(shortModel('meta.llama3-1-8b-instruct-v1:0')).toBe('llama3-1-8b-instruct');
    expect(shortModel('amazon.nova-lite-v1:0')).toBe('nova-lite');
    expect(shortModel(undefined)).toBe(NONE);
  });

  it('writes durations and costs readably', () => {
    expect(formatDuration(250)).toBe('250 ms');
    expect(formatDuration(1_234)).toBe('1.23 s');
    expect(formatDuration(12_345)).toBe('12.3 s');
    expect(formatDuration(185_000)).toBe('3 m 05 s');
    expect(formatDuration(undefined)).toBe(NONE);
    expect(formatCost(0.000412)).toBe('$0.000412');
    expect(formatCost(0.0123)).toBe('$0.0123');
    expect(formatCost(1.5)).toBe('$1.50');
    expect(formatCost(undefined)).toBe(NONE);
  });
});
