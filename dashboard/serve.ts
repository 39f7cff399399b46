import type { IncomingMessage, ServerResponse } from 'node:http';
import { type BundleOptions, bundleDashboard, type DashboardAssets } from './bundle.js';
import { CONFIG_FILE, type PageConfig } from './page/config.js';

/** Where the local stack serves the page. */
export const DASHBOARD_PATH = '/dashboard/';

export interface DashboardRoutesOptions {
  /** The WebSocket API's URL the page connects to. */
  readonly websocketUrl: string;
  /** The query API's base URL. Default: the origin the page is served from. */
  readonly apiUrl?: string;
  readonly bundle?: BundleOptions;
}

/** Serves requests under `/dashboard/`; returns false for any other path. */
export type DashboardRoutes = (req: IncomingMessage, res: ServerResponse) => boolean;

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * The page's routes for a local HTTP server: `index.html`, the bundled script and styles, and a
 * `config.json` naming the WebSocket API. The page is bundled in memory on the first request
 * (about a tenth of a second) and kept; a failed bundle answers 500 with esbuild's message and is
 * tried again on the next request.
 */
export function createDashboardRoutes(options: DashboardRoutesOptions): DashboardRoutes {
  let assets: Promise<DashboardAssets> | undefined;
  const bundled = () => {
    assets ??= bundleDashboard({ sourcemap: true, ...options.bundle }).catch((err: unknown) => {
      assets = undefined;
      throw err;
    });
    return assets;
  };

  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === DASHBOARD_PATH.slice(0, -1)) {
      res.writeHead(308, { location: DASHBOARD_PATH, ...SECURITY_HEADERS }).end();
      return true;
    }
    if (!path.startsWith(DASHBOARD_PATH)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, req, 405, 'text/plain; charset=utf-8', 'use GET', { allow: 'GET, HEAD' });
      return true;
    }
    const name = path.slice(DASHBOARD_PATH.length) || 'index.html';
    if (name === CONFIG_FILE) {
      const config: PageConfig = {
        websocketUrl: options.websocketUrl,
        apiUrl: options.apiUrl ?? `http://${req.headers.host ?? '127.0.0.1'}`,
      };
      send(res, req, 200, 'application/json; charset=utf-8', JSON.stringify(config), {
        'cache-control': 'no-store',
      });
      return true;
    }
    bundled().then(
      (files) => {
        const asset = files.get(name);
        if (!asset) {
          send(res, req, 404, 'text/plain; charset=utf-8', `no dashboard file ${JSON.stringify(name)}`);
          return;
        }
        send(res, req, 200, asset.contentType, asset.body, {
          'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
        });
      },
      (err: unknown) => {
        send(
          res,
          req,
          500,
          'text/plain; charset=utf-8',
          `the dashboard could not be bundled: ${err instanceof Error ? err.message : String(err)}`,
        );
      },
    );
    return true;
  };
}

function send(
  res: ServerResponse,
  req: IncomingMessage,
  status: number,
  contentType: string,
  body: string | Uint8Array,
  headers: Record<string, string> = {},
): void {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': String(bytes.byteLength),
    ...SECURITY_HEADERS,
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}
