import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createHmacVerifier, createOidcVerifier, type TokenVerifier } from './auth.js';
import type { AuthConfig } from './config.js';
import { ENV } from './env.js';
import { ConfigError } from './errors.js';

/** How long a signing key read from Secrets Manager is used before it is read again. */
export const SECRET_CACHE_MS = 5 * 60 * 1000;

/**
 * A secret's value, read from Secrets Manager on first use and again once `cacheMs` has passed
 * (so a rotated key reaches warm functions within that time, with no redeploy). Concurrent callers
 * share one read; a failed read is not cached.
 */
export function cachedSecret(
  client: SecretsManagerClient,
  secretId: string,
  cacheMs = SECRET_CACHE_MS,
  now: () => number = Date.now,
): () => Promise<string> {
  let cached: { value: Promise<string>; until: number } | undefined;
  return () => {
    if (cached && cached.until > now()) return cached.value;
    // One retry layer: the SDK's own (3 attempts with backoff on throttling and 5xx).
    const value = client.send(new GetSecretValueCommand({ SecretId: secretId })).then(({ SecretString }) => {
      if (!SecretString) throw new ConfigError(`secret ${secretId} has no string value`);
      return SecretString;
    });
    const entry = { value, until: now() + cacheMs };
    cached = entry;
    value.catch(() => {
      if (cached === entry) cached = undefined;
    });
    return value;
  };
}

/**
 * The verifier the configuration asks for: OIDC when `AUTH_OIDC_ISSUER` is set; else HMAC with
 * `AUTH_TOKEN_SECRET`, or with the secret `AUTH_TOKEN_SECRET_ARN` names. Throws a `ConfigError`
 * when none is configured: every token would be refused.
 */
export function createTokenVerifier(
  auth: AuthConfig,
  secrets: () => SecretsManagerClient,
  now?: () => number,
): TokenVerifier {
  const rules = { ...auth, now };
  if (auth.oidc) return createOidcVerifier({ ...rules, ...auth.oidc });
  if (auth.secret) return createHmacVerifier({ ...rules, secret: auth.secret });
  if (auth.secretArn)
    return createHmacVerifier({ ...rules, secret: cachedSecret(secrets(), auth.secretArn) });
  throw new ConfigError(
    `no token verification configured: set ${ENV.authOidcIssuer}, ${ENV.authSecretArn} or ${ENV.authSecret}`,
  );
}
