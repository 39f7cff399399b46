/**
 * Command-line conventions shared by every program of the project (`npm start`, bench, chaos and
 * the CLI): `--help` prints the usage on stdout and exits 0; an unknown flag, a missing value or
 * a bad value prints what was wrong and the usage on stderr and exits 2, never a stack trace.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** A bad command line: reported with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Exit code of a bad command line (as in POSIX utilities). */
export const USAGE_EXIT_CODE = 2;

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `parseArgs` in strict mode, turning its errors (unknown option, missing value, unexpected
 * positional) into a `UsageError` with Node's message.
 */
export function parseCommandLine<const T extends Options>(
  args: readonly string[],
  options: T,
  allowPositionals = false,
) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals, strict: true });
  } catch (err) {
    if (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS_')) {
      throw new UsageError(err.message);
    }
    throw err;
  }
}

/**
 * Runs `parse`; on a `UsageError` writes the message and `usage` to stderr and exits 2. For
 * programs whose whole command line is read once at start-up.
 */
export function orExitWithUsage<T>(
  usage: string,
  parse: () => T,
  exit: (code: number) => never = process.exit,
): T {
  try {
    return parse();
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`${err.message}\n\n${usage}`);
    return exit(USAGE_EXIT_CODE);
  }
}

/** A whole number from a flag's text, within bounds; throws a `UsageError` naming the flag. */
export function wholeNumber(
  flag: string,
  text: string,
  { min = 0, max = Number.MAX_SAFE_INTEGER }: { min?: number; max?: number } = {},
): number {
  const value = /^-?\d+$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${flag} must be a whole number ${range}; got ${JSON.stringify(text)}`);
  }
  return value;
}

/** One of the allowed values; throws a `UsageError` listing them. */
export function oneOf<const T extends string>(flag: string, text: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(text)) return text as T;
  throw new UsageError(`${flag} must be one of ${allowed.join(', ')}; got ${JSON.stringify(text)}`);
}
