import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthError,
  bearerToken,
  createHmacVerifier,
  createOidcVerifier,
  DEFAULT_AUDIENCE,
  HMAC_ISSUER,
  issueToken,
} from '../../../shared/auth.js';
import { loadConfig } from '../../../shared/config.js';
import { cachedSecret } from '../../../shared/token-verifier.js';

const secret = 'a-test-secret-that-is-long-enough-0123456789';
const rules = {
  audience: DEFAULT_AUDIENCE,
  maxLifetimeSeconds: 12 * 3600,
  clockSkewSeconds: 60,
  claims: { tenant: 'tenant', scope: 'scope' },
};
const hmac = createHmacVerifier({ ...rules, secret });
const key = new TextEncoder().encode(secret);
const now = () => Math.floor(Date.now() / 1000);

/** A token with exactly the given claims, signed HS256 with `secret`. */
function signed(claims: Record<string, unknown>, signWith: Uint8Array = key): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(signWith);
}
const full = (over: Record<string, unknown> = {}) => ({
  sub: 's',
  tenant: 'acme',
  scope: 'read',
  aud: DEFAULT_AUDIENCE,
  iss: HMAC_ISSUER,
  iat: now(),
  exp: now() + 600,
  ...over,
});
const without = (name: string) => {
  const claims: Record<string, unknown> = full();
  delete claims[name];
  return claims;
};

describe('HMAC tokens', () => {
  it('verifies a token it issued and returns who it speaks for', async () => {
    // Prepare
    const token = await issueToken(secret, {
      subject: 'dash',
      tenant: 'acme',
      scopes: ['read', 'cancel'],
      ttlSeconds: 60,
    });
    // Act
    const principal = await hmac.verify(token);
    // Assess
    expect(principal).toMatchObject({ subject: 'dash', tenant: 'acme', scopes: new Set(['read', 'cancel']) });
    expect(principal.expiresAt).toBeGreaterThan(now());
  });

  it.each([
    ['no token', undefined, /a token is required/],
    ['garbage', 'not.a.jwt', /not valid/],
  ])('refuses %s', async (_name, token, message) => {
    await expect(hmac.verify(token)).rejects.toThrow(message);
  });

  it.each([
    ['another key', () => signed(full(), new TextEncoder().encode(`${secret}-other`)), /not valid/],
    ['no exp', () => signed(without('exp')), /exp/],
    ['no sub', () => signed(without('sub')), /sub/],
    ['no aud', () => signed(without('aud')), /aud/],
    ['no tenant', () => signed(without('tenant')), /no tenant claim/],
    ['no scope', () => signed(without('scope')), /no scope claim/],
    ['a wrong aud', () => signed(full({ aud: 'another-app' })), /aud/],
    ['a wrong issuer', () => signed(full({ iss: 'someone' })), /iss/],
    ['an expired token', () => signed(full({ exp: now() - 120 })), /expired/],
    ['a lifetime above the maximum', () => signed(full({ exp: now() + 13 * 3600 })), /at most 43200 s/],
    [
      'a future iat stretching the lifetime',
      () => signed(full({ iat: now() + 3600, exp: now() + 12 * 3600 })),
      /at most|future/,
    ],
    ['"*" without admin', () => signed(full({ tenant: '*', scope: 'read cancel' })), /admin scope/],
    ['a malformed tenant', () => signed(full({ tenant: 'a#b' })), /not a tenant name/],
    ['scopes that grant nothing', () => signed(full({ scope: 'openid profile' })), /grants none/],
  ])('refuses %s', async (_name, make, message) => {
    const error = await hmac.verify(await make()).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(AuthError);
    expect((error as Error).message).toMatch(message);
  });

  it('refuses alg "none" and any algorithm but HS256', async () => {
    const body = Buffer.from(JSON.stringify(full())).toString('base64url');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${body}.`;
    const hs512 = await new SignJWT(full()).setProtectedHeader({ alg: 'HS512' }).sign(key);
    await expect(hmac.verify(none)).rejects.toBeInstanceOf(AuthError);
    await expect(hmac.verify(hs512)).rejects.toThrow(/algorithm is not accepted/);
  });

  it('tolerates the configured clock skew and no more', async () => {
    await expect(hmac.verify(await signed(full({ exp: now() - 30 })))).resolves.toMatchObject({
      subject: 's',
    });
    await expect(hmac.verify(await signed(full({ exp: now() - 90 })))).rejects.toThrow(/expired/);
  });

  it('accepts "*" with admin, and scopes as an array', async () => {
    await expect(hmac.verify(await signed(full({ tenant: '*', scope: 'admin' })))).resolves.toMatchObject({
      tenant: '*',
    });
    await expect(hmac.verify(await signed(full({ scope: ['read', 'x'] })))).resolves.toMatchObject({
      scopes: new Set(['read']),
    });
  });

  it('reads a Bearer header', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});

describe('OIDC tokens', () => {
  const issuer = 'https://idp.example.com/pool';
  let server: Server;
  let jwksUrl: string;
  let privateKey: CryptoKey;
  let fetches = 0;

  beforeAll(async () => {
    const pair = await generateKeyPair('RS256', { extractable: true });
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const oidc = () =>
    createOidcVerifier({
      ...rules,
      audience: 'client-123',
      issuer,
      jwksUrl,
      algorithms: ['RS256'],
      claims: { tenant: 'custom:tenant', scope: 'custom:scope' },
    });
  const rs256 = (claims: Record<string, unknown>) =>
    new SignJWT({
      sub: 'user-1',
      iss: issuer,
      aud: 'client-123',
      iat: now(),
      exp: now() + 3600,
      'custom:tenant': 'acme',
      'custom:scope': 'read cancel',
      ...claims,
    })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
      .sign(privateKey);

  it('verifies a token signed by a key of the JWKS, with mapped claim names', async () => {
    const verifier = oidc();
    await expect(verifier.verify(await rs256({}))).resolves.toMatchObject({
      subject: 'user-1',
      tenant: 'acme',
      scopes: new Set(['read', 'cancel']),
    });
    await verifier.verify(await rs256({}));
    expect(fetches).toBe(1);
  });

  it('refuses another issuer, an HMAC token (algorithm confusion) and an unmapped tenant', async () => {
    const verifier = oidc();
    await expect(verifier.verify(await rs256({ iss: 'https://evil.example.com' }))).rejects.toThrow(/iss/);
    await expect(
      verifier.verify(
        await issueToken(secret, {
          subject: 'x',
          tenant: 'acme',
          scopes: ['read'],
          ttlSeconds: 60,
          audience: 'client-123',
        }),
      ),
    ).rejects.toThrow(/algorithm is not accepted/);
    await expect(verifier.verify(await rs256({ 'custom:tenant': undefined }))).rejects.toThrow(
      /custom:tenant/,
    );
  });

  it('refuses to be configured with none or a symmetric algorithm', () => {
    expect(() => createOidcVerifier({ ...rules, issuer, jwksUrl, algorithms: ['none'] })).toThrow(
      /asymmetric/,
    );
    expect(() => createOidcVerifier({ ...rules, issuer, jwksUrl, algorithms: ['HS256'] })).toThrow(
      /asymmetric/,
    );
  });
});

describe('token configuration', () => {
  it('defaults to a 12 h maximum lifetime, 60 s skew, and a Cognito-style JWKS URL for an issuer', () => {
    const { auth } = loadConfig({ AUTH_OIDC_ISSUER: 'https://cognito-idp.eu-west-1.amazonaws.com/pool' });
    expect(auth.maxLifetimeSeconds).toBe(43_200);
    expect(auth.clockSkewSeconds).toBe(60);
    expect(auth.oidc).toEqual({
      issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/pool',
      jwksUrl: 'https://cognito-idp.eu-west-1.amazonaws.com/pool/.well-known/jwks.json',
      algorithms: ['RS256'],
    });
    expect(() => loadConfig({ AUTH_OIDC_ALGORITHMS: 'none' })).toThrow(/AUTH_OIDC_ALGORITHMS/);
    expect(() => loadConfig({ AUTH_CLOCK_SKEW_SECONDS: '3600' })).toThrow(/AUTH_CLOCK_SKEW_SECONDS/);
  });

  it('reads the signing key once per cache period, sharing one read between concurrent callers', async () => {
    let reads = 0;
    let clock = 0;
    const client = {
      send: async () => {
        reads++;
        return { SecretString: `key-${reads}` };
      },
    };
    const read = cachedSecret(client as never, 'arn:aws:secretsmanager:x', 1000, () => clock);
    expect(await Promise.all([read(), read()])).toEqual(['key-1', 'key-1']);
    clock = 1001;
    expect(await read()).toBe('key-2');
    expect(reads).toBe(2);
  });
});
