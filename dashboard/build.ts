/**
 * Builds the dashboard page as static files for S3 / CloudFront (or any static host).
 *
 *   npx tsx dashboard/build.ts --out dist/dashboard
 *   npx tsx dashboard/build.ts --out dist/dashboard --stack .deployed/stack.json
 *   npx tsx dashboard/build.ts --out dist/dashboard --api-url https://… --websocket-url wss://…
 *
 * With URLs (given, or read from a stack file) it writes `config.json` beside the page; the token
 * is never written: the page asks for it, or takes it from the URL fragment (`#token=`).
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { bundleDashboard } from './bundle.js';
import { CONFIG_FILE, PageConfig } from './page/config.js';

/** The part of a stack file (local `.local/stack.json` or deployed `.deployed/stack.json`) used here. */
const StackUrls = z.object({
  http: z.object({ url: z.string() }),
  websocket: z.object({ url: z.string() }),
});

export interface BuildOptions {
  /** Output folder; emptied first. */
  readonly outDir: string;
  /** Written as `config.json` when any URL is set. */
  readonly config?: PageConfig;
  readonly minify?: boolean;
  readonly sourcemap?: boolean;
}

/** Writes the page's files to `outDir` and returns their names. */
export async function buildDashboard(options: BuildOptions): Promise<string[]> {
  const assets = await bundleDashboard({
    minify: options.minify ?? true,
    sourcemap: options.sourcemap ?? false,
  });
  const outDir = resolve(options.outDir);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const [name, asset] of assets) {
    writeFileSync(join(outDir, name), asset.body);
    written.push(name);
  }
  const config = PageConfig.parse(options.config ?? {});
  if (config.apiUrl || config.websocketUrl) {
    writeFileSync(join(outDir, CONFIG_FILE), `${JSON.stringify(config, null, 2)}\n`);
    written.push(CONFIG_FILE);
  }
  return written.sort();
}

function configFromArgs(values: {
  stack?: string | undefined;
  'api-url'?: string | undefined;
  'websocket-url'?: string | undefined;
}): PageConfig {
  let fromStack: PageConfig = {};
  if (values.stack) {
    const stack = StackUrls.parse(JSON.parse(readFileSync(values.stack, 'utf8')));
    fromStack = { apiUrl: stack.http.url, websocketUrl: stack.websocket.url };
  }
  const apiUrl = values['api-url'] ?? fromStack.apiUrl;
  const websocketUrl = values['websocket-url'] ?? fromStack.websocketUrl;
  const result = PageConfig.safeParse({ apiUrl, websocketUrl });
  if (!result.success) {
    throw new Error(
      `invalid URL: ${result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return result.data;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'dist/dashboard' },
      stack: { type: 'string' },
      'api-url': { type: 'string' },
      'websocket-url': { type: 'string' },
      'no-minify': { type: 'boolean', default: false },
      sourcemap: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(
      'usage: npx tsx dashboard/build.ts [--out DIR] [--stack FILE | --api-url URL --websocket-url URL] [--no-minify] [--sourcemap]\n',
    );
    return;
  }
  const files = await buildDashboard({
    outDir: values.out,
    config: configFromArgs(values),
    minify: !values['no-minify'],
    sourcemap: values.sourcemap,
  });
  process.stdout.write(
    `dashboard built in ${resolve(values.out)}:\n${files.map((f) => `  ${f}\n`).join('')}`,
  );
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(new URL(import.meta.url).pathname)) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
