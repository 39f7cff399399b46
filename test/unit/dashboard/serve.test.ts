import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDashboardRoutes } from '../../../dashboard/serve.js';

describe('the dashboard routes', () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    const routes = createDashboardRoutes({ websocketUrl: 'ws://127.0.0.1:9/local' });
    server = createServer((req, res) => {
      if (!routes(req, res)) res.writeHead(418).end('not the dashboard');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('serves the page, its script and styles with their content types', async () => {
    const page = await fetch(`${base}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const html = await page.text();
    const script = /src="\.\/(dashboard-[A-Z0-9]+\.js)"/.exec(html)?.[1];
    const style = /href="\.\/(dashboard-[A-Z0-9]+\.css)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    expect(style).toBeDefined();

    const js = await fetch(`${base}/dashboard/${script}`);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toContain('immutable');
    expect(await js.text()).toContain('subscribe');
    const css = await fetch(`${base}/dashboard/${style}`);
    expect(css.headers.get('content-type')).toBe('text/css; charset=utf-8');
  });

  it('tells the page where the APIs are, never the token', async () => {
    const response = await fetch(`${base}/dashboard/config.json`);
    expect(await response.json()).toEqual({ websocketUrl: 'ws://127.0.0.1:9/local', apiUrl: base });
  });

  it('redirects /dashboard, answers 404 and 405 inside, and leaves other paths alone', async () => {
    const redirect = await fetch(`${base}/dashboard`, { redirect: 'manual' });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get('location')).toBe('/dashboard/');
    expect((await fetch(`${base}/dashboard/nope.js`)).status).toBe(404);
    expect((await fetch(`${base}/dashboard/`, { method: 'POST' })).status).toBe(405);
    expect((await fetch(`${base}/_local/stats`)).status).toBe(418);
  });
});
