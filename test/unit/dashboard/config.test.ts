import { describe, expect, it } from 'vitest';
import {
  fragmentSettings,
  isComplete,
  PageConfig,
  resolveSettings,
  tenantLabel,
  tokenTenant,
} from '../../../dashboard/page/config.js';

describe('page settings', () => {
  it('reads the token and URLs from the URL fragment', () => {
    expect(fragmentSettings('#token=abc&ws=ws%3A%2F%2F127.0.0.1%3A1%2Flocal&api=http://x')).toEqual({
      token: 'abc',
      websocketUrl: 'ws://127.0.0.1:1/local',
      apiUrl: 'http://x',
    });
    expect(fragmentSettings('')).toEqual({});
  });

  it('prefers the fragment, then config.json, then what was typed, then the page origin for the API', () => {
    const settings = resolveSettings({
      fragment: { token: 'from-fragment' },
      config: { websocketUrl: 'wss://ws.example/live' },
      remembered: { token: 'typed', websocketUrl: 'wss://old.example/live', apiUrl: 'https://typed.example' },
      origin: 'https://page.example',
    });
    expect(settings).toEqual({
      token: 'from-fragment',
      websocketUrl: 'wss://ws.example/live',
      apiUrl: 'https://typed.example',
    });
    expect(isComplete(settings)).toBe(true);
  });

  it('never hands a remembered token to a host the URL fragment names', () => {
    const remembered = {
      token: 'typed',
      websocketUrl: 'wss://ws.example/live',
      apiUrl: 'https://api.example',
    };
    const origin = 'https://page.example';
    const config = {};
    const elsewhere = resolveSettings({
      fragment: { apiUrl: 'https://evil.example' },
      config,
      remembered,
      origin,
    });
    const otherSocket = resolveSettings({
      fragment: { websocketUrl: 'wss://evil.example/x' },
      config,
      remembered,
      origin,
    });
    const same = resolveSettings({
      fragment: { apiUrl: 'https://api.example/' },
      config,
      remembered,
      origin,
    });
    const none = resolveSettings({ fragment: {}, config, remembered, origin });

    expect(elsewhere.token).toBeUndefined();
    expect(otherSocket.token).toBeUndefined();
    expect(same.token).toBe('typed');
    expect(none.token).toBe('typed');
  });

  it('leaves the token to be asked for when nothing gives one', () => {
    const settings = resolveSettings({
      fragment: {},
      config: { apiUrl: 'https://api.example/', websocketUrl: 'wss://ws.example/live' },
      remembered: {},
      origin: '',
    });
    expect(settings).toEqual({ apiUrl: 'https://api.example', websocketUrl: 'wss://ws.example/live' });
    expect(isComplete(settings)).toBe(false);
  });

  it('refuses a config.json with a token or a malformed URL', () => {
    expect(PageConfig.safeParse({ websocketUrl: 'wss://ws.example/live', token: 'x' }).success).toBe(false);
    expect(PageConfig.safeParse({ apiUrl: 'not a url' }).success).toBe(false);
  });
});

describe('the tenant a token is for', () => {
  const jwt = (payload: object) =>
    `${Buffer.from('{"alg":"HS256"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.sig`;

  it('reads the tenant claim, base64url with any padding', () => {
    expect(tokenTenant(jwt({ tenant: 'acme-ü?>', sub: 's' }))).toBe('acme-ü?>');
    expect(tokenTenant(jwt({ tenant: '*' }))).toBe('*');
  });

  it('is undefined for a token that is not a JWT or names no tenant', () => {
    for (const token of ['opaque', 'a.%%%.c', jwt({ sub: 's' }), jwt({ tenant: 7 }), jwt({ tenant: '' })])
      expect(tokenTenant(token)).toBeUndefined();
  });

  it('labels every tenant and one tenant', () => {
    expect(tenantLabel('*')).toBe('All tenants');
    expect(tenantLabel('acme')).toBe('Tenant acme');
  });
});
