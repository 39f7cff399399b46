import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { parseDuration, run } from '../../../cli/commands/token.js';
import { createHmacVerifier, DEFAULT_AUDIENCE } from '../../../shared/auth.js';

const secret = 'local-stack-key-0123456789abcdef0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'token-'));
const stack = join(dir, 'stack.json');
writeFileSync(join(dir, 'auth-secret'), secret);
const verifier = createHmacVerifier({
  secret,
  audience: DEFAULT_AUDIENCE,
  maxLifetimeSeconds: 12 * 3600,
  clockSkewSeconds: 60,
  claims: { tenant: 'tenant', scope: 'scope' },
});

async function token(args: string[]) {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  const code = await run([...args, '--stack', stack]);
  vi.restoreAllMocks();
  return { code, stdout, stderr };
}

describe('npm run cli -- token', () => {
  afterEach(() => vi.restoreAllMocks());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints a token the local stack accepts, for the tenant, scopes and lifetime asked', async () => {
    const { code, stdout } = await token(['--tenant', 'acme', '--scope', 'read cancel', '--ttl', '30m']);

    expect(code).toBe(0);
    const principal = await verifier.verify(stdout.trim());
    expect(principal).toMatchObject({
      subject: 'cli:acme',
      tenant: 'acme',
      scopes: new Set(['read', 'cancel']),
    });
    expect(principal.expiresAt - Math.floor(Date.now() / 1000)).toBeGreaterThan(29 * 60);
    expect(principal.expiresAt - Math.floor(Date.now() / 1000)).toBeLessThanOrEqual(30 * 60);
  });

  it.each([
    [['--scope', 'read'], /--tenant is required/],
    [['--tenant', 'acme'], /--scope is required/],
    [['--tenant', '*', '--scope', 'read'], /needs the admin scope/],
    [['--tenant', 'a b', '--scope', 'read'], /--tenant must be/],
    [['--tenant', 'acme', '--scope', 'read write'], /unknown scope "write"/],
    [['--tenant', 'acme', '--scope', 'read', '--ttl', '13h'], /at most|from 1 s to 43200 s/],
    [['--tenant', 'acme', '--scope', 'read', '--ttl', 'soon'], /--ttl must look like/],
  ])('refuses %j with exit code 2 and says why', async (args, message) => {
    const { code, stdout, stderr } = await token(args);

    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
  });

  it('reads durations in seconds, minutes, hours and days', () => {
    expect([
      parseDuration('90s'),
      parseDuration('30m'),
      parseDuration('2h'),
      parseDuration('1d'),
      parseDuration('45'),
    ]).toEqual([90, 1800, 7200, 86_400, 45]);
  });
});
