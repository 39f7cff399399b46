/**
 * Finds a Chromium the browser suite can drive, in this order: `CHROMIUM_PATH`; a Chromium or
 * Chrome on `PATH`; Playwright's browser cache (`npx playwright install chromium`). The search
 * itself is pure over a small file-system port, so it is unit-tested without any browser.
 */
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** What the search may look at: environment and file system. */
export interface BrowserProbe {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly home: string;
  /** True when `path` is a regular file this process may execute. */
  isExecutable(path: string): boolean;
  /** The entries of a folder, or none when it does not exist. */
  list(dir: string): readonly string[];
}

/** A browser found, and where it was found. */
export interface FoundBrowser {
  readonly path: string;
  readonly source: 'CHROMIUM_PATH' | 'PATH' | 'playwright cache';
}

/** The outcome of a search: a browser, or why there is none. */
export type BrowserSearch =
  | { readonly found: FoundBrowser }
  | { readonly found: undefined; readonly reason: string };

/** Names of Chromium and Chrome executables on Debian, Ubuntu, Fedora and Google's packages. */
export const SYSTEM_BROWSER_NAMES = [
  'chromium',
  'chromium-browser',
  'google-chrome',
  'google-chrome-stable',
  'chrome',
] as const;

/** How to get a browser, for the message shown when there is none. */
export const HOW_TO_GET_A_BROWSER =
  'install one (Debian/Ubuntu: `apt-get install chromium`; anywhere: `npx playwright install chromium`) ' +
  'or set CHROMIUM_PATH to a Chromium or Chrome executable';

/** Searches for a browser; an explicit `CHROMIUM_PATH` that is not an executable means none. */
export function findBrowser(probe: BrowserProbe): BrowserSearch {
  const explicit = probe.env.CHROMIUM_PATH;
  if (explicit !== undefined && explicit !== '') {
    // An explicit choice is never silently replaced by another browser.
    return probe.isExecutable(explicit)
      ? { found: { path: explicit, source: 'CHROMIUM_PATH' } }
      : { found: undefined, reason: `CHROMIUM_PATH=${explicit} is not an executable file` };
  }
  const onPath = findOnPath(probe);
  if (onPath) return { found: { path: onPath, source: 'PATH' } };
  const cached = findInPlaywrightCache(probe);
  if (cached) return { found: { path: cached, source: 'playwright cache' } };
  return {
    found: undefined,
    reason: `no ${SYSTEM_BROWSER_NAMES.join(', ')} on PATH and none in ${playwrightCacheDir(probe)}`,
  };
}

function findOnPath(probe: BrowserProbe): string | undefined {
  const dirs = (probe.env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  for (const name of SYSTEM_BROWSER_NAMES) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      if (probe.isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

/** Where Playwright keeps the browsers it installs (its own rule, Linux and macOS). */
export function playwrightCacheDir(probe: Pick<BrowserProbe, 'env' | 'home'>): string {
  const explicit = probe.env.PLAYWRIGHT_BROWSERS_PATH;
  if (explicit && explicit !== '0') return explicit;
  const cache = probe.env.XDG_CACHE_HOME || join(probe.home, '.cache');
  return join(cache, 'ms-playwright');
}

/** Executables inside one installed browser folder, newest layouts first. */
const CACHED_EXECUTABLES: ReadonlyArray<readonly [prefix: string, relative: string]> = [
  ['chromium-', 'chrome-linux64/chrome'],
  ['chromium-', 'chrome-linux/chrome'],
  ['chromium_headless_shell-', 'chrome-headless-shell-linux64/chrome-headless-shell'],
  ['chromium_headless_shell-', 'chrome-linux/headless_shell'],
];

function findInPlaywrightCache(probe: BrowserProbe): string | undefined {
  const root = playwrightCacheDir(probe);
  // Highest revision first: `chromium-1200` before `chromium-1187`.
  const entries = [...probe.list(root)].sort((a, b) => revision(b) - revision(a));
  for (const [prefix, relative] of CACHED_EXECUTABLES) {
    for (const entry of entries) {
      if (!entry.startsWith(prefix) || !/^\d+$/.test(entry.slice(prefix.length))) continue;
      const candidate = join(root, entry, relative);
      if (probe.isExecutable(candidate)) return candidate;
    }
  }
  return undefined;
}

function revision(entry: string): number {
  const match = /-(\d+)$/.exec(entry);
  return match ? Number(match[1]) : -1;
}

/** What the browser suite does: run, skip with a message (outside CI), or fail (CI). */
export type BrowserSuitePlan =
  | { readonly action: 'run'; readonly browser: FoundBrowser }
  | { readonly action: 'skip' | 'fail'; readonly message: string };

/** Decides the suite's fate from a search and the environment (`CI=true` requires a browser). */
export function planBrowserSuite(
  search: BrowserSearch,
  env: Readonly<Record<string, string | undefined>>,
): BrowserSuitePlan {
  if (search.found) return { action: 'run', browser: search.found };
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0';
  const message = `no Chromium for the browser suite (${search.reason}): ${HOW_TO_GET_A_BROWSER}`;
  return ci ? { action: 'fail', message: `CI requires a browser: ${message}` } : { action: 'skip', message };
}

/** The probe of this machine. */
export function systemProbe(env: NodeJS.ProcessEnv = process.env): BrowserProbe {
  return {
    env,
    home: homedir(),
    isExecutable(path) {
      try {
        if (!statSync(path).isFile()) return false;
        accessSync(path, constants.X_OK);
        return true;
      } catch {
        return false;
      }
    },
    list(dir) {
      try {
        return readdirSync(dir);
      } catch {
        return [];
      }
    },
  };
}
