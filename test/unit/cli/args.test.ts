import { describe, expect, it } from 'vitest';
import { oneOf, orExitWithUsage, parseCommandLine, UsageError, wholeNumber } from '../../../cli/args.js';

const OPTIONS = { quick: { type: 'boolean' }, items: { type: 'string' } } as const;

describe('command-line conventions', () => {
  it('parses known flags and positionals when allowed', () => {
    expect(parseCommandLine(['--quick', '--items', '3'], OPTIONS).values).toEqual({
      quick: true,
      items: '3',
    });
    expect(parseCommandLine(['x', '--quick'], OPTIONS, true).positionals).toEqual(['x']);
  });

  it.each([
    [['--quik'], "Unknown option '--quik'"],
    [['--items'], "Option '--items <value>' argument missing"],
    [['stray'], "Unexpected argument 'stray'"],
    [['--quick=yes'], "Option '--quick' does not take an argument"],
  ])('turns %j into a UsageError with Node’s message', (args, message) => {
    expect(() => parseCommandLine(args, OPTIONS)).toThrow(UsageError);
    expect(() => parseCommandLine(args, OPTIONS)).toThrow(message);
  });

  it('reads whole numbers within bounds and names the flag otherwise', () => {
    expect(wholeNumber('--seed', '42')).toBe(42);
    expect(wholeNumber('--seed', '0')).toBe(0);
    expect(wholeNumber('--n', '100', { min: 1, max: 100 })).toBe(100);
    for (const bad of ['abc', '', '1.5', '3x', '1e3', 'NaN', '-1', '99999999999999999999']) {
      expect(() => wholeNumber('--seed', bad), bad).toThrow(UsageError);
    }
    expect(() => wholeNumber('--seed', 'abc')).toThrow('--seed must be a whole number >= 0; got "abc"');
    expect(() => wholeNumber('--n', '0', { min: 1, max: 9 })).toThrow(
      '--n must be a whole number from 1 to 9; got "0"',
    );
  });

  it('accepts one of the allowed values and lists them otherwise', () => {
    expect(oneOf('--status', 'failed', ['completed', 'failed'])).toBe('failed');
    expect(() => oneOf('--status', 'done', ['completed', 'failed'])).toThrow(
      '--status must be one of completed, failed; got "done"',
    );
  });

  it('exits 2 with the message and usage on stderr for a UsageError, and rethrows anything else', () => {
    const written: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => written.push(chunk) > 0) as typeof process.stderr.write;
    let code: number | undefined;
    try {
      expect(() =>
        orExitWithUsage(
          'usage: x\n',
          () => parseCommandLine(['--nope'], OPTIONS),
          (c) => {
            code = c;
            throw new Error('exited');
          },
        ),
      ).toThrow('exited');
    } finally {
      process.stderr.write = write;
    }
    expect(code).toBe(2);
    // Node's wording after the option's name differs between versions.
    expect(written.join('')).toMatch(/^Unknown option '--nope'.*\n\nusage: x\n$/s);
    expect(() =>
      orExitWithUsage('usage: x\n', () => {
        throw new TypeError('bug');
      }),
    ).toThrow(TypeError);
    expect(orExitWithUsage('usage: x\n', () => 7)).toBe(7);
  });
});
