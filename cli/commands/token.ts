/**
 * `token`: prints a token for the running local stack, signed with its key
 * (`<stack folder>/auth-secret`), for one tenant (or `*` with `admin`) and the given scopes.
 *
 *   npm run cli -- token --tenant <t> --scope "<scopes>" [--ttl <duration>] [--subject <name>]
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_AUDIENCE, DEFAULT_MAX_LIFETIME_SECONDS, issueToken } from '../../shared/auth.js';
import { ENV } from '../../shared/env.js';
import { ALL_TENANTS, parseScopes, Tenant } from '../../shared/tenancy.js';
import { DEFAULT_STACK_FILE } from '../target.js';

export const summary = 'print a token for the local stack: token --tenant <t> --scope "<scopes>" [--ttl 1h]';

const USAGE = `usage: npm run cli -- token --tenant <t> --scope "<scopes>" [--ttl <duration>] [--subject <name>]

  --tenant <t>       the tenant whose items the token may see, or "*" for every tenant (needs admin)
  --scope "<s>"      space-separated: read, cancel, admin (admin implies the others)
  --ttl <duration>   lifetime: 90s, 30m, 2h (default 1h; at most the stack's maximum, 12h by default)
  --subject <name>   the token's sub (default cli:<tenant>); connections are limited per subject
  --stack <file>     the local stack's file (default: .local/stack.json); its key sits beside it
`;

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds of a duration like `90s`, `30m`, `2h`, `1d`, or a plain number of seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhd]?)$/.exec(text.trim());
  if (!match) throw new Error(`--ttl must look like 90s, 30m, 2h or 1d; got ${JSON.stringify(text)}`);
  return Number(match[1]) * (UNITS[match[2] || 's'] ?? 1);
}

/** The signing key: AUTH_TOKEN_SECRET, or the local stack's key beside its stack file. */
function signingKey(stackFile: string): string {
  const fromEnv = process.env[ENV.authSecret];
  if (fromEnv) return fromEnv;
  const file = join(dirname(resolve(stackFile)), 'auth-secret');
  try {
    return readFileSync(file, 'utf8').trim();
  } catch {
    throw new Error(
      `no token key at ${file}: start the local stack with \`npm start\` (or set ${ENV.authSecret} to the key)`,
    );
  }
}

/** Runs `token`; returns the exit code. */
export async function run(args: string[]): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        tenant: { type: 'string' },
        scope: { type: 'string' },
        ttl: { type: 'string', default: '1h' },
        subject: { type: 'string' },
        stack: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    if (positionals.length > 0) throw new Error(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const tenant = values.tenant;
    if (tenant === undefined) throw new Error('--tenant is required');
    if (tenant !== ALL_TENANTS && !Tenant.safeParse(tenant).success)
      throw new Error(
        `--tenant must be 1–64 characters of A-Z a-z 0-9 . _ - or "*"; got ${JSON.stringify(tenant)}`,
      );
    if (values.scope === undefined) throw new Error('--scope is required');
    const scopes = parseScopes(values.scope);
    if (tenant === ALL_TENANTS && !scopes.includes('admin'))
      throw new Error('a token for every tenant ("*") needs the admin scope');
    const ttlSeconds = parseDuration(values.ttl);
    const max = Number(process.env[ENV.authMaxLifetimeSeconds] ?? DEFAULT_MAX_LIFETIME_SECONDS);
    if (ttlSeconds < 1 || ttlSeconds > max)
      throw new Error(
        `--ttl must be from 1 s to ${max} s (the stack's maximum lifetime); got ${ttlSeconds} s`,
      );
    const secret = signingKey(values.stack ?? process.env.STREAMS_STACK_FILE ?? DEFAULT_STACK_FILE);
    const token = await issueToken(secret, {
      subject: values.subject ?? `cli:${tenant}`,
      tenant,
      scopes,
      ttlSeconds,
      audience: process.env[ENV.authAudience] ?? DEFAULT_AUDIENCE,
    });
    process.stdout.write(`${token}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`token: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
}
