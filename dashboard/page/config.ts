import { z } from 'zod';

/** Name of the settings file served beside the page. */
export const CONFIG_FILE = 'config.json';

/**
 * `config.json` beside the page: where the APIs are. Never holds a token (the page asks for one,
 * or takes it from the URL fragment, which browsers do not send to servers).
 */
export const PageConfig = z.strictObject({
  /** Base URL of the HTTP query API (`GET /items`); default: the page's own origin. */
  apiUrl: z.url().optional(),
  /** The WebSocket API's URL (`wss://…/{stage}`). */
  websocketUrl: z.url().optional(),
});
export type PageConfig = z.infer<typeof PageConfig>;

/** What the page needs to run. */
export interface Settings {
  readonly token: string;
  readonly apiUrl: string;
  readonly websocketUrl: string;
}

/**
 * Settings carried in the URL fragment: `#token=…&api=…&ws=…`. The fragment stays in the
 * browser, so a link can carry a token without it reaching any server log.
 */
export function fragmentSettings(hash: string): Partial<Settings> {
  const params = new URLSearchParams(hash.startsWith('#') ? hash.slice(1) : hash);
  const found: { token?: string; apiUrl?: string; websocketUrl?: string } = {};
  const token = params.get('token')?.trim();
  const api = params.get('api')?.trim();
  const ws = params.get('ws')?.trim();
  if (token) found.token = token;
  if (api) found.apiUrl = api;
  if (ws) found.websocketUrl = ws;
  return found;
}

/**
 * Settings from every source, the first that has a value winning: the URL fragment, `config.json`,
 * what the operator typed earlier in this tab, and for the API the page's own origin (the local
 * stack serves the page beside the API). Undefined fields must be asked for.
 */
export function resolveSettings(sources: {
  readonly fragment: Partial<Settings>;
  readonly config: PageConfig;
  readonly remembered: Partial<Settings>;
  readonly origin: string;
}): Partial<Settings> {
  const { fragment, config, remembered, origin } = sources;
  // A link can name any host: a token remembered in this tab is never sent to a host the fragment
  // chose, unless it names the very hosts the token was remembered with. Then the page asks.
  const fragmentHosts = fragment.apiUrl !== undefined || fragment.websocketUrl !== undefined;
  const sameHosts =
    (fragment.apiUrl === undefined || trimSlash(fragment.apiUrl) === trimSlash(remembered.apiUrl ?? '')) &&
    (fragment.websocketUrl === undefined || fragment.websocketUrl === remembered.websocketUrl);
  const token = fragment.token ?? (fragmentHosts && !sameHosts ? undefined : remembered.token);
  const apiUrl = trimSlash(fragment.apiUrl ?? config.apiUrl ?? remembered.apiUrl ?? origin);
  const websocketUrl = fragment.websocketUrl ?? config.websocketUrl ?? remembered.websocketUrl;
  return {
    ...(token ? { token } : {}),
    ...(apiUrl ? { apiUrl } : {}),
    ...(websocketUrl ? { websocketUrl } : {}),
  };
}

/** True when every setting is known. */
export function isComplete(settings: Partial<Settings>): settings is Settings {
  return Boolean(settings.token && settings.apiUrl && settings.websocketUrl);
}

const trimSlash = (url: string) => url.replace(/\/+$/, '');

/**
 * The tenant a token is for, read from its payload for display only (the servers verify it), or
 * undefined when the token is not a JWT naming one. `*` is every tenant.
 */
export function tokenTenant(token: string): string | undefined {
  const payload = token.split('.')[1];
  if (!payload) return undefined;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '='));
    const json = new TextDecoder().decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
    const claims: unknown = JSON.parse(json);
    const tenant = (claims as { tenant?: unknown } | null)?.tenant;
    return typeof tenant === 'string' && tenant !== '' ? tenant : undefined;
  } catch {
    return undefined;
  }
}

/** How the page names the tenant it watches. */
export function tenantLabel(tenant: string): string {
  return tenant === '*' ? 'All tenants' : `Tenant ${tenant}`;
}
