import { describe, expect, it } from 'vitest';
import {
  type BrowserProbe,
  findBrowser,
  HOW_TO_GET_A_BROWSER,
  planBrowserSuite,
} from '../../support/find-browser.js';

/** A file system holding exactly `executables` (and the folders above them). */
function probe(env: Record<string, string | undefined>, executables: string[] = []): BrowserProbe {
  const files = new Set(executables);
  return {
    env,
    home: '/home/dev',
    isExecutable: (path) => files.has(path),
    list: (dir) => {
      const prefix = `${dir}/`;
      const names = executables
        .filter((f) => f.startsWith(prefix))
        .map((f) => f.slice(prefix.length).split('/')[0]);
      return [...new Set(names)].filter((n): n is string => n !== undefined);
    },
  };
}

const CACHE = '/home/dev/.cache/ms-playwright';

describe('finding a browser for the browser suite', () => {
  it('uses CHROMIUM_PATH when it names an executable, before anything on PATH', () => {
    const found = findBrowser(
      probe({ CHROMIUM_PATH: '/opt/chrome/chrome', PATH: '/usr/bin' }, [
        '/opt/chrome/chrome',
        '/usr/bin/chromium',
      ]),
    );
    expect(found.found).toEqual({ path: '/opt/chrome/chrome', source: 'CHROMIUM_PATH' });
  });

  it('counts a CHROMIUM_PATH pointing at nothing as no browser, even with one on PATH', () => {
    const found = findBrowser(
      probe({ CHROMIUM_PATH: '/nowhere/chrome', PATH: '/usr/bin' }, ['/usr/bin/chromium']),
    );
    expect(found.found).toBeUndefined();
    expect(found).toMatchObject({ reason: 'CHROMIUM_PATH=/nowhere/chrome is not an executable file' });
  });

  it('ignores an empty CHROMIUM_PATH', () => {
    const found = findBrowser(probe({ CHROMIUM_PATH: '', PATH: '/usr/bin' }, ['/usr/bin/chromium']));
    expect(found.found).toEqual({ path: '/usr/bin/chromium', source: 'PATH' });
  });

  it('finds the system Chromium or Chrome on PATH, preferring Chromium, in PATH order', () => {
    expect(
      findBrowser(probe({ PATH: '/usr/local/bin:/usr/bin' }, ['/usr/bin/google-chrome', '/usr/bin/chromium']))
        .found,
    ).toEqual({ path: '/usr/bin/chromium', source: 'PATH' });
    expect(
      findBrowser(
        probe({ PATH: '/usr/local/bin:/usr/bin' }, ['/usr/bin/chromium', '/usr/local/bin/chromium']),
      ).found?.path,
    ).toBe('/usr/local/bin/chromium');
    expect(findBrowser(probe({ PATH: '/usr/bin' }, ['/usr/bin/google-chrome-stable'])).found?.path).toBe(
      '/usr/bin/google-chrome-stable',
    );
  });

  it("falls back to Playwright's cache, newest revision first, full Chromium before the headless shell", () => {
    const found = findBrowser(
      probe({ PATH: '/usr/bin' }, [
        `${CACHE}/chromium-1187/chrome-linux64/chrome`,
        `${CACHE}/chromium-1200/chrome-linux64/chrome`,
        `${CACHE}/chromium_headless_shell-1300/chrome-headless-shell-linux64/chrome-headless-shell`,
      ]),
    );
    expect(found.found).toEqual({
      path: `${CACHE}/chromium-1200/chrome-linux64/chrome`,
      source: 'playwright cache',
    });
  });

  it('reads the older cache layout, the headless shell, PLAYWRIGHT_BROWSERS_PATH and XDG_CACHE_HOME', () => {
    expect(findBrowser(probe({}, [`${CACHE}/chromium-1100/chrome-linux/chrome`])).found?.path).toBe(
      `${CACHE}/chromium-1100/chrome-linux/chrome`,
    );
    expect(
      findBrowser(probe({}, [`${CACHE}/chromium_headless_shell-1200/chrome-linux/headless_shell`])).found
        ?.path,
    ).toBe(`${CACHE}/chromium_headless_shell-1200/chrome-linux/headless_shell`);
    expect(
      findBrowser(probe({ PLAYWRIGHT_BROWSERS_PATH: '/pw' }, ['/pw/chromium-1/chrome-linux64/chrome'])).found
        ?.path,
    ).toBe('/pw/chromium-1/chrome-linux64/chrome');
    expect(
      findBrowser(probe({ XDG_CACHE_HOME: '/xdg' }, ['/xdg/ms-playwright/chromium-1/chrome-linux64/chrome']))
        .found?.path,
    ).toBe('/xdg/ms-playwright/chromium-1/chrome-linux64/chrome');
  });

  it('finds nothing on a machine with only Node, and says where it looked', () => {
    const found = findBrowser(
      probe({ PATH: '/usr/bin' }, ['/usr/bin/node', `${CACHE}/firefox-1400/firefox/firefox`]),
    );
    expect(found.found).toBeUndefined();
    expect(found).toMatchObject({ reason: expect.stringContaining(CACHE) });
    expect(found).toMatchObject({ reason: expect.stringContaining('chromium') });
  });
});

describe('planning the browser suite', () => {
  const none = { found: undefined, reason: 'nothing here' } as const;

  it('runs with a browser, in CI or not', () => {
    const found = { found: { path: '/usr/bin/chromium', source: 'PATH' } } as const;
    expect(planBrowserSuite(found, {})).toEqual({ action: 'run', browser: found.found });
    expect(planBrowserSuite(found, { CI: 'true' })).toEqual({ action: 'run', browser: found.found });
  });

  it('skips without a browser outside CI, saying how to get one', () => {
    for (const CI of [undefined, '', 'false', '0']) {
      const plan = planBrowserSuite(none, { CI });
      expect(plan.action).toBe('skip');
      expect(plan).toMatchObject({ message: expect.stringContaining(HOW_TO_GET_A_BROWSER) });
      expect(plan).toMatchObject({ message: expect.stringContaining('nothing here') });
    }
  });

  it('fails without a browser under CI', () => {
    for (const CI of ['true', '1']) {
      const plan = planBrowserSuite(none, { CI });
      expect(plan.action).toBe('fail');
      expect(plan).toMatchObject({ message: expect.stringContaining('CI requires a browser') });
    }
  });
});
