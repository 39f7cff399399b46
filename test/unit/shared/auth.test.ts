import { describe, expect, it } from 'vitest';
import { AuthError, bearerToken, issueToken, verifyToken } from '../../../shared/auth.js';

const secret = 'a-test-secret-that-is-long-enough-0123456789';

describe('tokens', () => {
  it('verifies a token it issued and returns the subject', async () => {
    const token = await issueToken(secret, 'dashboard', 60);
    await expect(verifyToken(secret, token)).resolves.toEqual({ subject: 'dashboard' });
  });

  it('refuses a token signed with another secret, a missing token, and garbage', async () => {
    const token = await issueToken(`${secret}-other`, 'x', 60);
    await expect(verifyToken(secret, token)).rejects.toBeInstanceOf(AuthError);
    await expect(verifyToken(secret, undefined)).rejects.toThrow('a token is required');
    await expect(verifyToken(secret, 'not.a.jwt')).rejects.toThrow('not valid');
  });

  it('refuses an expired token', async () => {
    const token = await issueToken(secret, 'x', -10);
    await expect(verifyToken(secret, token)).rejects.toThrow('expired');
  });

  it('reads a Bearer header', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
