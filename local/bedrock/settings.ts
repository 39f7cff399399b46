import type { z } from 'zod';
import { ConfigError } from '../../shared/errors.js';

/** A zod error as `path: message; ...`, naming `whole` when the issue is about the value itself. */
export function describeIssues(error: z.ZodError, whole: string): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.map(String).join('.') : whole}: ${issue.message}`)
    .join('; ');
}

/**
 * Reads a JSON setting from the environment variable `name` and validates it with `parse`;
 * undefined when unset or empty. Throws a `ConfigError` naming the variable and the bad field.
 */
export function jsonSettingFromEnv<T>(
  env: NodeJS.ProcessEnv,
  name: string,
  what: string,
  parse: (value: unknown) => T,
): T | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new ConfigError(`${name} must be JSON ${what}, got ${JSON.stringify(raw)}: ${err}`);
  }
  try {
    return parse(json);
  } catch (err) {
    throw new ConfigError(`${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}
