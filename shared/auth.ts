import { errors, jwtVerify, SignJWT } from 'jose';
import { StreamsError } from './errors.js';

/** A viewer or API token failed verification. */
export class AuthError extends StreamsError {
  constructor(message: string, cause?: unknown) {
    super('unauthorized', message, { retryable: false, cause });
  }
}

const ALGORITHM = 'HS256';
const ISSUER = 'kinesis-model-streams';

const keyOf = (secret: string) => new TextEncoder().encode(secret);

/** Issues an HMAC-signed JWT (HS256) for `subject`, valid for `ttlSeconds`. */
export async function issueToken(secret: string, subject: string, ttlSeconds: number): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: ALGORITHM })
    .setSubject(subject)
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(`${ttlSeconds}s`)
    .sign(keyOf(secret));
}

/** Verifies a token's signature, issuer and expiry; returns its subject or throws `AuthError`. */
export async function verifyToken(
  secret: string,
  token: string | undefined | null,
): Promise<{ subject: string }> {
  if (!token) throw new AuthError('a token is required');
  try {
    const { payload } = await jwtVerify(token, keyOf(secret), { algorithms: [ALGORITHM], issuer: ISSUER });
    if (!payload.sub) throw new AuthError('the token has no subject');
    return { subject: payload.sub };
  } catch (err) {
    if (err instanceof AuthError) throw err;
    if (err instanceof errors.JWTExpired) throw new AuthError('the token has expired', err);
    throw new AuthError('the token is not valid', err);
  }
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}
