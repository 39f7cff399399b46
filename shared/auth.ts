import { createRemoteJWKSet, errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify, SignJWT } from 'jose';
import { StreamsError } from './errors.js';
import { ALL_TENANTS, type Principal, Scope, Tenant } from './tenancy.js';

/** A viewer or API token failed verification. */
export class AuthError extends StreamsError {
  constructor(message: string, cause?: unknown) {
    super('unauthorized', message, { retryable: false, cause });
  }
}

/** The only algorithm of HMAC tokens. */
export const HMAC_ALGORITHM = 'HS256';
/** `iss` of HMAC tokens. */
export const HMAC_ISSUER = 'kinesis-model-streams';
/** `aud` of tokens unless configured otherwise. */
export const DEFAULT_AUDIENCE = 'kinesis-model-streams';
/** Longest token lifetime accepted unless configured otherwise: 12 hours. */
export const DEFAULT_MAX_LIFETIME_SECONDS = 12 * 3600;
/** Clock difference tolerated on `exp`, `nbf` and `iat` unless configured otherwise. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;

/** Checks every verifier applies, whatever signed the token. */
export interface ClaimRules {
  readonly audience: string;
  readonly maxLifetimeSeconds: number;
  readonly clockSkewSeconds: number;
  /** Claim names of the tenant and the scopes (an identity provider may use others, e.g. `custom:tenant`). */
  readonly claims: { readonly tenant: string; readonly scope: string };
  /** Epoch ms; default `Date.now`. */
  readonly now?: () => number;
}

/** Verifies a token and says who it speaks for, or throws `AuthError`. */
export interface TokenVerifier {
  verify(token: string | undefined | null): Promise<Principal>;
}

/** HMAC verification: the key itself, or a function that returns it (cached by its owner). */
export interface HmacVerifierOptions extends ClaimRules {
  readonly secret: string | (() => Promise<string>);
}

/** OIDC verification against an issuer's JWKS (fetched and cached by jose). */
export interface OidcVerifierOptions extends ClaimRules {
  readonly issuer: string;
  readonly jwksUrl: string;
  /** Accepted algorithms, e.g. `['RS256']`; never `none`, never an HMAC one. */
  readonly algorithms: readonly string[];
}

const keyOf = (secret: string) => new TextEncoder().encode(secret);

/** The scopes of a claim: a space-separated string (OAuth) or an array of strings. */
function scopesOf(value: unknown): Set<Scope> {
  const words = typeof value === 'string' ? value.split(/\s+/) : Array.isArray(value) ? value : [];
  return new Set(words.flatMap((word) => (Scope.safeParse(word).success ? [word as Scope] : [])));
}

/** Turns a verified payload into a principal, applying the rules jose does not know. */
function principalOf(payload: JWTPayload, rules: ClaimRules): Principal {
  const nowSeconds = Math.floor((rules.now ?? Date.now)() / 1000);
  if (typeof payload.exp !== 'number') throw new AuthError('the token has no exp (expiry)');
  if (typeof payload.sub !== 'string' || payload.sub === '') throw new AuthError('the token has no sub');
  const lifetime = payload.exp - Math.min(payload.iat ?? nowSeconds, nowSeconds);
  if (lifetime > rules.maxLifetimeSeconds + rules.clockSkewSeconds) {
    throw new AuthError(
      `the token is valid for ${lifetime} s; at most ${rules.maxLifetimeSeconds} s is accepted`,
    );
  }
  if (payload.iat !== undefined && payload.iat > nowSeconds + rules.clockSkewSeconds)
    throw new AuthError('the token was issued in the future (iat)');
  const tenant = payload[rules.claims.tenant];
  if (tenant === undefined) throw new AuthError(`the token has no ${rules.claims.tenant} claim`);
  if (tenant !== ALL_TENANTS && !Tenant.safeParse(tenant).success)
    throw new AuthError(`the token's ${rules.claims.tenant} claim is not a tenant name or "*"`);
  const rawScope = payload[rules.claims.scope];
  if (rawScope === undefined) throw new AuthError(`the token has no ${rules.claims.scope} claim`);
  const scopes = scopesOf(rawScope);
  if (scopes.size === 0)
    throw new AuthError(`the token's ${rules.claims.scope} claim grants none of read, cancel, admin`);
  if (tenant === ALL_TENANTS && !scopes.has('admin'))
    throw new AuthError('a token for every tenant ("*") needs the admin scope');
  return { subject: payload.sub, tenant: tenant as string, scopes, expiresAt: payload.exp };
}

/** Runs jose's verification and maps its failures to `AuthError`s that say what was wrong. */
async function verifyWith(
  token: string | undefined | null,
  key: Uint8Array | JWTVerifyGetKey,
  options: { algorithms: string[]; issuer?: string },
  rules: ClaimRules,
): Promise<Principal> {
  if (!token) throw new AuthError('a token is required');
  try {
    const { payload } = await jwtVerify(token, key as Uint8Array, {
      ...options,
      audience: rules.audience,
      clockTolerance: rules.clockSkewSeconds,
      requiredClaims: ['exp', 'sub', 'aud'],
      currentDate: rules.now ? new Date(rules.now()) : undefined,
    });
    return principalOf(payload, rules);
  } catch (err) {
    if (err instanceof AuthError) throw err;
    if (err instanceof errors.JWTExpired) throw new AuthError('the token has expired', err);
    if (err instanceof errors.JWTClaimValidationFailed)
      throw new AuthError(`the token's ${err.claim} claim is not accepted (${err.reason})`, err);
    if (err instanceof errors.JOSEAlgNotAllowed)
      throw new AuthError(`the token's algorithm is not accepted; expected ${options.algorithms.join(', ')}`);
    if (err instanceof errors.JOSEError) throw new AuthError('the token is not valid', err);
    throw err;
  }
}

/** Verifies HS256 tokens signed with the deployment's key (local and simple deployments). */
export function createHmacVerifier(options: HmacVerifierOptions): TokenVerifier {
  const secret = options.secret;
  return {
    async verify(token) {
      const key = keyOf(typeof secret === 'string' ? secret : await secret());
      return verifyWith(token, key, { algorithms: [HMAC_ALGORITHM], issuer: HMAC_ISSUER }, options);
    },
  };
}

/**
 * Verifies tokens of an OIDC identity provider (Cognito, Entra ID, Auth0...): issuer, audience
 * and the signature by a key of its JWKS, which jose fetches on first use and again when a token
 * names an unknown key (at most every 30 s), so key rotation needs no redeploy.
 */
export function createOidcVerifier(options: OidcVerifierOptions): TokenVerifier {
  const algorithms = [...options.algorithms];
  const unsafe = algorithms.filter((alg) => alg === 'none' || alg.startsWith('HS'));
  if (algorithms.length === 0 || unsafe.length > 0) {
    throw new RangeError(
      `OIDC algorithms must be asymmetric (e.g. RS256, ES256); got ${JSON.stringify(algorithms)}`,
    );
  }
  const keys = createRemoteJWKSet(new URL(options.jwksUrl), { timeoutDuration: 3_000 });
  return {
    verify: (token) => verifyWith(token, keys, { algorithms, issuer: options.issuer }, options),
  };
}

/** What an HMAC token says. */
export interface TokenRequest {
  readonly subject: string;
  readonly tenant: string;
  readonly scopes: readonly Scope[];
  readonly ttlSeconds: number;
  /** Default `DEFAULT_AUDIENCE`. */
  readonly audience?: string;
}

/** Issues an HS256 token with every claim the verifiers require. */
export async function issueToken(secret: string, request: TokenRequest): Promise<string> {
  return new SignJWT({ tenant: request.tenant, scope: request.scopes.join(' ') })
    .setProtectedHeader({ alg: HMAC_ALGORITHM, typ: 'JWT' })
    .setSubject(request.subject)
    .setIssuer(HMAC_ISSUER)
    .setAudience(request.audience ?? DEFAULT_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(`${request.ttlSeconds}s`)
    .sign(keyOf(secret));
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}
