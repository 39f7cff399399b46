import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';

/** One file of the page. */
export interface Asset {
  readonly contentType: string;
  readonly body: Uint8Array;
  /** A name with a content hash: safe to cache for good. */
  readonly immutable: boolean;
}

/** The page's files by name (`index.html`, `dashboard-<hash>.js`, `dashboard-<hash>.css`, maps). */
export type DashboardAssets = ReadonlyMap<string, Asset>;

export interface BundleOptions {
  /** Minify the script and styles. Default true. */
  readonly minify?: boolean;
  /** Add source maps beside the script and styles. Default false. */
  readonly sourcemap?: boolean;
}

const PAGE_DIR = fileURLToPath(new URL('./page/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
};

/**
 * zod's `z` namespace re-exports every locale (about 260 KB minified), and a namespace object
 * keeps all it names. The page never switches locale: English, which zod imports on its own, is
 * all it needs, so the locale index is bundled as an empty module.
 */
const zodWithoutLocales: Plugin = {
  name: 'zod-without-locales',
  setup(esbuild) {
    esbuild.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer)
        ? { path: 'zod-locales', namespace: 'zod-without-locales' }
        : undefined,
    );
    esbuild.onLoad({ filter: /.*/, namespace: 'zod-without-locales' }, () => ({
      contents: 'export {};',
      loader: 'js',
    }));
  },
};

/** The content type of a page file by its extension. */
export function contentTypeOf(name: string): string {
  return CONTENT_TYPES[extname(name)] ?? 'application/octet-stream';
}

/**
 * Bundles the page with esbuild, in memory: the TypeScript entry with the client library and its
 * dependencies into one ES module, the styles into one file, both with content-hashed names that
 * `index.html` is rewritten to reference.
 */
export async function bundleDashboard(options: BundleOptions = {}): Promise<DashboardAssets> {
  const result = await build({
    entryPoints: [
      { in: `${PAGE_DIR}main.ts`, out: 'dashboard' },
      { in: `${PAGE_DIR}styles.css`, out: 'dashboard' },
    ],
    bundle: true,
    write: false,
    outdir: '/dashboard',
    entryNames: '[name]-[hash]',
    format: 'esm',
    platform: 'browser',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    minify: options.minify ?? true,
    sourcemap: options.sourcemap ? 'linked' : false,
    legalComments: 'none',
    logLevel: 'silent',
    plugins: [zodWithoutLocales],
  });
  const assets = new Map<string, Asset>();
  let script: string | undefined;
  let style: string | undefined;
  for (const file of result.outputFiles) {
    const name = basename(file.path);
    assets.set(name, { contentType: contentTypeOf(name), body: file.contents, immutable: true });
    if (name.endsWith('.js')) script = name;
    if (name.endsWith('.css')) style = name;
  }
  if (!script || !style) {
    throw new Error(`esbuild produced ${[...assets.keys()].join(', ')}: expected one .js and one .css file`);
  }
  const html = (await readFile(`${PAGE_DIR}index.html`, 'utf8'))
    .replace('./dashboard.js', `./${script}`)
    .replace('./dashboard.css', `./${style}`);
  if (!html.includes(script) || !html.includes(style)) {
    throw new Error('index.html no longer references ./dashboard.js and ./dashboard.css');
  }
  assets.set('index.html', {
    contentType: contentTypeOf('index.html'),
    body: new TextEncoder().encode(html),
    immutable: false,
  });
  return assets;
}
